using System.Diagnostics;
using System.Globalization;
using PushService.FunctionalTests.Infrastructure;

namespace PushService.FunctionalTests;

/// <summary>
/// The coalescing window batches a busy connection's pushes; replies to commands never wait for it. A window of one
/// second (the longest allowed) makes the difference plain: a reply held by it would take seconds, not milliseconds.
/// </summary>
public sealed class CoalescingTests : IAsyncLifetime
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);
    private GatewayHost _host = null!;

    public Task InitializeAsync()
    {
        _host = GatewayHost.Start(new Dictionary<string, string?>
        {
            ["PushService:WebSocket:WriteCoalescing"] = Window.ToString("c", CultureInfo.InvariantCulture),
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task Replies_GoOutAtOnce_WhateverTheWindow()
    {
        await using var client = await _host.ConnectAsync();
        var watch = Stopwatch.StartNew();
        await client.ResultAsync(new { op = "subscribe", channel = "replies" });
        for (var i = 0; i < 5; i++)
        {
            await client.ResultAsync(new { op = "ping" });
        }

        // Six replies, each flushed less than a window after the one before: coalesced, they would take five windows.
        Assert.True(watch.Elapsed < 2 * Window, $"six replies took {watch.Elapsed}");
    }

    [Fact]
    public async Task PushesRightAfterAFlush_WaitForTheWindow_AndGoInOneFrame()
    {
        await using var client = await _host.ConnectAsync();
        await client.ResultAsync(new { op = "subscribe", channel = "window" });
        var framesBefore = client.FramesReceived;
        var watch = Stopwatch.StartNew();
        for (var i = 1; i <= 4; i++)
        {
            await _host.PublishAsync("window", i.ToString(CultureInfo.InvariantCulture));
        }

        var messages = await client.MessagesAsync("window", 4);
        Assert.Equal([1, 2, 3, 4], messages.Select(m => m.GetProperty("data").GetInt32()));
        Assert.True(watch.Elapsed >= Window / 4, $"the pushes came {watch.Elapsed} after the subscribe reply, inside the window");
        Assert.Equal(framesBefore + 1, client.FramesReceived);
    }
}
