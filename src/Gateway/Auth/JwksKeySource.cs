using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using PushService.Gateway.Configuration;

namespace PushService.Gateway.Auth;

/// <summary>
/// The signing keys of a JWKS address: fetched at start, refreshed on an interval, and again (at most once a minute)
/// when a token names a key id it does not know, so a key rotation at the issuer is picked up without a restart.
/// </summary>
public sealed partial class JwksKeySource : BackgroundService
{
    /// <summary>The name of the HttpClient the keys are fetched with (it carries the standard resilience handler).</summary>
    public const string HttpClientName = "pushservice-jwks";

    private static readonly TimeSpan UnknownKeyCooldown = TimeSpan.FromMinutes(1);
    private readonly IHttpClientFactory _http;
    private readonly JwtOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<JwksKeySource> _logger;
    private volatile IReadOnlyList<SecurityKey> _keys = [];
    private long _lastFetchTicks;
    private int _fetching;

    /// <summary>Creates the source.</summary>
    public JwksKeySource(IHttpClientFactory http, IOptions<PushServiceOptions> options, TimeProvider time, ILogger<JwksKeySource> logger)
    {
        _http = http;
        _options = options.Value.Auth.Jwt;
        _time = time;
        _logger = logger;
    }

    /// <summary>The keys of the last successful fetch.</summary>
    public IReadOnlyList<SecurityKey> Keys => _keys;

    /// <summary>Fetches again soon if <paramref name="keyId"/> is not among the known keys.</summary>
    public void OnUnknownKey(string? keyId)
    {
        if (_options.JwksUrl.Length == 0 || (keyId is not null && _keys.Any(k => k.KeyId == keyId)))
        {
            return;
        }

        if (_time.GetUtcNow().UtcTicks - Interlocked.Read(ref _lastFetchTicks) > UnknownKeyCooldown.Ticks)
        {
            _ = RefreshAsync(CancellationToken.None);
        }
    }

    /// <summary>Fetches the key set now; false when it could not be read (the old keys stay).</summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        if (_options.JwksUrl.Length == 0 || Interlocked.Exchange(ref _fetching, 1) == 1)
        {
            return false;
        }

        try
        {
            Interlocked.Exchange(ref _lastFetchTicks, _time.GetUtcNow().UtcTicks);
            using var client = _http.CreateClient(HttpClientName);
            var json = await client.GetStringAsync(new Uri(_options.JwksUrl), cancellationToken);
            var keys = new JsonWebKeySet(json).GetSigningKeys();
            _keys = [.. keys];
            Log.Fetched(_logger, keys.Count, _options.JwksUrl);
            return true;
        }
        catch (Exception ex) when (ex is HttpRequestException or ArgumentException or OperationCanceledException or System.Text.Json.JsonException)
        {
            Log.FetchFailed(_logger, _options.JwksUrl, ex.Message);
            return false;
        }
        finally
        {
            Volatile.Write(ref _fetching, 0);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.JwksUrl.Length == 0)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var ok = await RefreshAsync(stoppingToken);
            try
            {
                await Task.Delay(ok ? _options.JwksRefreshInterval : TimeSpan.FromSeconds(15), _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(800, LogLevel.Information, "Loaded {Count} signing keys from {Url}.")]
        public static partial void Fetched(ILogger logger, int count, string url);

        [LoggerMessage(801, LogLevel.Warning, "Could not load signing keys from {Url}: {Message}")]
        public static partial void FetchFailed(ILogger logger, string url, string message);
    }
}
