using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using PushService.Broker.Redis.Resp;
using StackExchange.Redis;

namespace PushService.Broker.Redis.Commands;

/// <summary>What the publish script answered: its status (1 published, 0 a repeated idempotency key, -1 a key reused
/// with other data) and, unless -1, the publication's position.</summary>
internal readonly record struct PublishReply(int Status, long Offset, string? Epoch);

/// <summary>
/// One run of <see cref="RedisScripts.Publish"/>: its keys and arguments in the script's order, written for either
/// connection (StackExchange.Redis or the broker's own <see cref="CommandConnection"/>), and its reply read from either.
/// </summary>
internal sealed class PublishCommand
{
    /// <summary>The script's SHA-1, by which Redis runs it once it has seen it.</summary>
#pragma warning disable CA5350 // Redis names scripts by SHA-1; nothing here relies on it for security.
    public static readonly string Sha = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(RedisScripts.Publish)));
#pragma warning restore CA5350

    private readonly string[] _keys;
    private readonly ReadOnlyMemory<byte> _data;
    private readonly long[] _numbers;
    private readonly string[] _strings;

    /// <summary>The script's keys and arguments for one publication. With <paramref name="announce"/> false the script
    /// stores it without publishing its envelope, which the broker publishes once replicas acknowledged it
    /// (<see cref="RedisBrokerOptions.MinReplicas"/>).</summary>
    public PublishCommand(RedisKeys keys, string channel, ReadOnlyMemory<byte> data, PublishOptions options, RedisBrokerOptions broker, bool sharded,
        bool announce = true)
    {
        var key = options.IdempotencyKey;
        _keys = [(string)keys.Meta(channel)!, (string)keys.Stream(channel)!, (string)keys.Idempotency(channel, key ?? "")!];
        _data = data;
        _numbers =
        [
            options.HistorySize,
            (long)options.HistoryTtl.TotalMilliseconds,
            key is null ? 0 : (long)broker.IdempotencyWindow.TotalMilliseconds,
            (long)broker.PositionTtl.TotalMilliseconds,
        ];
        _strings = [keys.PubSub(channel), RedisEnvelope.Context(options.TraceParent, options.AcceptedAtTicks), Epochs.New(), !announce ? "-" : sharded ? "1" : "0"];
    }

    /// <summary>The channel's meta key, which names the slot (and so the server) its publications are stored on.</summary>
    public RedisKey MetaKey => _keys[0];

    /// <summary>The keys, for StackExchange.Redis.</summary>
    public RedisKey[] Keys => [.. _keys.Select(k => (RedisKey)k)];

    /// <summary>The arguments, for StackExchange.Redis.</summary>
    public RedisValue[] Arguments => [_data, .. _numbers.Select(n => (RedisValue)n), .. _strings.Select(s => (RedisValue)s)];

    /// <summary>Writes <c>EVALSHA</c>, or <c>EVAL</c> with the script's text when Redis does not have it (<c>NOSCRIPT</c>).</summary>
    public void Write(RespWriter writer, bool withScript)
    {
        writer.WriteArray(3 + _keys.Length + 1 + _numbers.Length + _strings.Length);
        writer.WriteBulk(withScript ? "EVAL"u8 : "EVALSHA"u8);
        writer.WriteBulk(withScript ? RedisScripts.Publish : Sha);
        writer.WriteBulk(_keys.Length);
        foreach (var key in _keys)
        {
            writer.WriteBulk(key);
        }

        writer.WriteBulk(_data.Span);
        foreach (var number in _numbers)
        {
            writer.WriteBulk(number);
        }

        foreach (var text in _strings)
        {
            writer.WriteBulk(text);
        }
    }

    /// <summary>Reads <c>{status, offset, epoch}</c> or <c>{-1}</c> as the broker's own connection received it.</summary>
    public static PublishReply Read(RespFrame frame, ReadOnlySpan<byte> reply)
    {
        if (frame.Kind != RespKind.Array || frame.Count is not (1 or 3))
        {
            throw new FormatException("The publish script's reply was not {status} or {status, offset, epoch}.");
        }

        var status = (int)Number(frame.Part(reply, 0));
        return frame.Count == 1
            ? new PublishReply(status, 0, null)
            : new PublishReply(status, Number(frame.Part(reply, 1)), Encoding.UTF8.GetString(frame.Part(reply, 2)));
    }

    /// <summary>Reads the same reply as StackExchange.Redis gives it.</summary>
    public static PublishReply Read(RedisResult result)
    {
        var parts = (RedisResult[])result!;
        return parts.Length == 1
            ? new PublishReply((int)parts[0], 0, null)
            : new PublishReply((int)parts[0], (long)parts[1], (string)parts[2]!);
    }

    private static long Number(ReadOnlySpan<byte> digits) =>
        Utf8Parser.TryParse(digits, out long value, out var used) && used == digits.Length
            ? value
            : throw new FormatException("The publish script's reply held something other than a number where one belongs.");
}
