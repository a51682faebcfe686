using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace PushService.Pushctl.Commands;

/// <summary>The REST API's reading commands: info, channels, presence and history, as tables or JSON.</summary>
internal static class ClusterCommands
{
    public static Command Info(GlobalOptions globals)
    {
        var command = new Command("info", "The nodes of the cluster with their connections, subscriptions and uptime (scope: read)");
        command.SetAction(async (parsed, cancellationToken) =>
        {
            using var gateway = globals.Gateway(parsed);
            var answer = await gateway.GetAsync("info", cancellationToken);
            Render(parsed, globals, answer, "nodes", ["node", "connections", "subscriptions", "uptimeSeconds"], "No node has reported.");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command Channels(GlobalOptions globals)
    {
        var command = new Command("channels", "Channels with subscribers across the cluster, the busiest first (scope: read)");
        command.SetAction(async (parsed, cancellationToken) =>
        {
            using var gateway = globals.Gateway(parsed);
            var answer = await gateway.GetAsync("channels", cancellationToken);
            Render(parsed, globals, answer, "channels", ["channel", "subscribers"], "No channel has subscribers.",
                rows => rows.OrderByDescending(r => r.GetProperty("subscribers").GetInt64()).ThenBy(r => r.GetProperty("channel").GetString(), StringComparer.Ordinal));
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command Presence(GlobalOptions globals)
    {
        var channel = new Argument<string>("channel") { Description = "The channel" };
        var command = new Command("presence", "Who is in a channel, where its namespace keeps presence (scope: read)") { channel };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var name = Cli.Channel(parsed.GetValue(channel)!);
            using var gateway = globals.Gateway(parsed);
            var answer = await gateway.GetAsync($"{GatewayClient.ChannelPath(name)}/presence", cancellationToken);
            Render(parsed, globals, answer, "clients", ["client", "user"], $"Nobody is in {name}.");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command History(GlobalOptions globals)
    {
        var channel = new Argument<string>("channel") { Description = "The channel" };
        var since = new Option<long?>("--since") { Description = "Only what was published after this offset" };
        var epoch = new Option<string?>("--epoch") { Description = "The epoch --since belongs to (the channel's current one by default)" };
        var limit = new Option<int?>("--limit") { Description = "At most this many messages" };
        since.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<long?>() < 0)
            {
                result.AddError("--since must be 0 or more.");
            }
        });
        limit.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() < 1)
            {
                result.AddError("--limit must be 1 or more.");
            }
        });

        var command = new Command("history", "A channel's stored messages, oldest first (scope: read)") { channel, since, epoch, limit };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var name = Cli.Channel(parsed.GetValue(channel)!);
            var query = new List<string>();
            if (parsed.GetValue(since) is { } after)
            {
                query.Add($"since={after.ToString(CultureInfo.InvariantCulture)}");
            }

            if (parsed.GetValue(epoch) is { Length: > 0 } e)
            {
                query.Add($"epoch={Uri.EscapeDataString(e)}");
            }

            if (parsed.GetValue(limit) is { } l)
            {
                query.Add($"limit={l.ToString(CultureInfo.InvariantCulture)}");
            }

            using var gateway = globals.Gateway(parsed);
            var answer = await gateway.GetAsync($"{GatewayClient.ChannelPath(name)}/history{(query.Count > 0 ? "?" + string.Join('&', query) : "")}", cancellationToken);
            if (!parsed.GetValue(globals.Json))
            {
                AnsiConsole.MarkupLineInterpolated($"[grey]{name} at epoch {answer.GetProperty("epoch").GetString()}, offset {answer.GetProperty("offset").GetInt64()}[/]");
            }

            Render(parsed, globals, answer, "messages", ["offset", "data"], "No message.");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The answer's list as a table, or the whole answer as one line of JSON with --json.</summary>
    private static void Render(ParseResult parsed, GlobalOptions globals, JsonElement answer, string list, string[] columns, string empty,
        Func<IEnumerable<JsonElement>, IEnumerable<JsonElement>>? order = null)
    {
        if (parsed.GetValue(globals.Json))
        {
            Console.WriteLine(answer.GetRawText());
            return;
        }

        var rows = answer.GetProperty(list).EnumerateArray();
        var ordered = (order?.Invoke(rows) ?? rows).ToList();
        if (ordered.Count == 0)
        {
            Console.WriteLine(empty);
            return;
        }

        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns)
        {
            var header = new TableColumn(column);
            table.AddColumn(ordered[0].GetProperty(column).ValueKind == JsonValueKind.Number ? header.RightAligned() : header);
        }

        foreach (var row in ordered)
        {
            table.AddRow(columns.Select(c => new Text(Cell(row.GetProperty(c)))).ToArray<Spectre.Console.Rendering.IRenderable>());
        }

        AnsiConsole.Write(table);
    }

    private static string Cell(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Number => value.GetRawText(),
        _ => value.GetRawText(),
    };
}
