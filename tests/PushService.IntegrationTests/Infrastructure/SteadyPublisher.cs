using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// Publishes sequence numbers (<c>{"seq":N}</c>) round-robin over gateway nodes through the REST API, one at a time,
/// without retrying, and records every answer: which were acknowledged (200) at which offset, which were refused with
/// 503 (and whether with <c>Retry-After</c>), and anything else.
/// </summary>
public sealed class SteadyPublisher(IReadOnlyList<GatewayProcess> nodes, string channel, TimeSpan interval)
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private int _unavailable;
    private int _retryAfterMissing;
    private int _otherFailures;

    /// <summary>Sequence numbers answered 200, with the offset each got.</summary>
    public ConcurrentDictionary<int, long> Acknowledged { get; } = new();

    /// <summary>Publishes answered 503.</summary>
    public int Unavailable => Volatile.Read(ref _unavailable);

    /// <summary>503s without <c>Retry-After</c>, which the contract forbids.</summary>
    public int RetryAfterMissing => Volatile.Read(ref _retryAfterMissing);

    /// <summary>Answers neither 200 nor 503, and connections refused (a node just killed).</summary>
    public int OtherFailures => Volatile.Read(ref _otherFailures);

    /// <summary>The first few of those other answers, for a failure message.</summary>
    public ConcurrentQueue<string> OtherAnswers { get; } = new();

    /// <summary>Which nodes (by index) to publish to.</summary>
    public Func<int, bool> UseNode { get; set; } = _ => true;

    public async Task RunAsync(CancellationToken stop)
    {
        for (var sequence = 1; !stop.IsCancellationRequested; sequence++)
        {
            var candidates = Enumerable.Range(0, nodes.Count).Where(UseNode).ToList();
            var node = nodes[candidates[sequence % candidates.Count]];
            try
            {
                using var body = new StringContent($"{{\"data\":{{\"seq\":{sequence}}}}}", Encoding.UTF8, "application/json");
                using var response = await _http.PostAsync(new Uri(node.BaseAddress, $"/api/v1/channels/{channel}/messages"), body, CancellationToken.None);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(CancellationToken.None)).RootElement;
                    Acknowledged[sequence] = answer.GetProperty("offset").GetInt64();
                }
                else if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref _unavailable);
                    if (response.Headers.RetryAfter is null)
                    {
                        Interlocked.Increment(ref _retryAfterMissing);
                    }
                }
                else
                {
                    Other($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(CancellationToken.None)}");
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                // A node that was just killed refuses connections; that is not an acknowledged publish.
                Other(ex.Message);
            }

            await Task.Delay(interval, CancellationToken.None);
        }
    }

    /// <summary>
    /// Waits until <paramref name="count"/> more publishes than now have been answered as counted by
    /// <paramref name="counter"/>. Phases are measured in answers, not wall time, so a slow machine stretches the
    /// test instead of thinning it out.
    /// </summary>
    public Task WaitForMoreAsync(Func<SteadyPublisher, int> counter, int count, string what)
    {
        var target = counter(this) + count;
        return Poll.UntilAsync(() => counter(this) >= target, TimeSpan.FromSeconds(60),
            () => $"waited 60 s for {count} more {what}; got {counter(this) - target + count}");
    }

    private void Other(string answer)
    {
        if (Interlocked.Increment(ref _otherFailures) <= 3)
        {
            OtherAnswers.Enqueue(answer);
        }
    }
}
