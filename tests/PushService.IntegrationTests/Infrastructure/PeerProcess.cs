using System.Collections.Concurrent;
using System.Diagnostics;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A peer server of the load tests (<c>loadtests/peers</c>) as a real process on Redis, started the way
/// <c>loadtests/compare.sh</c> starts it, on a free loopback port.
/// </summary>
public sealed class PeerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private PeerProcess(Process process, Uri baseAddress, Uri subscribeUri)
    {
        _process = process;
        BaseAddress = baseAddress;
        SubscribeUri = subscribeUri;
    }

    /// <summary>Where its REST publish endpoint and <c>/healthz</c> are.</summary>
    public Uri BaseAddress { get; }

    /// <summary>What the load generator's <c>--ws</c> takes for it.</summary>
    public Uri SubscribeUri { get; }

    public int Pid => _process.Id;

    public string Output => string.Join('\n', _output);

    /// <summary>The SignalR peer: ASP.NET Core SignalR with its Redis backplane.</summary>
    public static Task<PeerProcess> StartSignalRAsync(string redis)
    {
        var dll = BuiltAssembly.Locate(Path.Combine("loadtests", "peers", "signalr"), "PushService.Peers.SignalR");
        var port = FreePort.Next();
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(dll)! };
        foreach (var argument in new[] { dll, $"--urls=http://127.0.0.1:{port}", $"--Redis={redis}", "--Logging:LogLevel:Default=Warning" })
        {
            info.ArgumentList.Add(argument);
        }

        return StartAsync(info, port, $"ws://127.0.0.1:{port}/hub");
    }

    /// <summary>
    /// The Socket.IO peer: Node.js with Socket.IO's Redis adapter. Its packages are installed by <c>npm ci</c> (the test
    /// command does it, as <c>compare.sh</c> does).
    /// </summary>
    public static Task<PeerProcess> StartSocketIoAsync(string redis)
    {
        var directory = Path.Combine(BuiltAssembly.RepositoryRoot, "loadtests", "peers", "socketio");
        if (!Directory.Exists(Path.Combine(directory, "node_modules", "socket.io")))
        {
            throw new InvalidOperationException($"The Socket.IO peer's packages are missing: run npm ci --prefix {directory} (scripts/test.sh does).");
        }

        var port = FreePort.Next();
        var info = new ProcessStartInfo("node") { WorkingDirectory = directory };
        info.ArgumentList.Add("server.js");
        info.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["REDIS_URL"] = $"redis://{redis}";
        return StartAsync(info, port, $"ws://127.0.0.1:{port}/");
    }

    private static async Task<PeerProcess> StartAsync(ProcessStartInfo info, int port, string subscribeUri)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        var baseAddress = new Uri($"http://127.0.0.1:{port}/");
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start.");
        var peer = new PeerProcess(process, baseAddress, new Uri(subscribeUri));
        process.OutputDataReceived += (_, e) => peer.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => peer.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync("healthz");
                if (response.IsSuccessStatusCode)
                {
                    return peer;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            if (DateTime.UtcNow > deadline || process.HasExited)
            {
                await peer.DisposeAsync();
                throw new InvalidOperationException($"The peer at {baseAddress} did not come up:\n{peer.Output}");
            }

            await Task.Delay(100);
        }
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
