using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using PushService.Client;
using Spectre.Console;

namespace PushService.Pushctl.Commands;

/// <summary>
/// <c>pushctl tail news</c>: subscribes over WebSocket through the .NET client (reconnecting and recovering from history
/// like any application) and prints each message as it arrives, as JSON lines or a readable table.
/// </summary>
internal static class TailCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var channels = new Argument<string[]>("channel") { Description = "The channels to follow", Arity = ArgumentArity.OneOrMore };
        var since = new Option<string?>("--since")
        {
            Description = "Start after EPOCH:OFFSET (one channel only): what was published since comes first, from history",
        };
        var count = new Option<int?>("--count", "-n") { Description = "Stop after this many messages" };
        var timeout = new Option<TimeSpan?>("--timeout")
        {
            Description = "Give up after this long (90s, 15m, hh:mm:ss); exit 1 if --count was not reached",
            CustomParser = result => TokenCommand.ParseDuration(result.Tokens.Single().Value) is { } value ? value : Fail(result),
        };
        var token = new Option<string?>("--token")
        {
            Description = "A connection token, where the gateway asks for one [env: PUSHCTL_TOKEN]",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PUSHCTL_TOKEN") is { Length: > 0 } t ? t : null,
        };
        var format = new Option<string>("--format", "-f")
        {
            Description = "json: one JSON object a line; table: a readable line a message [default: table on a terminal, json otherwise]",
            DefaultValueFactory = _ => Console.IsOutputRedirected ? "json" : "table",
        };
        format.AcceptOnlyFromAmong("json", "table");
        count.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() < 1)
            {
                result.AddError("--count must be 1 or more.");
            }
        });

        var command = new Command("tail", "Subscribe to channels and print their messages as they arrive (Ctrl+C stops)")
        {
            channels, since, count, timeout, token, format,
        };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var names = parsed.GetValue(channels)!.Select(Cli.Channel).Distinct(StringComparer.Ordinal).ToList();
            var position = parsed.GetValue(since) is { } text ? Position(text) : ((string Epoch, long Offset)?)null;
            if (position is not null && names.Count != 1)
            {
                throw new CliException(ExitCodes.BadInput, "--since is a position in one channel: give exactly one channel with it.");
            }

            var json = parsed.GetValue(globals.Json) || parsed.GetValue(format) == "json";
            var wanted = parsed.GetValue(count);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (parsed.GetValue(timeout) is { } limit)
            {
                stop.CancelAfter(limit);
            }

            using var gateway = globals.Gateway(parsed);
            var options = new PushClientOptions { Name = "pushctl", Version = typeof(TailCommand).Assembly.GetName().Version?.ToString() };
            options.Endpoints.Add(gateway.WebSocket);
            var connectionToken = parsed.GetValue(token);
            options.TokenProvider = _ => ValueTask.FromResult(connectionToken);
            await using var client = new PushClient(options);
            await ConnectAsync(client, gateway, stop.Token, cancellationToken);

            var events = Channel.CreateUnbounded<ChannelEvent>();
            var readers = new List<Task>();
            foreach (var name in names)
            {
                PushSubscription subscription;
                try
                {
                    subscription = position is { } p
                        ? await client.SubscribeAsync(name, p.Epoch, p.Offset, stop.Token)
                        : await client.SubscribeAsync(name, stop.Token);
                }
                catch (PushCommandException ex)
                {
                    throw new CliException(ExitCodes.ForProtocolError(ex.Code), $"subscribing to {name} was refused: {ex.Message}");
                }

                if (!json)
                {
                    AnsiConsole.MarkupLineInterpolated($"[grey]following {name} on {client.NodeId}{(position is { } at ? $" from {at.Epoch}:{at.Offset}" : "")}[/]");
                }

                readers.Add(Forward(subscription, events.Writer, stop.Token));
            }

            var printed = 0;
            try
            {
                await foreach (var e in events.Reader.ReadAllAsync(stop.Token))
                {
                    Print(e, json);
                    if (e.Kind == ChannelEventKind.Message && ++printed == wanted)
                    {
                        return ExitCodes.Ok;
                    }
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // --timeout ran out.
                if (wanted is { } n)
                {
                    throw new CliException(ExitCodes.Failed, $"timed out after {printed} of {n} messages.");
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task ConnectAsync(PushClient client, GatewayClient gateway, CancellationToken stop, CancellationToken interrupted)
    {
        // The client keeps trying an unreachable gateway, and one that refused its token (it would ask for a new one): a
        // command line says so at once when the gateway refused, and gives up on an unreachable one after a while.
        var connecting = client.ConnectAsync(stop);
        var patience = Stopwatch.StartNew();
        while (!connecting.IsCompleted)
        {
            if (client.LastClose is { Code: 4001 or 4003 } refusal)
            {
                throw new CliException(ExitCodes.Refused, $"the gateway refused the connection: {refusal.Code} {refusal.Reason}");
            }

            if (patience.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new CliException(ExitCodes.Unavailable, $"cannot connect to {gateway.WebSocket}{(client.LastClose is { } close ? $": {close.Reason}" : "")}");
            }

            await Task.WhenAny(connecting, Task.Delay(100, interrupted));
            interrupted.ThrowIfCancellationRequested();
        }

        try
        {
            await connecting;
        }
        catch (PushCommandException ex)
        {
            var code = client.LastClose?.Code;
            throw new CliException(code is 4001 or 4003 ? ExitCodes.Refused : ExitCodes.Failed, $"the gateway refused the connection: {ex.Message}");
        }
    }

    private static async Task Forward(PushSubscription subscription, ChannelWriter<ChannelEvent> writer, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var e in subscription.Events.ReadAllAsync(cancellationToken))
            {
                await writer.WriteAsync(e, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private static void Print(ChannelEvent e, bool json)
    {
        if (json)
        {
            var line = e.Kind == ChannelEventKind.Message
                ? JsonSerializer.Serialize(new { channel = e.Channel, epoch = e.Epoch, offset = e.Offset, data = e.Data })
                : JsonSerializer.Serialize(new { type = e.Kind.ToString().ToLowerInvariant(), channel = e.Channel, epoch = e.Epoch, offset = e.Offset });
            Console.WriteLine(line);
            return;
        }

        var time = DateTime.Now.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
        if (e.Kind == ChannelEventKind.Message)
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]{time}[/]  [blue]{e.Channel}[/]  [green]#{e.Offset}[/]  {e.Data.GetRawText()}");
        }
        else
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]{time}[/]  [blue]{e.Channel}[/]  [yellow]{e.Kind.ToString().ToLowerInvariant()}[/] now at {e.Epoch}:{e.Offset}");
        }
    }

    /// <summary>EPOCH:OFFSET, as a subscribe result or the console shows it.</summary>
    private static (string Epoch, long Offset) Position(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !long.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
        {
            throw new CliException(ExitCodes.BadInput, $"--since takes EPOCH:OFFSET (as 'k2x7qv4a:42'), not '{text}'.");
        }

        return (text[..colon], offset);
    }

    private static TimeSpan? Fail(System.CommandLine.Parsing.ArgumentResult result)
    {
        result.AddError($"'{result.Tokens.Single().Value}' is not a duration (90s, 15m, hh:mm:ss).");
        return null;
    }
}
