using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace PushService.Gateway.Transport;

/// <summary>
/// The head of an HTTP/1.1 request read straight off a connection, when it is a WebSocket upgrade of the gateway's
/// path that ASP.NET Core would also accept (<c>GET</c>, <c>Connection: Upgrade</c>, <c>Upgrade: websocket</c>,
/// version 13, a 16-byte key). Anything else is left to the HTTP pipeline.
/// </summary>
internal sealed class UpgradeRequest
{
    /// <summary>Heads longer than this go to the HTTP pipeline, which enforces Kestrel's own limits.</summary>
    public const int MaxHeadBytes = 16 * 1024;

    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private UpgradeRequest(string key)
    {
        Key = key;
    }

    public string Key { get; }

    public string? Host { get; private set; }

    public string? Origin { get; private set; }

    /// <summary>The subprotocols the client asked for, comma-separated as sent.</summary>
    public string? Protocols { get; private set; }

    /// <summary>What a connection's first bytes are.</summary>
    public enum Parse
    {
        /// <summary>Not all of it has arrived.</summary>
        NeedMoreData,

        /// <summary>Not a WebSocket upgrade of the path: the HTTP pipeline serves it.</summary>
        NotOurs,

        /// <summary>A valid upgrade, ending at the position given.</summary>
        Upgrade,
    }

    /// <summary>Reads a request head for <paramref name="path"/> from the start of <paramref name="buffer"/>.</summary>
    public static Parse TryParse(ReadOnlySequence<byte> buffer, string path, out UpgradeRequest? request, out SequencePosition end)
    {
        request = null;
        end = buffer.Start;

        // Decide on the request line's start as soon as it is in: most connections are not ours and should not wait.
        var prefix = "GET " + path;
        Span<byte> start = stackalloc byte[prefix.Length + 1];
        var available = (int)Math.Min(start.Length, buffer.Length);
        buffer.Slice(0, available).CopyTo(start);
        for (var i = 0; i < available; i++)
        {
            var matches = i < prefix.Length ? start[i] == prefix[i] : start[i] is (byte)' ' or (byte)'?';
            if (!matches)
            {
                return Parse.NotOurs;
            }
        }

        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, "\r\n\r\n"u8))
        {
            return buffer.Length > MaxHeadBytes ? Parse.NotOurs : Parse.NeedMoreData;
        }

        if (head.Length > MaxHeadBytes)
        {
            return Parse.NotOurs;
        }

        var lines = Encoding.Latin1.GetString(head).Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[2] != "HTTP/1.1")
        {
            return Parse.NotOurs;
        }

        string? upgrade = null, connection = null, version = null, key = null, host = null, origin = null, protocols = null;
        for (var i = 1; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return Parse.NotOurs;
            }

            var name = lines[i].AsSpan(0, colon);
            var value = lines[i][(colon + 1)..].Trim(' ', '\t');
            if (name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase))
            {
                upgrade = value;
            }
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                connection = Join(connection, value);
            }
            else if (name.Equals("Sec-WebSocket-Version", StringComparison.OrdinalIgnoreCase))
            {
                version = value;
            }
            else if (name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase))
            {
                key = value;
            }
            else if (name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                host = value;
            }
            else if (name.Equals("Origin", StringComparison.OrdinalIgnoreCase))
            {
                origin = value;
            }
            else if (name.Equals("Sec-WebSocket-Protocol", StringComparison.OrdinalIgnoreCase))
            {
                protocols = Join(protocols, value);
            }
        }

        request = Create(upgrade, connection, version, key, host, origin, protocols);
        if (request is null)
        {
            return Parse.NotOurs;
        }

        end = reader.Position;
        return Parse.Upgrade;
    }

    /// <summary>The same request as the HTTP pipeline sees it; null when it is not a valid WebSocket upgrade.</summary>
    public static UpgradeRequest? FromHttp(HttpRequest request)
    {
        if (!HttpMethods.IsGet(request.Method) || request.Protocol != "HTTP/1.1")
        {
            return null;
        }

        var headers = request.Headers;
        return Create(headers.Upgrade.ToString(), headers.Connection.ToString(), headers.SecWebSocketVersion.ToString(), headers.SecWebSocketKey.ToString(),
            request.Host.Value, headers.Origin.ToString(), headers.SecWebSocketProtocol.ToString());
    }

    private static UpgradeRequest? Create(string? upgrade, string? connection, string? version, string? key, string? host, string? origin, string? protocols)
    {
        if (!string.Equals(upgrade, "websocket", StringComparison.OrdinalIgnoreCase)
            || !HasToken(connection, "Upgrade")
            || version != "13"
            || key is null || !IsValidKey(key))
        {
            return null;
        }

        return new UpgradeRequest(key)
        {
            Host = host,
            Origin = string.IsNullOrEmpty(origin) ? null : origin,
            Protocols = string.IsNullOrEmpty(protocols) ? null : protocols,
        };
    }

    /// <summary>Whether the client asked for <paramref name="protocol"/>.</summary>
    public bool Requests(string protocol) => HasToken(Protocols, protocol);

    /// <summary>The <c>101 Switching Protocols</c> response, as ASP.NET Core would send it.</summary>
    public byte[] SwitchingProtocolsResponse(string? subProtocol)
    {
        var response = new StringBuilder(160)
            .Append("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ")
            .Append(AcceptKey(Key))
            .Append("\r\n");
        if (subProtocol is not null)
        {
            response.Append("Sec-WebSocket-Protocol: ").Append(subProtocol).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(response.Append("\r\n").ToString());
    }

    /// <summary>The <c>Sec-WebSocket-Accept</c> value for a key (RFC 6455 section 4.2.2).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350", Justification = "RFC 6455 prescribes SHA-1 for the handshake; it protects nothing.")]
    public static string AcceptKey(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));

    private static bool IsValidKey(string key)
    {
        Span<byte> decoded = stackalloc byte[24];
        return Convert.TryFromBase64String(key, decoded, out var written) && written == 16;
    }

    private static string Join(string? existing, string value) => existing is null ? value : existing + "," + value;

    private static bool HasToken(string? list, string token)
    {
        if (list is null)
        {
            return false;
        }

        foreach (var part in list.Split(','))
        {
            if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
