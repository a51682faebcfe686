using StackExchange.Redis;

namespace PushService.Broker.Redis;

/// <summary>
/// Which Redis failures mean "the backplane cannot serve now" (and become <see cref="BrokerUnavailableException"/>, so
/// callers answer 503 or <c>unavailable</c>) rather than a fault in the gateway. One definition for every Redis caller.
/// </summary>
internal static class RedisFailures
{
    private static readonly string[] TransientServerErrors =
        ["LOADING", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "UNBLOCKED"];

    /// <summary>A server error Redis gives while starting, failing over or resharding (<c>NOREPLICAS</c>: a primary with
    /// <c>min-replicas-to-write</c> and too few replicas; <c>UNBLOCKED</c>: a <c>WAIT</c> ended by the server's change of
    /// role).</summary>
    public static bool IsTransient(RedisServerException ex) =>
        TransientServerErrors.Any(prefix => ex.Message.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>True when <paramref name="ex"/> says Redis is away or not answering.</summary>
    public static bool IsUnavailable(Exception ex) =>
        ex is RedisConnectionException or RedisTimeoutException or TimeoutException
        || (ex is RedisServerException server && IsTransient(server));

    public static BrokerUnavailableException Unavailable(Exception ex, TimeSpan retryAfter) =>
        new($"The Redis backplane did not answer: {ex.Message}", ex) { RetryAfter = retryAfter };

    /// <summary>Runs a Redis call, turning unavailability into <see cref="BrokerUnavailableException"/>.</summary>
    public static async Task<T> GuardAsync<T>(Func<Task<T>> call, TimeSpan retryAfter)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable(ex, retryAfter);
        }
    }

    /// <inheritdoc cref="GuardAsync{T}(Func{Task{T}}, TimeSpan)"/>
    public static async Task GuardAsync(Func<Task> call, TimeSpan retryAfter)
    {
        try
        {
            await call();
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable(ex, retryAfter);
        }
    }
}
