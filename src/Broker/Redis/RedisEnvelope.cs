using System.Buffers.Text;
using System.Text;

namespace PushService.Broker.Redis;

/// <summary>
/// What travels on a channel's pub/sub channel: <c>m\n{offset}\n{epoch}\n{context}\n{data}</c> for a publication,
/// <c>j\n{client}\n{user}</c> or <c>l\n{client}\n{user}</c> for join and leave. Data goes last and is not scanned.
/// </summary>
/// <remarks>
/// The context is space-separated items, each optional: the accepted time (UTC ticks, digits only) and the W3C trace
/// parent. Nodes of the release before read the whole field as a trace parent and ignore it, so a rolling upgrade
/// delivers across versions.
/// </remarks>
internal static class RedisEnvelope
{
    /// <summary>A publication's envelope, as the publish script makes it where it publishes the publication itself.</summary>
    public static byte[] Publication(long offset, string epoch, string context, ReadOnlySpan<byte> data)
    {
        var head = Encoding.UTF8.GetBytes($"m\n{offset.ToString(System.Globalization.CultureInfo.InvariantCulture)}\n{epoch}\n{context}\n");
        return [.. head, .. data];
    }

    /// <summary>The context field for a publication accepted at <paramref name="acceptedAtTicks"/> (0: none).</summary>
    public static string Context(string? traceParent, long acceptedAtTicks) => (acceptedAtTicks > 0, traceParent is { Length: > 0 }) switch
    {
        (true, true) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{acceptedAtTicks} {traceParent}"),
        (true, false) => acceptedAtTicks.ToString(System.Globalization.CultureInfo.InvariantCulture),
        (false, true) => traceParent!,
        _ => "",
    };

    public static byte[] JoinLeave(bool join, PresenceEntry entry) =>
        Encoding.UTF8.GetBytes($"{(join ? 'j' : 'l')}\n{entry.Client}\n{entry.User}");

    /// <summary>
    /// Decodes a publication envelope; false for anything else. When its epoch is <paramref name="knownEpoch"/> (the
    /// channel's current one, as nearly every publication's is) that string is reused: no string per publication, and
    /// every subscriber's epoch check is then a reference comparison.
    /// </summary>
    public static bool TryReadPublication(string channel, ReadOnlyMemory<byte> payload, string? knownEpoch, out Publication? publication)
    {
        publication = null;
        var span = payload.Span;
        if (span.Length < 2 || span[0] != (byte)'m' || span[1] != (byte)'\n')
        {
            return false;
        }

        var rest = span[2..];
        var offsetEnd = rest.IndexOf((byte)'\n');
        if (offsetEnd < 0 || !Utf8Parser.TryParse(rest[..offsetEnd], out long offset, out var consumed) || consumed != offsetEnd)
        {
            return false;
        }

        var consumedTotal = 2 + offsetEnd + 1;
        rest = span[consumedTotal..];
        var epochEnd = rest.IndexOf((byte)'\n');
        if (epochEnd < 0)
        {
            return false;
        }

        var epochBytes = rest[..epochEnd];
        var epoch = knownEpoch is not null && Ascii.Equals(epochBytes, knownEpoch) ? knownEpoch : Encoding.UTF8.GetString(epochBytes);
        consumedTotal += epochEnd + 1;
        rest = span[consumedTotal..];
        var traceEnd = rest.IndexOf((byte)'\n');
        if (traceEnd < 0)
        {
            return false;
        }

        ReadContext(rest[..traceEnd], out var accepted, out var trace);
        consumedTotal += traceEnd + 1;
        publication = new Publication(channel, offset, epoch, payload[consumedTotal..]) { TraceParent = trace, AcceptedAtTicks = accepted };
        return true;
    }

    /// <summary>Reads the context field: digits are the accepted time, anything else the trace parent.</summary>
    private static void ReadContext(ReadOnlySpan<byte> context, out long acceptedAtTicks, out string? traceParent)
    {
        acceptedAtTicks = 0;
        traceParent = null;
        while (!context.IsEmpty)
        {
            var end = context.IndexOf((byte)' ');
            var item = end < 0 ? context : context[..end];
            context = end < 0 ? default : context[(end + 1)..];
            if (item.IsEmpty)
            {
                continue;
            }

            if (Utf8Parser.TryParse(item, out long ticks, out var used) && used == item.Length && ticks > 0)
            {
                acceptedAtTicks = ticks;
            }
            else
            {
                traceParent = Encoding.UTF8.GetString(item);
            }
        }
    }

    /// <summary>Decodes a join or leave envelope.</summary>
    public static bool TryReadJoinLeave(ReadOnlySpan<byte> payload, out bool join, out PresenceEntry? entry)
    {
        join = false;
        entry = null;
        if (payload.Length < 2 || payload[1] != (byte)'\n' || (payload[0] != (byte)'j' && payload[0] != (byte)'l'))
        {
            return false;
        }

        join = payload[0] == (byte)'j';
        var text = Encoding.UTF8.GetString(payload[2..]);
        var split = text.IndexOf('\n', StringComparison.Ordinal);
        if (split < 0)
        {
            return false;
        }

        entry = new PresenceEntry(text[..split], text[(split + 1)..]);
        return true;
    }
}
