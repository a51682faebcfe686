// The SignalR peer: the same job as PushService (clients join a group per channel; a REST call sends to the group),
// scaled out with SignalR's own Redis backplane, so the load generator can measure both in one run.
using Microsoft.AspNetCore.SignalR;

var builder = WebApplication.CreateBuilder(args);
var redis = builder.Configuration["Redis"];
var signalR = builder.Services.AddSignalR();
if (!string.IsNullOrEmpty(redis))
{
    signalR.AddStackExchangeRedis(redis);
}

var app = builder.Build();
app.MapHub<PushHub>("/hub");
app.MapPost("/publish/{channel}", async (string channel, HttpRequest request, IHubContext<PushHub> hub) =>
{
    using var reader = new StreamReader(request.Body);
    var payload = await reader.ReadToEndAsync();
    await hub.Clients.Group(channel).SendAsync("message", channel, payload);
    return Results.Ok();
});
app.MapGet("/healthz", () => "ok");
app.Run();

/// <summary>Subscribers call <c>Join</c> once per channel.</summary>
internal sealed class PushHub : Hub
{
    public Task Join(string channel) => Groups.AddToGroupAsync(Context.ConnectionId, channel);
}
