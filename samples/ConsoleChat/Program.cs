// A console chat on the .NET client, in the same room as samples/chat:
//   dotnet run --project samples/ConsoleChat -- alice
// Lines typed are published over the WebSocket (the chat namespace lets clients publish); messages from the room are
// printed as they come, once each and in order, across reconnects. GATEWAY=ws://host:port/ws points it elsewhere.
using System.Text.Json.Nodes;
using PushService.Client;

var name = args.Length > 0 ? args[0] : Environment.UserName;
var endpoint = new Uri(Environment.GetEnvironmentVariable("GATEWAY") ?? "ws://localhost:5000/ws");
const string Channel = "chat:lobby";

var options = new PushClientOptions { Name = "console-chat" };
options.Endpoints.Add(endpoint);
await using var client = new PushClient(options);
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

await client.ConnectAsync(stop.Token);
var lobby = await client.SubscribeAsync(Channel, stop.Token);
Console.WriteLine($"Connected to {client.NodeId} as {name}; type a line and press Enter (Ctrl+C leaves).");

var printing = Task.Run(async () =>
{
    await foreach (var e in lobby.Events.ReadAllAsync(stop.Token))
    {
        switch (e.Kind)
        {
            case ChannelEventKind.Message:
                Console.WriteLine($"[{e.Data.GetProperty("user").GetString()}] {e.Data.GetProperty("text").GetString()}");
                break;
            case ChannelEventKind.Join or ChannelEventKind.Leave:
                Console.WriteLine($"* someone {(e.Kind == ChannelEventKind.Join ? "joined" : "left")}");
                break;
            case ChannelEventKind.Reset:
                Console.WriteLine("* some messages could not be recovered");
                break;
        }
    }
}, stop.Token);

while (!stop.IsCancellationRequested && await Console.In.ReadLineAsync(stop.Token) is { } line)
{
    if (line.Length > 0)
    {
        try
        {
            await client.PublishAsync(Channel, new JsonObject { ["user"] = name, ["text"] = line }, stop.Token);
        }
        catch (PushCommandException ex)
        {
            Console.WriteLine($"* not sent: {ex.Message}");
        }
    }
}

await stop.CancelAsync();
try
{
    await printing;
}
catch (OperationCanceledException)
{
}
