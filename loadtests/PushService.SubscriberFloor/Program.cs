// What receiving a Redis pub/sub message costs a .NET process that does nothing with it, two ways: through
// StackExchange.Redis (a ChannelMessageQueue per channel, read on the thread pool, as the gateway does) and through a
// bare socket read in a loop. Run it beside a node under load (see loadtests/README.md) with the node's Redis channels:
//
//   dotnet run -c Release --project loadtests/PushService.SubscriberFloor -- <library|socket> <redis port> <seconds> <channel>...
//
// It subscribes, lets 10 s pass, then prints the process's CPU time per message received over <seconds>. Run it with
// and without DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1: with it, the socket loop runs on the socket event thread.
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;

if (args.Length < 4 || args[0] is not ("library" or "socket"))
{
    Console.Error.WriteLine("usage: <library|socket> <redis port> <seconds> <channel>...");
    return 2;
}

var port = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
var seconds = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
var channels = args[3..];
var received = new long[1];

if (args[0] == "library")
{
    var options = new ConfigurationOptions { EndPoints = { { "127.0.0.1", port } }, SocketManager = SocketManager.ThreadPool };
    var multiplexer = await ConnectionMultiplexer.ConnectAsync(options);
    var subscriber = multiplexer.GetSubscriber();

    // As the gateway does: the subscription connection can come up a moment after the multiplexer reports itself up.
    while (!subscriber.IsConnected())
    {
        await Task.Delay(10);
    }

    foreach (var channel in channels)
    {
        var queue = await subscriber.SubscribeAsync(RedisChannel.Literal(channel));
        queue.OnMessage(_ => Interlocked.Increment(ref received[0]));
    }
}
else
{
    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
    await socket.ConnectAsync("127.0.0.1", port);
    var command = new StringBuilder($"*{channels.Length + 1}\r\n$9\r\nSUBSCRIBE\r\n");
    foreach (var channel in channels)
    {
        command.Append(System.Globalization.CultureInfo.InvariantCulture, $"${Encoding.UTF8.GetByteCount(channel)}\r\n{channel}\r\n");
    }

    await socket.SendAsync(Encoding.UTF8.GetBytes(command.ToString()));
    _ = Task.Run(() => CountMessagesAsync(socket, received));
}

await Task.Delay(TimeSpan.FromSeconds(10));
var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
var before = Interlocked.Read(ref received[0]);
await Task.Delay(TimeSpan.FromSeconds(seconds));
var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
var messages = Interlocked.Read(ref received[0]) - before;
if (messages == 0)
{
    // Seen now and then with the library on the first run after a node starts: a figure of nothing is no figure.
    Console.Error.WriteLine($"{args[0]}: no message arrived in {seconds} s; run it again (is the node publishing to these channels?)");
    return 1;
}

Console.WriteLine($"{args[0]}: {messages} messages, {cpu.TotalMicroseconds / messages:F1} us of CPU per message");
return 0;

// Counts message pushes by their marker; one split between two reads is missed, which a count over thousands absorbs.
static async Task CountMessagesAsync(Socket socket, long[] received)
{
    var buffer = new byte[65536];
    while (true)
    {
        var read = await socket.ReceiveAsync(buffer);
        if (read == 0)
        {
            return;
        }

        var span = buffer.AsSpan(0, read);
        int at;
        while ((at = span.IndexOf("$7\r\nmessage"u8)) >= 0)
        {
            Interlocked.Increment(ref received[0]);
            span = span[(at + 11)..];
        }
    }
}
