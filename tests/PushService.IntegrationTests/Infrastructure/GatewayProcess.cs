using System.Net;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A real gateway process (<c>dotnet PushService.Gateway.dll</c>, as built by the solution) on a port Kestrel picks,
/// configured through the command line exactly as an operator would. Killed with SIGKILL or stopped with SIGTERM by tests.
/// </summary>
public sealed partial class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private GatewayProcess(Process process, string nodeId)
    {
        _process = process;
        NodeId = nodeId;
    }

    public string NodeId { get; }

    public Uri BaseAddress { get; private set; } = null!;

    public Uri WebSocketUri => new($"ws://{BaseAddress.Authority}/ws");

    public HttpClient Http { get; private set; } = null!;

    public bool HasExited => _process.HasExited;

    /// <summary>The process id, for tools that read its CPU and memory from <c>/proc</c>.</summary>
    public int Pid => _process.Id;

    public string Output => string.Join('\n', _output);

    public static Task<GatewayProcess> StartAsync(string nodeId, string redis, IDictionary<string, string>? settings = null,
        IDictionary<string, string>? environment = null)
    {
        var settingsByKey = new Dictionary<string, string>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["PushService:NodeId"] = nodeId,
            ["PushService:Redis:Configuration"] = redis,
            ["PushService:Cluster:HeartbeatInterval"] = "00:00:00.500",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Information",
            ["Logging:LogLevel:PushService"] = "Information",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            settingsByKey[key] = value;
        }

        // The runtime settings the image and the chart give a node (docs/deploy.md).
        var variables = new Dictionary<string, string>
        {
            ["DOTNET_gcServer"] = "0",
            ["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1",
            ["DOTNET_GCgen0size"] = "0x400000",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            variables[key] = value;
        }

        return LaunchAsync(nodeId, settingsByKey.Select(s => $"--{s.Key}={s.Value}").ToList(), variables);
    }

    /// <summary>
    /// A gateway started with exactly these arguments and environment (as a container would be, from the Helm chart's
    /// rendered Deployment), nothing added.
    /// </summary>
    public static Task<GatewayProcess> LaunchAsync(string nodeId, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment) =>
        LaunchPublishedAsync(BuiltAssembly.Locate(Path.Combine("src", "Gateway"), "PushService.Gateway"), nodeId, arguments, environment);

    /// <summary>A gateway from another build of it (the Dockerfile's publish output), started the same way.</summary>
    public static async Task<GatewayProcess> LaunchPublishedAsync(string dll, string nodeId, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("The gateway did not start.");
        var gateway = new GatewayProcess(process, nodeId);
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            gateway._output.Enqueue(e.Data);
            var match = ListeningLine().Match(e.Data);
            if (match.Success)
            {
                listening.TrySetResult(match.Groups[1].Value);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                gateway._output.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            var address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            gateway.BaseAddress = new Uri(address);
            gateway.Http = new HttpClient { BaseAddress = gateway.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            await gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            gateway.Kill();
            throw new InvalidOperationException($"Gateway {nodeId} did not become ready:\n{gateway.Output}");
        }

        return gateway;
    }

    public Task WaitUntilReadyAsync(TimeSpan timeout) => WaitForReadinessAsync(status => (int)status is >= 200 and < 300, timeout);

    /// <summary>Waits until <c>/readyz</c> answers 503, as it does while the node cannot reach its backplane.</summary>
    public Task WaitUntilUnavailableAsync(TimeSpan timeout) => WaitForReadinessAsync(status => status == HttpStatusCode.ServiceUnavailable, timeout);

    private async Task WaitForReadinessAsync(Func<HttpStatusCode, bool> answered, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var response = await Http.GetAsync("/readyz");
                if (answered(response.StatusCode))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                throw new TimeoutException();
            }

            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL: the node dies on the spot.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>SIGTERM: the node drains and stops.</summary>
    public async Task TerminateAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        await SignalTerminateAsync();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Sends SIGTERM and returns at once.</summary>
    public async Task SignalTerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill!.WaitForExitAsync();
    }

    /// <summary>Whether the process exited within <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        Http?.Dispose();
        _process.Dispose();
        await Task.CompletedTask;
    }

    // Plain or JSON console logs.
    [GeneratedRegex(@"Now listening on: (http://[^\s""]+)")]
    private static partial Regex ListeningLine();
}
