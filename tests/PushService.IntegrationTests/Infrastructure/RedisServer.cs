using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port in a temporary directory, with the AOF written before every reply
/// so a SIGKILL loses nothing that was acknowledged. Killed and restarted on the same port and data by the outage tests.
/// </summary>
/// <remarks>
/// <c>appendfsync no</c>, not <c>always</c>: under either policy Redis writes the AOF buffer to the file before it sends
/// an event-loop turn's replies, and a killed process leaves that write in the kernel's page cache, so tests that kill
/// processes (never the machine) keep every acknowledged write. An fsync adds only the power-loss guarantee, and in CI
/// Redis once fell silent for 3 s, most likely in an fsync on the shared disk, so a cluster test's publishes timed
/// out. <c>everysec</c> would not do: while a background fsync runs it may postpone the write and reply first.
/// </remarks>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string[] _extraArguments;
    private Process? _process;

    private RedisServer(int port, string directory, string[] extraArguments)
    {
        Port = port;
        _directory = directory;
        _extraArguments = extraArguments;
    }

    public int Port { get; private set; }

    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync(params string[] extraArguments)
    {
        var directory = Path.Combine(Path.GetTempPath(), "pushservice-redis-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var server = new RedisServer(FreePort.Next(), directory, extraArguments);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await server.LaunchAsync();
                return server;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                // Another test's server took the port between our probe and the bind: try another one.
                server.Kill();
                server.Port = FreePort.Next();
            }
        }
    }

    public async Task LaunchAsync()
    {
        var executable = File.Exists("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "redis-server";
        var info = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", _directory,
            "--save", "", "--appendonly", "yes", "--appendfsync", "no", "--protected-mode", "no", "--daemonize", "no",
        })
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var arg in _extraArguments)
        {
            info.ArgumentList.Add(arg);
        }

        try
        {
            _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("redis-server is not installed: run ./scripts/test.sh, which installs it, or apt-get install redis-server.", ex);
        }

        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"redis-server on port {Port} exited (port taken?).");
            }

            if (await PingAsync())
            {
                // The answer must come from our own server, not another test's on a reused port.
                var serverInfo = await RawAsync("INFO", "server");
                if (serverInfo.Contains($"process_id:{_process.Id}\r\n", StringComparison.Ordinal))
                {
                    return;
                }

                throw new InvalidOperationException($"Port {Port} is served by another redis-server.");
            }

            await Task.Delay(50);
        }

        throw new InvalidOperationException($"redis-server on port {Port} did not answer PING.");
    }

    /// <summary>SIGKILL: no shutdown, no final save; only what AOF already holds survives.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    /// <summary>Sends the server a signal (<c>STOP</c> freezes it with its sockets open, <c>CONT</c> wakes it).</summary>
    public async Task SignalAsync(string signal)
    {
        var process = _process ?? throw new InvalidOperationException("redis-server is not running.");
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -{signal} {process.Id} failed");
    }

    /// <summary>
    /// Waits until this primary has <paramref name="count"/> replicas through their first sync (<c>state=online</c>):
    /// only those acknowledge a <c>WAIT</c> and count for <c>min-replicas-to-write</c>.
    /// </summary>
    public async Task WaitForOnlineReplicasAsync(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var replication = await RawAsync("INFO", "replication");
            var online = replication.Split("\r\n").Count(line => line.StartsWith("slave", StringComparison.Ordinal) && line.Contains("state=online", StringComparison.Ordinal));
            if (online >= count)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"The primary on {Port} has {online} of {count} replicas online: {replication}");
            await Task.Delay(50);
        }
    }

    /// <summary>Sends one raw command and returns the first reply line.</summary>
    public async Task<string> CommandAsync(params string[] parts) => (await RawAsync(parts)).Split("\r\n")[0];

    /// <summary>Sends one raw command and returns the raw reply (as much as one read gets).</summary>
    public Task<string> RawAsync(params string[] parts) => RawAsync(Port, parts);

    /// <summary>Sends one raw command to whatever speaks RESP on <paramref name="port"/> (a server, a Sentinel) and
    /// returns the raw reply (as much as one read gets).</summary>
    public static async Task<string> RawAsync(int port, params string[] parts)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        var stream = client.GetStream();
        var builder = new StringBuilder().Append('*').Append(parts.Length).Append("\r\n");
        foreach (var part in parts)
        {
            builder.Append('$').Append(Encoding.UTF8.GetByteCount(part)).Append("\r\n").Append(part).Append("\r\n");
        }

        await stream.WriteAsync(Encoding.UTF8.GetBytes(builder.ToString()));
        var buffer = new byte[16384];
        var read = await stream.ReadAsync(buffer);
        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    private async Task<bool> PingAsync()
    {
        try
        {
            return await CommandAsync("PING") == "+PONG";
        }
        catch (SocketException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One Redis server shared by the tests of a class.</summary>
public sealed class RedisFixture : IAsyncLifetime
{
    public RedisServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
