using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace PushService.Pushctl;

/// <summary>The gateway's REST API as pushctl calls it: answers as JSON, refusals as <see cref="CliException"/> with the problem's detail.</summary>
internal sealed class GatewayClient(Uri gateway, string? apiKey) : IDisposable
{
    private readonly HttpClient _http = Create(gateway, apiKey);

    public Uri Gateway { get; } = gateway;

    /// <summary>The gateway's WebSocket address: the same host, ws or wss, path /ws.</summary>
    public Uri WebSocket => new UriBuilder(Gateway) { Scheme = Gateway.Scheme == Uri.UriSchemeHttps ? "wss" : "ws", Path = Gateway.AbsolutePath.TrimEnd('/') + "/ws" }.Uri;

    public Task<JsonElement> GetAsync(string path, CancellationToken cancellationToken) => SendAsync(HttpMethod.Get, path, null, cancellationToken);

    public Task<JsonElement> PostAsync(string path, string body, CancellationToken cancellationToken) => SendAsync(HttpMethod.Post, path, body, cancellationToken);

    /// <summary>A channel's part of a path: percent-encoded (dm#42 is dm%2342).</summary>
    public static string ChannelPath(string channel) => "channels/" + Uri.EscapeDataString(channel);

    private async Task<JsonElement> SendAsync(HttpMethod method, string path, string? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, "api/v1/" + path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new CliException(ExitCodes.Unavailable, $"cannot reach the gateway at {Gateway}: {ex.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unavailable, $"the gateway at {Gateway} did not answer in time");
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw Refusal((int)response.StatusCode, text, response.Headers.RetryAfter);
            }

            try
            {
                using var document = JsonDocument.Parse(text);
                return document.RootElement.Clone();
            }
            catch (JsonException)
            {
                throw new CliException(ExitCodes.Failed, $"{Gateway} answered {(int)response.StatusCode} with something that is not JSON: is it a PushService gateway?");
            }
        }
    }

    /// <summary>The gateway's refusal, told by its problem details.</summary>
    public static CliException Refusal(int status, string body, RetryConditionHeaderValue? retryAfter = null)
    {
        var detail = body;
        try
        {
            using var problem = JsonDocument.Parse(body);
            if (problem.RootElement.ValueKind == JsonValueKind.Object)
            {
                detail = problem.RootElement.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()!
                    : problem.RootElement.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
                    : body;
            }
        }
        catch (JsonException)
        {
            // Not problem details (a proxy's page, say): its text is all there is.
        }

        var after = retryAfter?.Delta is { } delta ? $" (retry after {delta.TotalSeconds:0} s)" : "";
        return new CliException(ExitCodes.ForStatus(status), $"{status}: {detail.Trim()}{after}");
    }

    private static HttpClient Create(Uri gateway, string? apiKey)
    {
        var http = new HttpClient { BaseAddress = new Uri(gateway.ToString().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if (!string.IsNullOrEmpty(apiKey))
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return http;
    }

    public void Dispose() => _http.Dispose();
}
