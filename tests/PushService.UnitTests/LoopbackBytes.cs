using System.Net.Sockets;

namespace PushService.UnitTests;

/// <summary>Bytes to send and receive in the tests that run transports over real loopback sockets.</summary>
internal static class LoopbackBytes
{
    /// <summary>Receives exactly <paramref name="count"/> bytes; the stream ending before that fails the test.</summary>
    public static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received));
            Assert.NotEqual(0, n);
            received += n;
        }

        return buffer;
    }

    /// <summary>A payload whose every byte depends on its position, so that a byte lost, repeated or reordered shows.</summary>
    public static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i % 251);
        }

        return bytes;
    }
}
