using System.IO.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using PushService.Gateway.Configuration;
using PushService.Gateway.Connections;
using PushService.Gateway.Hub;

namespace PushService.UnitTests;

/// <summary>A connection's subscriptions by channel: one in a field, more in a dictionary, the same answers either way.</summary>
public sealed class SubscriptionSetTests : IAsyncDisposable
{
    private readonly SendScheduler.SendLoop _loop = new(TimeSpan.Zero, TimeProvider.System);
    private readonly ClientConnection _connection;
    private readonly SubscriptionSet _set = new();

    public SubscriptionSetTests()
    {
        var pipe = new Pipe();
        _connection = new ClientConnection(new PipePair(pipe.Reader, pipe.Writer), static _ => { }, pipe, "c1",
            new ConnectionSettings(1 << 20, 1000, 65536), _loop, static (_, _) => ValueTask.CompletedTask, TimeProvider.System, NullLogger.Instance);
    }

    public ValueTask DisposeAsync() => _loop.DisposeAsync();

    private Subscription On(string channel) => new(_connection, channel) { Namespace = new NamespaceOptions() };

    [Fact]
    public void OneSubscription_IsFoundReplacedAndRemoved()
    {
        var first = On("news");
        _set.Set(first);
        Assert.Equal(1, _set.Count);
        Assert.True(_set.Contains("news"));
        Assert.False(_set.Contains("sport"));

        // A newer subscription to the same channel takes its place; removing the older one then removes nothing.
        var second = On("news");
        _set.Set(second);
        Assert.Equal(1, _set.Count);
        Assert.False(_set.TryRemove(first));
        Assert.False(_set.TryRemove("sport", out _));

        Assert.True(_set.TryRemove("news", out var removed));
        Assert.Same(second, removed);
        Assert.Equal(0, _set.Count);
        Assert.Empty(_set.Snapshot());
    }

    [Fact]
    public void ManySubscriptions_BehaveAsOne_AndTakeAllEmptiesTheSet()
    {
        var subscriptions = Enumerable.Range(0, 5).Select(i => On($"c{i}")).ToArray();
        foreach (var subscription in subscriptions)
        {
            _set.Set(subscription);
        }

        Assert.Equal(5, _set.Count);
        Assert.All(subscriptions, s => Assert.True(_set.Contains(s.Channel)));
        Assert.True(subscriptions.ToHashSet().SetEquals(_set.Snapshot()));

        var replacement = On("c2");
        _set.Set(replacement);
        Assert.False(_set.TryRemove(subscriptions[2]));
        Assert.True(_set.TryRemove(replacement));
        Assert.True(_set.TryRemove("c0", out var c0));
        Assert.Same(subscriptions[0], c0);

        var rest = _set.TakeAll();
        Assert.True(new[] { subscriptions[1], subscriptions[3], subscriptions[4] }.ToHashSet().SetEquals(rest));
        Assert.Equal(3, rest.Length);
        Assert.Equal(0, _set.Count);
        Assert.False(_set.Contains("c1"));
        Assert.Empty(_set.TakeAll());
    }

    [Fact]
    public async Task ConcurrentChanges_LeaveExactlyWhatWasAddedAndNotRemoved()
    {
        var subscriptions = Enumerable.Range(0, 400).Select(i => On($"c{i}")).ToArray();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(() =>
        {
            for (var i = worker; i < subscriptions.Length; i += 4)
            {
                _set.Set(subscriptions[i]);
                if (i % 2 == 0)
                {
                    Assert.True(_set.TryRemove(subscriptions[i]));
                }
            }
        })));

        Assert.Equal(200, _set.Count);
        Assert.True(subscriptions.Where((_, i) => i % 2 == 1).ToHashSet().SetEquals(_set.Snapshot()));
    }
}
