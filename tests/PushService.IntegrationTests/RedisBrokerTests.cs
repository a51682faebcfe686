using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PushService.Broker;
using PushService.Broker.Redis;
using PushService.Broker.Specification;
using PushService.IntegrationTests.Infrastructure;

namespace PushService.IntegrationTests;

/// <summary>What only the Redis broker must do: several nodes, continuity after lost pub/sub messages, epochs, outages.</summary>
public sealed class RedisBrokerTests : IAsyncLifetime
{
    private readonly List<ServiceProvider> _providers = [];
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    private async Task<(RedisBroker Broker, BrokerSpecification.RecordingHandler Handler)> NodeAsync(Action<RedisBrokerOptions>? configure = null)
    {
        var provider = RedisBrokerSpecificationTests.BuildNode(_redis.Configuration, configure);
        _providers.Add(provider);
        var handler = new BrokerSpecification.RecordingHandler();
        var broker = provider.GetRequiredService<RedisBroker>();
        await broker.StartAsync(handler, CancellationToken.None);
        return (broker, handler);
    }

    private static readonly PublishOptions Keep = new() { HistorySize = 100, HistoryTtl = TimeSpan.FromMinutes(5) };

    private static byte[] Json(string text) => Encoding.UTF8.GetBytes(text);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task PublicationOnOneNode_ReachesEverySubscribedNodeInOrder(bool direct)
    {
        void Configure(RedisBrokerOptions o) => (o.BypassLibrarySubscriptions, o.BypassLibraryPublish) = (direct, direct);
        var (a, handlerA) = await NodeAsync(Configure);
        var (b, handlerB) = await NodeAsync(Configure);
        var (c, handlerC) = await NodeAsync(Configure);
        Assert.Equal(direct, a.ReadsSubscriptionsDirectly);
        Assert.Equal(direct, a.PublishesDirectly);
        await a.SubscribeAsync("x");
        await b.SubscribeAsync("x");
        for (var i = 1; i <= 30; i++)
        {
            await (i % 2 == 0 ? a : c).PublishAsync("x", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), Keep);
        }

        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), (await handlerA.WaitForAsync("x", 30)).Select(p => p.Offset));
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), (await handlerB.WaitForAsync("x", 30)).Select(p => p.Offset));
        Assert.Equal(direct ? 15 : 0, a.DirectCommands);
        Assert.Empty(handlerC.For("x"));
    }

    [Fact]
    public async Task LostPubSubMessage_IsFilledFromHistoryBeforeTheNextOne()
    {
        var (node, handler) = await NodeAsync();
        await node.SubscribeAsync("gap");
        await node.PublishAsync("gap", Json("1"), Keep);

        // Store offset 2 exactly as the publish script would, but without its PUBLISH: a pub/sub message that never came.
        Assert.Equal(":2", await _redis.CommandAsync("HINCRBY", "ps:{gap}:m", "o", "1"));
        var expires = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60_000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await _redis.CommandAsync("XADD", "ps:{gap}:s", "*", "o", "2", "x", expires, "d", "\"lost\"");

        await node.PublishAsync("gap", Json("3"), Keep);
        var delivered = await handler.WaitForAsync("gap", 3);
        Assert.Equal([1L, 2, 3], delivered.Select(p => p.Offset));
        Assert.Equal("\"lost\"", Encoding.UTF8.GetString(delivered[1].Data.Span));
        Assert.Empty(handler.Resets);
    }

    [Fact]
    public async Task LostHistory_ChangesTheEpoch_AndResetsTheStream()
    {
        var (node, handler) = await NodeAsync();
        await node.SubscribeAsync("flushed");
        var first = await node.PublishAsync("flushed", Json("1"), Keep);
        await handler.WaitForAsync("flushed", 1);

        Assert.Equal("+OK", await _redis.CommandAsync("FLUSHALL"));
        var second = await node.PublishAsync("flushed", Json("2"), Keep);
        Assert.NotEqual(first.Position.Epoch, second.Position.Epoch);
        Assert.Equal(1, second.Position.Offset);
        await handler.WaitUntilAsync(() => handler.Resets.Contains("flushed"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DroppedSubscriptionConnection_MissesNothing(bool direct)
    {
        var (publisher, _) = await NodeAsync();
        var (subscriber, handler) = await NodeAsync(o => o.BypassLibrarySubscriptions = direct);
        Assert.Equal(direct, subscriber.ReadsSubscriptionsDirectly);
        await subscriber.SubscribeAsync("dropped");
        await publisher.PublishAsync("dropped", Json("0"), Keep);
        await handler.WaitForAsync("dropped", 1);

        // Cut every pub/sub connection, then publish at once: the subscriber's node is resubscribing meanwhile.
        await _redis.CommandAsync("CLIENT", "KILL", "TYPE", "pubsub");
        for (var i = 1; i <= 20; i++)
        {
            await publisher.PublishAsync("dropped", Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), Keep);
        }

        var delivered = await handler.WaitForAsync("dropped", 21, TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(1, 21).Select(i => (long)i), delivered.Select(p => p.Offset));
        if (direct)
        {
            // Its own connection was cut too and came back (the multiplexer's restored connection may have led the resync).
            await WaitUntilAsync(() => subscriber.SubscriptionConnects == 2);
        }
    }

    [Fact]
    public async Task ConcurrentPublications_EachGetTheirOwnReply()
    {
        var (node, _) = await NodeAsync();
        Assert.True(node.PublishesDirectly);

        // Pipelined on one connection: every caller must get the reply to its own command, not a neighbour's.
        var publishes = Enumerable.Range(0, 400).Select(async i =>
        {
            await Task.Yield();
            var channel = $"many{i % 8}";
            var data = Json(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return (Channel: channel, Data: data, Result: await node.PublishAsync(channel, data, Keep));
        }).ToList();
        var results = await Task.WhenAll(publishes);

        Assert.Equal(400, node.DirectCommands);
        foreach (var group in results.GroupBy(r => r.Channel))
        {
            var history = await node.HistoryAsync(group.Key, new HistoryQuery());
            var dataByOffset = history.Publications.ToDictionary(p => p.Offset, p => Encoding.UTF8.GetString(p.Data.Span));
            Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), group.Select(r => r.Result.Position.Offset).Order());
            Assert.All(group, r => Assert.Equal(Encoding.UTF8.GetString(r.Data), dataByOffset[r.Result.Position.Offset]));
        }
    }

    [Fact]
    public async Task AScriptFlushedFromRedis_IsSentAgainWithItsText()
    {
        var (node, _) = await NodeAsync();
        Assert.Equal(1, (await node.PublishAsync("flushed", Json("1"), Keep)).Position.Offset);

        Assert.Equal("+OK", await _redis.CommandAsync("SCRIPT", "FLUSH"));
        Assert.Equal(2, (await node.PublishAsync("flushed", Json("2"), Keep)).Position.Offset);
        Assert.Equal(3, (await node.PublishAsync("flushed", Json("3"), Keep)).Position.Offset);

        // By SHA (the connection loaded the script), then after NOSCRIPT with the script's text, then by SHA again, all
        // on the broker's own connection.
        Assert.Equal(4, node.DirectCommands);
        Assert.Equal(1, node.CommandConnects);
    }

    [Fact]
    public async Task DroppedCommandConnection_Reconnects_AndPublishesOnItAgain()
    {
        var (node, handler) = await NodeAsync();
        await node.SubscribeAsync("cut");
        await node.PublishAsync("cut", Json("1"), Keep);
        Assert.Equal(1, node.CommandConnects);

        // Cuts the multiplexer's command connection as well: publications wait for either to come back.
        await _redis.CommandAsync("CLIENT", "KILL", "TYPE", "normal");
        for (var i = 2; i <= 10; i++)
        {
            await PublishWhenAvailableAsync(node, "cut", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await WaitUntilAsync(() => node.CommandConnects == 2);
        var sent = node.DirectCommands;
        Assert.Equal(11, (await node.PublishAsync("cut", Json("11"), Keep)).Position.Offset);
        Assert.Equal(sent + 1, node.DirectCommands);
        Assert.Equal(Enumerable.Range(1, 11).Select(i => (long)i), (await handler.WaitForAsync("cut", 11, TimeSpan.FromSeconds(20))).Select(p => p.Offset));
    }

    [Fact]
    public async Task ADatabaseOtherThanZero_IsWhereTheBrokersOwnConnectionPublishes()
    {
        var (node, _) = await NodeAsync(o => o.Configuration = $"{_redis.Configuration},defaultDatabase=3");
        Assert.Equal(1, (await node.PublishAsync("numbered", Json("1"), Keep)).Position.Offset);
        Assert.Equal(1, node.DirectCommands);

        // Read back through StackExchange.Redis, which selects database 3 by itself; database 0 has no such key.
        var history = await node.HistoryAsync("numbered", new HistoryQuery());
        Assert.Equal([1L], history.Publications.Select(p => p.Offset));
        Assert.Equal(":0", await _redis.CommandAsync("EXISTS", "ps:{numbered}:m"));
    }

    [Fact]
    public async Task APublicationLargerThanTheSubscriptionReadBuffer_ArrivesWhole()
    {
        var (node, handler) = await NodeAsync();
        Assert.True(node.ReadsSubscriptionsDirectly);
        await node.SubscribeAsync("large");

        // The connection reads into 64 KiB at first: this one takes several reads and a larger buffer.
        var data = Json($"\"{new string('x', 300_000)}\"");
        await node.PublishAsync("large", data, Keep);
        await node.PublishAsync("large", Json("2"), Keep);

        var delivered = await handler.WaitForAsync("large", 2);
        Assert.Equal(data, delivered[0].Data.ToArray());
        Assert.Equal("2", Encoding.UTF8.GetString(delivered[1].Data.Span));

        // Read as it came, not recovered from history after a failed connection.
        Assert.Equal(1, node.SubscriptionConnects);
    }

    [Fact]
    public async Task ARedisWithAPassword_IsSubscribedToAndPublishedOnAfterAuthenticating()
    {
        Assert.Equal("+OK", await _redis.CommandAsync("CONFIG", "SET", "requirepass", "s3cret"));
        var (node, handler) = await NodeAsync(o => o.Configuration = $"{_redis.Configuration},password=s3cret");
        Assert.True(node.ReadsSubscriptionsDirectly);
        Assert.True(node.IsAvailable);

        await node.SubscribeAsync("guarded");
        await node.PublishAsync("guarded", Json("1"), Keep);
        Assert.Equal([1L], (await handler.WaitForAsync("guarded", 1)).Select(p => p.Offset));
        Assert.Equal(1, node.DirectCommands);
    }

    [Fact]
    public async Task RedisDown_PublishFailsFastAsUnavailable_AndRecoversWhenItReturns()
    {
        var (node, handler) = await NodeAsync();
        await node.SubscribeAsync("outage");
        await node.PublishAsync("outage", Json("1"), Keep);
        Assert.True(node.IsAvailable);

        _redis.Kill();
        var watch = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<BrokerUnavailableException>(() => node.PublishAsync("outage", Json("2"), Keep).AsTask());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        Assert.True(failure.RetryAfter > TimeSpan.Zero);
        await WaitUntilAsync(() => !node.IsAvailable);
        await Assert.ThrowsAsync<BrokerUnavailableException>(() => node.HistoryAsync("outage", new HistoryQuery()).AsTask());

        await _redis.LaunchAsync();
        await WaitUntilAsync(() => node.IsAvailable, TimeSpan.FromSeconds(20));
        var next = await PublishWhenAvailableAsync(node, "outage", "3");
        Assert.Equal(2, next.Position.Offset);
        var delivered = await handler.WaitForAsync("outage", 2, TimeSpan.FromSeconds(20));
        Assert.Equal([1L, 2], delivered.Select(p => p.Offset));
    }

    [Fact]
    public async Task UnresponsiveRedis_FailsThePublishAfterTheOperationTimeout_NotWhenRedisAnswersAgain()
    {
        var (node, _) = await NodeAsync(options => options.OperationTimeout = TimeSpan.FromMilliseconds(700));
        await node.PublishAsync("paused", Json("1"), Keep);

        // The connection stays up but nothing is answered: only a per-call timeout can end the publish. The broker's own
        // connection checks a few times per timeout (StackExchange.Redis, without it, about once a second), so the call
        // ends 0.7-1.7 s in; StackExchange.Redis's default (5 s) or the pause (15 s) would be far later.
        Assert.Equal("+OK", await _redis.CommandAsync("CLIENT", "PAUSE", "15000", "ALL"));
        var watch = Stopwatch.StartNew();
        var failure = await Assert.ThrowsAsync<BrokerUnavailableException>(() => node.PublishAsync("paused", Json("2"), Keep).AsTask());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.65), $"failed after {watch.Elapsed}, before the timeout");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"took {watch.Elapsed}: not the operation timeout");
        Assert.IsType<StackExchange.Redis.RedisTimeoutException>(failure.InnerException);
    }

    [Fact]
    public async Task ACatchUpThatCannotReadHistory_KeepsTheNodeBehind_UntilItCan_AndLosesNothing()
    {
        var (node, handler) = await NodeAsync();
        await node.SubscribeAsync("behind");
        await node.PublishAsync("behind", Json("1"), Keep);
        await handler.WaitForAsync("behind", 1);

        // Offset 2 is stored as the publish script would store it, but never reaches the node on pub/sub.
        Assert.Equal(":2", await _redis.CommandAsync("HINCRBY", "ps:{behind}:m", "o", "1"));
        var expires = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60_000).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await _redis.CommandAsync("XADD", "ps:{behind}:s", "*", "o", "2", "x", expires, "d", "\"missed\"");

        // A catch-up while Redis is frozen: its history read cannot be answered, which is no loss, only a wait.
        await _redis.SignalAsync("STOP");
        try
        {
            node.ResyncAll();
            Assert.False(node.IsCaughtUp);
            Assert.Equal(1, node.Statistics.ChannelsBehind);
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.False(node.IsCaughtUp);
        }
        finally
        {
            await _redis.SignalAsync("CONT");
        }

        await WaitUntilAsync(() => node.IsCaughtUp, TimeSpan.FromSeconds(20));
        var delivered = await handler.WaitForAsync("behind", 2);
        Assert.Equal([1L, 2], delivered.Select(p => p.Offset));
        Assert.Empty(handler.Resets);
        Assert.Equal(0, node.Statistics.ContinuityResets);
        Assert.Equal(1, node.Statistics.GapFills);
    }

    /// <summary>
    /// <c>PushService:Redis:MinReplicas</c>: a publish is answered only once the replica holds it, and announced to the
    /// nodes only then; with no replica to hold it, it is refused and announced to nobody.
    /// </summary>
    [Fact]
    public async Task WithMinReplicas_WithoutAReplica_APublishIsRefused_AndAnnouncedToNobody_ButWithOne_ItIsAnsweredAndDelivered()
    {
        var (broker, handler) = await NodeAsync(o => (o.MinReplicas, o.ReplicaTimeout) = (1, TimeSpan.FromMilliseconds(300)));
        Assert.True(broker.WaitsForReplicas);
        Assert.False(broker.PublishesDirectly);
        await broker.SubscribeAsync("r");

        var refused = await Assert.ThrowsAsync<BrokerUnavailableException>(async () => await broker.PublishAsync("r", "1"u8.ToArray(), Keep));
        Assert.Contains("0 of 1 replicas", refused.Message, StringComparison.Ordinal);

        await using var replica = await RedisServer.StartAsync("--replicaof", "127.0.0.1", _redis.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await _redis.WaitForOnlineReplicasAsync(1, TimeSpan.FromSeconds(30));

        // The refused one was stored all the same: the replica has it too now, and the next publication's gap brings it.
        var answered = await broker.PublishAsync("r", "2"u8.ToArray(), Keep);
        Assert.Equal(2, answered.Position.Offset);
        var delivered = await handler.WaitForAsync("r", 2);
        Assert.Equal(["1", "2"], delivered.Select(p => Encoding.UTF8.GetString(p.Data.Span)));
        Assert.Equal(":2", await replica.CommandAsync("XLEN", "ps:{r}:s"));
    }

    private static async Task<PublishResult> PublishWhenAvailableAsync(IBroker broker, string channel, string data)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                return await broker.PublishAsync(channel, Json(data), Keep);
            }
            catch (BrokerUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null) =>
        Poll.UntilAsync(condition, timeout ?? TimeSpan.FromSeconds(10));
}
