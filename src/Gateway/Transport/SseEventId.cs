using System.Text;

namespace PushService.Gateway.Transport;

/// <summary>
/// An SSE event id that holds where a stream stands in each of its channels: <c>channel:epoch:offset</c> for each,
/// separated by <c>;</c> (<c>news:k2x7qv4a:42;chat:lobby:p0m3zz81:7</c>). A browser's <c>EventSource</c> sends the last
/// one back in <c>Last-Event-ID</c> when it reconnects, to any node, which resumes every channel exactly there. Channel
/// names may hold <c>:</c> (the namespace) but never <c>;</c>, and epochs and offsets hold neither, so each part is read
/// from its right.
/// </summary>
internal static class SseEventId
{
    /// <summary>The id for <paramref name="positions"/>, in the order given.</summary>
    public static string Format(IEnumerable<KeyValuePair<string, (string Epoch, long Offset)>> positions)
    {
        var id = new StringBuilder();
        foreach (var (channel, (epoch, offset)) in positions)
        {
            if (id.Length > 0)
            {
                id.Append(';');
            }

            id.Append(channel).Append(':').Append(epoch).Append(':').Append(offset);
        }

        return id.ToString();
    }

    /// <summary>
    /// The positions in <paramref name="id"/>; false for anything that is not such an id (a client's own, or a
    /// mangled one), which a stream treats as no id at all.
    /// </summary>
    public static bool TryParse(string? id, out Dictionary<string, (string Epoch, long Offset)> positions)
    {
        positions = new Dictionary<string, (string Epoch, long Offset)>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(id))
        {
            return false;
        }

        foreach (var part in id.Split(';'))
        {
            var lastColon = part.LastIndexOf(':');
            var epochColon = lastColon > 0 ? part.LastIndexOf(':', lastColon - 1) : -1;
            if (epochColon <= 0
                || !long.TryParse(part.AsSpan(lastColon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset)
                || lastColon - epochColon - 1 is < 1 or > 64)
            {
                positions.Clear();
                return false;
            }

            positions[part[..epochColon]] = (part[(epochColon + 1)..lastColon], offset);
        }

        return true;
    }
}
