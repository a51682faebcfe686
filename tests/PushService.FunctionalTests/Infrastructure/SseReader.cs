using System.Net;
using System.Text.Json;
using System.Threading.Channels;

namespace PushService.FunctionalTests.Infrastructure;

/// <summary>
/// An event stream read as the HTML standard's EventSource reads it (fields per line, an event per blank line, comments
/// kept apart), from a plain HttpClient: each event with its <c>data</c> parsed as JSON and the last id at that point.
/// </summary>
public sealed class SseReader : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<Event> _events = Channel.CreateUnbounded<Event>();
    private readonly Task _reading;

    private readonly TaskCompletionSource _resumed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SseReader(HttpResponseMessage response, bool paused)
    {
        _response = response;
        if (!paused)
        {
            _resumed.SetResult();
        }

        _reading = ReadAsync();
    }

    /// <summary>Starts reading a stream opened paused (a client that falls behind).</summary>
    public void Resume() => _resumed.TrySetResult();

    public sealed record Event(string? Id, JsonElement Data)
    {
        public string Type => Data.GetProperty("type").GetString()!;
    }

    public HttpResponseMessage Response => _response;

    /// <summary>Comments seen (the heartbeat).</summary>
    public int Comments { get; private set; }

    /// <summary>The retry the stream asked for, in milliseconds.</summary>
    public int? Retry { get; private set; }

    /// <summary>True once the server ended the response.</summary>
    public bool Ended { get; private set; }

    public static async Task<SseReader> OpenAsync(HttpClient http, string path, string? lastEventId = null, string? bearer = null, string? origin = null,
        bool paused = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }

        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return new SseReader(response, paused);
    }

    /// <summary>The next event (not a comment).</summary>
    public async Task<Event> NextAsync(TimeSpan? timeout = null) =>
        await _events.Reader.ReadAsync().AsTask().WaitAsync(timeout ?? TimeSpan.FromSeconds(15));

    /// <summary>The next <paramref name="count"/> events of <paramref name="type"/>, skipping others.</summary>
    public async Task<List<Event>> NextAsync(string type, int count, TimeSpan? timeout = null)
    {
        var found = new List<Event>();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        while (found.Count < count)
        {
            var e = await _events.Reader.ReadAsync(cancel.Token);
            if (e.Type == type)
            {
                found.Add(e);
            }
        }

        return found;
    }

    /// <summary>Completes when the server has ended the stream.</summary>
    public Task Completion => _reading;

    private async Task ReadAsync()
    {
        if (_response.StatusCode != HttpStatusCode.OK)
        {
            _events.Writer.Complete();
            return;
        }

        try
        {
            await _resumed.Task.WaitAsync(_stop.Token);
            using var reader = new StreamReader(await _response.Content.ReadAsStreamAsync(_stop.Token));
            string? id = null;
            var data = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (data.Count > 0)
                    {
                        await _events.Writer.WriteAsync(new Event(id, JsonDocument.Parse(string.Join('\n', data)).RootElement.Clone()));
                        data.Clear();
                    }

                    continue;
                }

                if (line[0] == ':')
                {
                    Comments++;
                    continue;
                }

                var colon = line.IndexOf(':');
                var field = colon < 0 ? line : line[..colon];
                var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
                switch (field)
                {
                    case "id":
                        id = value;
                        break;
                    case "data":
                        data.Add(value);
                        break;
                    case "retry":
                        Retry = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                }
            }

            Ended = true;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException)
        {
            // Stopped by the test, or the node went away.
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _response.Dispose();
        try
        {
            await _reading;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }
}
