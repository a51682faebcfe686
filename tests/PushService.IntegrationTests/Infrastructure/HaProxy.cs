using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A real HAProxy (Debian's <c>haproxy</c>) on a loopback port in front of gateway slots, balancing by least connections
/// and health-checking each slot on the gateway's readiness path as a Kubernetes readiness probe would. Slots are named
/// <c>s1</c>, <c>s2</c>, …; a slot with no process behind it is simply down. Its runtime API takes a slot out of
/// rotation (what endpoint removal does to a Service) without cutting the connections it has.
/// </summary>
public sealed class HaProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _output = new();

    private HaProxy(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}/");

    public Uri WebSocketUri => new($"ws://127.0.0.1:{Port}/ws");

    private string AdminSocket => Path.Combine(_directory, "admin.sock");

    public string Output => string.Join('\n', _output);

    public static async Task<HaProxy> StartAsync(IReadOnlyList<int> slotPorts, string healthPath, int checkIntervalSeconds, int fall)
    {
        if (!File.Exists("/usr/sbin/haproxy"))
        {
            throw new InvalidOperationException("haproxy is missing: scripts/test.sh installs Debian's with apt-get.");
        }

        var directory = Directory.CreateTempSubdirectory("pushservice-haproxy-").FullName;
        var port = FreePort.Next();
        var config = new StringBuilder($$"""
            global
              stats socket {{directory}}/admin.sock mode 600 level admin
            defaults
              mode http
              option http-server-close
              timeout connect 2s
              timeout client 1h
              timeout server 1h
              timeout tunnel 1h
              timeout http-request 10s
            frontend push
              bind 127.0.0.1:{{port}}
              default_backend gateways
            backend gateways
              balance leastconn
              option httpchk GET {{healthPath}}
              http-check expect status 200
              default-server inter {{checkIntervalSeconds}}s fall {{fall}} rise 1

            """);
        for (var i = 0; i < slotPorts.Count; i++)
        {
            config.AppendLine(CultureInfo.InvariantCulture, $"  server s{i + 1} 127.0.0.1:{slotPorts[i]} check");
        }

        var file = Path.Combine(directory, "haproxy.cfg");
        await File.WriteAllTextAsync(file, config.ToString());
        var info = new ProcessStartInfo("/usr/sbin/haproxy")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-db", "-f", file })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("haproxy did not start.");
        var proxy = new HaProxy(process, directory, port);
        process.OutputDataReceived += (_, e) => proxy.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => proxy.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await Poll.UntilAsync(() => File.Exists(proxy.AdminSocket) || process.HasExited, TimeSpan.FromSeconds(10), () => "haproxy did not open its admin socket");
        Assert.False(process.HasExited, $"haproxy exited:\n{proxy.Output}");
        return proxy;
    }

    /// <summary>Takes a slot out of rotation: no new connection goes to it, the ones it has stay.</summary>
    public Task RemoveAsync(string slot) => CommandAsync($"set server gateways/{slot} state maint");

    /// <summary>Whether the health checks have the slot up.</summary>
    public async Task<bool> IsUpAsync(string slot)
    {
        var stat = await CommandAsync("show stat");
        var lines = stat.Split('\n');
        var header = lines[0].TrimStart('#', ' ').Split(',');
        var status = Array.IndexOf(header, "status");
        return lines.Skip(1).Select(l => l.Split(',')).Any(f => f.Length > status && f[0] == "gateways" && f[1] == slot && f[status] == "UP");
    }

    public Task WaitUntilUpAsync(string slot, TimeSpan timeout) =>
        Poll.UntilAsync(() => IsUpAsync(slot), timeout, () => $"haproxy never saw {slot} up:\n{Output}");

    private async Task<string> CommandAsync(string command)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(AdminSocket));
        await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"));
        var answer = new StringBuilder();
        var buffer = new byte[16384];
        int read;
        while ((read = await socket.ReceiveAsync(buffer)) > 0)
        {
            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return answer.ToString();
    }

    private void Keep(string? line)
    {
        if (line is not null && _output.Count < 500)
        {
            _output.Enqueue(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
