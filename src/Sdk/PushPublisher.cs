using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace PushService.Client;

/// <summary>The answer to a publish.</summary>
/// <param name="Channel">The channel.</param>
/// <param name="Epoch">The channel's epoch.</param>
/// <param name="Offset">The publication's offset.</param>
public sealed record PublishResult(string Channel, string Epoch, long Offset);

/// <summary>The gateway refused a publish (a problem details answer that retrying will not change).</summary>
public sealed class PublishException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PublishException(int status, string detail) : base($"{status}: {detail}") => Status = status;

    /// <summary>Creates the exception.</summary>
    public PublishException() : base("The publish failed.") { }

    /// <summary>Creates the exception.</summary>
    public PublishException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public PublishException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The HTTP status.</summary>
    public int Status { get; }
}

/// <summary>
/// A backend's publisher over the REST API. Every publish carries an idempotency key (the caller's, or a new one), and
/// the key stays the same across retries, so a retry after a timeout or a 503 never publishes twice. Retries (with
/// backoff, honouring Retry-After) come from the HttpClient's resilience handler: <see cref="Create"/> adds one, or
/// register the client with <c>AddHttpClient&lt;PushPublisher&gt;().AddStandardResilienceHandler()</c>.
/// </summary>
public sealed class PushPublisher
{
    private readonly HttpClient _http;

    /// <summary>Wraps an HttpClient whose BaseAddress is the gateway and whose handler retries.</summary>
    public PushPublisher(HttpClient http) => _http = http;

    /// <summary>A publisher with its own HttpClient and a retry pipeline (up to <paramref name="retries"/> retries).</summary>
    public static PushPublisher Create(Uri gateway, string? apiKey = null, int retries = 6)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(retries);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (retries > 0)
        {
            // Polly's retry takes one attempt at least: with none asked for there is no retry strategy at all.
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = retries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = TimeSpan.FromSeconds(5),
                ShouldRetryAfterHeader = true,
            });
        }

        var pipeline = builder.AddTimeout(TimeSpan.FromSeconds(10)).Build();
        var http = new HttpClient(new ResilienceHandler(pipeline) { InnerHandler = new SocketsHttpHandler() }) { BaseAddress = gateway };
        if (apiKey is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return new PushPublisher(http);
    }

    /// <summary>Publishes <paramref name="json"/> (a JSON value) to <paramref name="channel"/>.</summary>
    /// <exception cref="PublishException">The gateway refused it, or kept failing through every retry.</exception>
    public async Task<PublishResult> PublishAsync(string channel, string json, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        using var document = JsonDocument.Parse(json);
        var body = new StringBuilder("{\"data\":").Append(json).Append(",\"idempotencyKey\":")
            .Append(JsonSerializer.Serialize(idempotencyKey ?? Guid.NewGuid().ToString("N"))).Append('}').ToString();

        // The resilience handler sends this same body on every attempt, so every retry carries the same key.
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/channels/{Uri.EscapeDataString(channel)}/messages")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        using var response = await _http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new PublishException((int)response.StatusCode, text);
        }

        using var answer = JsonDocument.Parse(text);
        var root = answer.RootElement;
        return new PublishResult(root.GetProperty("channel").GetString()!, root.GetProperty("epoch").GetString()!, root.GetProperty("offset").GetInt64());
    }
}
