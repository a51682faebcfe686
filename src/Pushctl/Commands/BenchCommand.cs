using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using HdrHistogram;
using PushService.Client;
using Spectre.Console;

namespace PushService.Pushctl.Commands;

/// <summary>
/// <c>pushctl bench</c>: a quick load test of a running gateway. Subscribers connect over WebSocket through the .NET
/// client and spread over a few channels; the publisher publishes through the REST API at a fixed rate; every message
/// carries its send time, so the latency from the publish call to receipt is measured, and every delivery is counted, so
/// a lost message is found. A live progress bar while it runs, a summary at the end; exit 1 if anything was lost.
/// For comparisons with other servers and sustained load, use loadtests/ (compare.sh) instead.
/// </summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions CamelCase = new(JsonSerializerDefaults.Web);

    public static Command Create(GlobalOptions globals)
    {
        var subscribers = Positive(new Option<int>("--subscribers", "-s") { Description = "WebSocket subscribers", DefaultValueFactory = _ => 100 }, 10_000);
        var channels = Positive(new Option<int>("--channels", "-c") { Description = "Channels the subscribers spread over", DefaultValueFactory = _ => 10 }, 1_000);
        var rate = Positive(new Option<int>("--rate", "-r") { Description = "Publications a second, over all channels", DefaultValueFactory = _ => 200 }, 100_000);
        var duration = new Option<TimeSpan>("--duration", "-d")
        {
            Description = "How long to publish (90s, 2m, hh:mm:ss)",
            DefaultValueFactory = _ => TimeSpan.FromSeconds(10),
            CustomParser = result => TokenCommand.ParseDuration(result.Tokens.Single().Value) is { } value && value > TimeSpan.Zero
                ? value
                : Invalid(result, $"'{result.Tokens.Single().Value}' is not a duration (10s, 2m, hh:mm:ss)."),
        };
        var payload = new Option<int>("--payload") { Description = "Bytes of padding in each message", DefaultValueFactory = _ => 64 };
        payload.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 0 or > 60_000)
            {
                r.AddError("--payload must be 0 to 60000.");
            }
        });
        var token = new Option<string?>("--token")
        {
            Description = "A connection token for the subscribers, where the gateway asks for one [env: PUSHCTL_TOKEN]",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PUSHCTL_TOKEN") is { Length: > 0 } t ? t : null,
        };

        var command = new Command("bench", "A quick load test: subscribers over WebSocket, a publisher over REST; latency and loss (scopes: publish)")
        {
            subscribers, channels, rate, duration, payload, token,
        };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var settings = new Settings(parsed.GetValue(subscribers), parsed.GetValue(channels), parsed.GetValue(rate), parsed.GetValue(duration),
                parsed.GetValue(payload), parsed.GetValue(token));
            using var gateway = globals.Gateway(parsed);
            var json = parsed.GetValue(globals.Json);
            var run = new Run(settings, gateway);
            try
            {
                await run.ConnectAsync(json, cancellationToken);
                await run.PublishAsync(json, cancellationToken);
            }
            finally
            {
                await run.DisposeAsync();
            }

            var summary = run.Summary();
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(summary, CamelCase));
            }
            else
            {
                Show(summary);
            }

            return summary.Lost == 0 && summary.PublishFailures == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return command;
    }

    private static void Show(Summary s)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn(new TableColumn("").RightAligned()).HideHeaders();
        table.AddRow("subscribers / channels", $"{s.Subscribers} / {s.Channels}");
        table.AddRow("publications acknowledged", $"{s.Published:N0} ({s.AchievedRate:N1}/s)");
        table.AddRow("publish failures", s.PublishFailures == 0 ? "0" : $"[red]{s.PublishFailures:N0}[/]");
        table.AddRow("deliveries received / expected", $"{s.Received:N0} / {s.Expected:N0}");
        table.AddRow("lost", s.Lost == 0 ? "[green]0[/]" : $"[red]{s.Lost:N0}[/]");
        table.AddRow("latency p50 / p90 / p99 / max", $"{s.P50Ms:N2} / {s.P90Ms:N2} / {s.P99Ms:N2} / {s.MaxMs:N2} ms");
        table.AddRow("publish call p50 / p99", $"{s.PublishP50Ms:N2} / {s.PublishP99Ms:N2} ms");
        AnsiConsole.Write(table);
    }

    private static Option<int> Positive(Option<int> option, int maximum)
    {
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is var v && (v < 1 || v > maximum))
            {
                r.AddError($"{option.Name} must be 1 to {maximum.ToString(CultureInfo.InvariantCulture)}.");
            }
        });
        return option;
    }

    private static TimeSpan Invalid(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }

    private sealed record Settings(int Subscribers, int Channels, int Rate, TimeSpan Duration, int Payload, string? Token);

    /// <summary>What a bench measured.</summary>
    internal sealed record Summary(int Subscribers, int Channels, long Published, double AchievedRate, long PublishFailures, long Expected, long Received,
        long Lost, double P50Ms, double P90Ms, double P99Ms, double MaxMs, double PublishP50Ms, double PublishP99Ms);

    private sealed class Run(Settings settings, GatewayClient gateway) : IAsyncDisposable
    {
        private readonly string _prefix = $"pushctl-bench-{Guid.NewGuid().ToString("N")[..8]}-";
        private readonly List<PushClient> _clients = [];
        private readonly int[] _subscribersOf = new int[settings.Channels];
        private readonly LongConcurrentHistogram _latency = new(1, 60_000_000, 3);
        private readonly LongConcurrentHistogram _publishLatency = new(1, 60_000_000, 3);
        private readonly long[] _publishedTo = new long[settings.Channels];
        private long _received;
        private long _failures;
        private TimeSpan _elapsed;

        public async Task ConnectAsync(bool quiet, CancellationToken cancellationToken)
        {
            if (quiet)
            {
                await ConnectAllAsync(null, cancellationToken);
                return;
            }

            await AnsiConsole.Progress().AutoClear(true).StartAsync(async context =>
            {
                var task = context.AddTask($"connecting {settings.Subscribers} subscribers", maxValue: settings.Subscribers);
                await ConnectAllAsync(task, cancellationToken);
            });
        }

        private async Task ConnectAllAsync(ProgressTask? progress, CancellationToken cancellationToken)
        {
            // A few at a time, as a fleet of apps would arrive, not all in one burst.
            using var gate = new SemaphoreSlim(32);
            var connecting = Enumerable.Range(0, settings.Subscribers).Select(async i =>
            {
                await gate.WaitAsync(cancellationToken);
                try
                {
                    var options = new PushClientOptions { Name = "pushctl-bench" };
                    options.Endpoints.Add(gateway.WebSocket);
                    options.TokenProvider = _ => ValueTask.FromResult(settings.Token);
                    var client = new PushClient(options);
                    lock (_clients)
                    {
                        _clients.Add(client);
                    }

                    using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    patience.CancelAfter(TimeSpan.FromSeconds(15));
                    try
                    {
                        await client.ConnectAsync(patience.Token);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new CliException(ExitCodes.Unavailable, $"cannot connect to {gateway.WebSocket}");
                    }
                    catch (PushCommandException ex)
                    {
                        throw new CliException(ExitCodes.Refused, $"the gateway refused a subscriber: {ex.Message}");
                    }

                    var channel = i % settings.Channels;
                    PushSubscription subscription;
                    try
                    {
                        subscription = await client.SubscribeAsync(_prefix + channel.ToString(CultureInfo.InvariantCulture), cancellationToken);
                    }
                    catch (PushCommandException ex)
                    {
                        throw new CliException(ExitCodes.ForProtocolError(ex.Code), $"subscribing was refused: {ex.Message}");
                    }

                    Interlocked.Increment(ref _subscribersOf[channel]);
                    _ = CountAsync(subscription);
                    progress?.Increment(1);
                }
                finally
                {
                    gate.Release();
                }
            });
            await Task.WhenAll(connecting);
        }

        private async Task CountAsync(PushSubscription subscription)
        {
            await foreach (var e in subscription.Events.ReadAllAsync())
            {
                if (e.Kind == ChannelEventKind.Message && e.Data.TryGetProperty("t", out var sent))
                {
                    _latency.RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(sent.GetInt64()).TotalMicroseconds));
                    Interlocked.Increment(ref _received);
                }
            }
        }

        public async Task PublishAsync(bool quiet, CancellationToken cancellationToken)
        {
            if (quiet)
            {
                await PublishAllAsync(null, cancellationToken);
                return;
            }

            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask("publishing", maxValue: settings.Duration.TotalSeconds);
                    await PublishAllAsync(task, cancellationToken);
                });
        }

        private async Task PublishAllAsync(ProgressTask? progress, CancellationToken cancellationToken)
        {
            var pad = new string('x', settings.Payload);
            using var inFlight = new SemaphoreSlim(128);
            var pending = new List<Task>();
            var clock = Stopwatch.StartNew();
            long published = 0;
            while (clock.Elapsed < settings.Duration && !cancellationToken.IsCancellationRequested)
            {
                var due = (long)(clock.Elapsed.TotalSeconds * settings.Rate) - published;
                for (var i = 0; i < due; i++)
                {
                    var channel = (int)(published++ % settings.Channels);
                    await inFlight.WaitAsync(cancellationToken);
                    pending.Add(PublishOneAsync(channel, pad, inFlight, cancellationToken));
                }

                pending.RemoveAll(t => t.IsCompleted);
                if (progress is not null)
                {
                    progress.Value = clock.Elapsed.TotalSeconds;
                    progress.Description = $"publishing  {Interlocked.Read(ref _received):N0} of {Expected():N0} received";
                }

                await Task.Delay(5, cancellationToken);
            }

            await Task.WhenAll(pending);
            _elapsed = clock.Elapsed;

            // What is still on its way gets a few seconds to arrive.
            var drain = Stopwatch.StartNew();
            while (Interlocked.Read(ref _received) < Expected() && drain.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(50, cancellationToken);
            }

            if (progress is not null)
            {
                progress.Value = settings.Duration.TotalSeconds;
                progress.Description = $"published  {Interlocked.Read(ref _received):N0} of {Expected():N0} received";
            }
        }

        private async Task PublishOneAsync(int channel, string pad, SemaphoreSlim inFlight, CancellationToken cancellationToken)
        {
            try
            {
                var started = Stopwatch.GetTimestamp();
                var body = $"{{\"data\":{{\"t\":{started},\"pad\":\"{pad}\"}}}}";
                await gateway.PostAsync($"{GatewayClient.ChannelPath(_prefix + channel.ToString(CultureInfo.InvariantCulture))}/messages", body, cancellationToken);
                _publishLatency.RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds));
                Interlocked.Increment(ref _publishedTo[channel]);
            }
            catch (CliException ex) when (ex.ExitCode is ExitCodes.Refused or ExitCodes.NotFound)
            {
                // A key without the publish scope fails every publish alike: say so once, not thousands of times.
                throw;
            }
            catch (CliException)
            {
                Interlocked.Increment(ref _failures);
            }
            finally
            {
                inFlight.Release();
            }
        }

        private long Expected()
        {
            long expected = 0;
            for (var c = 0; c < settings.Channels; c++)
            {
                expected += Interlocked.Read(ref _publishedTo[c]) * Volatile.Read(ref _subscribersOf[c]);
            }

            return expected;
        }

        public Summary Summary()
        {
            var published = _publishedTo.Sum();
            var expected = Expected();
            var received = Interlocked.Read(ref _received);
            static double Ms(LongConcurrentHistogram h, double percentile) => h.TotalCount == 0 ? 0 : Math.Round(h.GetValueAtPercentile(percentile) / 1000.0, 2);
            return new Summary(settings.Subscribers, settings.Channels, published, Math.Round(published / Math.Max(_elapsed.TotalSeconds, 0.001), 1),
                Interlocked.Read(ref _failures), expected, received, Math.Max(0, expected - received),
                Ms(_latency, 50), Ms(_latency, 90), Ms(_latency, 99), _latency.TotalCount == 0 ? 0 : Math.Round(_latency.GetMaxValue() / 1000.0, 2),
                Ms(_publishLatency, 50), Ms(_publishLatency, 99));
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var client in _clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
