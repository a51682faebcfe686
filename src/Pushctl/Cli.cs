using System.CommandLine;
using System.Text.RegularExpressions;
using PushService.Pushctl.Commands;

namespace PushService.Pushctl;

/// <summary>
/// The command line: global options (where the gateway is, the API key, JSON output), one command per task, and the exit
/// codes of <see cref="ExitCodes"/>. Errors are one line on standard error, starting with "pushctl:".
/// </summary>
internal static partial class Cli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var globals = new GlobalOptions();
        var root = new RootCommand("PushService from a terminal: publish, tail channels, mint and check tokens, look at the cluster, run a quick load test.")
        {
            globals.Url,
            globals.ApiKey,
            globals.Json,
            PublishCommand.Create(globals),
            TailCommand.Create(globals),
            TokenCommand.Create(globals),
            ClusterCommands.Info(globals),
            ClusterCommands.Channels(globals),
            ClusterCommands.Presence(globals),
            ClusterCommands.History(globals),
            BenchCommand.Create(globals),
        };

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                await Console.Error.WriteLineAsync($"pushctl: {error.Message}");
            }

            await Console.Error.WriteLineAsync("Run 'pushctl --help' (or 'pushctl <command> --help') for usage.");
            return ExitCodes.BadInput;
        }

        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync($"pushctl: {ex.Message}");
            return ex.ExitCode;
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the command stopped as asked.
            return ExitCodes.Ok;
        }
        catch (Exception ex)
        {
            // A bug or something unforeseen: still one line, and the code scripts take for failure.
            await Console.Error.WriteLineAsync($"pushctl: unexpected error: {ex.GetType().Name}: {ex.Message}");
            return ExitCodes.Failed;
        }
    }

    /// <summary>A channel name as the gateway takes them (it checks the rest, such as user-limited channels).</summary>
    public static string Channel(string name)
    {
        if (!ChannelName().IsMatch(name))
        {
            throw new CliException(ExitCodes.BadInput, $"'{name}' is not a channel name: 1 to 255 characters of A-Z a-z 0-9 _ - : . @ / = #.");
        }

        return name;
    }

    [GeneratedRegex("^[A-Za-z0-9_\\-:.@/=#,]{1,255}$")]
    private static partial Regex ChannelName();
}

/// <summary>The options every command takes, from the command line or the environment.</summary>
internal sealed class GlobalOptions
{
    public Option<Uri> Url { get; } = new("--url", "-u")
    {
        Description = "The gateway's address [env: PUSHCTL_URL]",
        Recursive = true,
        DefaultValueFactory = _ => new Uri(Environment.GetEnvironmentVariable("PUSHCTL_URL") is { Length: > 0 } url ? url : "http://localhost:5000"),
        CustomParser = result =>
        {
            var text = result.Tokens.Single().Value;
            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            {
                return uri;
            }

            result.AddError($"'{text}' is not an http:// or https:// address.");
            return null;
        },
    };

    public Option<string?> ApiKey { get; } = new("--api-key", "-k")
    {
        Description = "A REST API key (sent as 'Authorization: Bearer') [env: PUSHCTL_API_KEY]",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PUSHCTL_API_KEY") is { Length: > 0 } key ? key : null,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print JSON (one object a line) instead of tables and sentences",
        Recursive = true,
    };

    public GatewayClient Gateway(System.CommandLine.ParseResult parsed) => new(parsed.GetValue(Url)!, parsed.GetValue(ApiKey));
}
