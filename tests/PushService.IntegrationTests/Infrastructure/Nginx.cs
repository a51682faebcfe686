using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A real nginx (Debian's) on a loopback port in front of gateways, set up as the event-stream docs tell operators to:
/// HTTP/1.1 to the upstream, no response buffering. It passes no <c>Upgrade</c> header, so WebSocket upgrades never reach
/// a gateway: the proxy that breaks WebSockets that Server-Sent Events are for. The first gateway serves while it is up,
/// the second is its backup; <c>/test/</c> serves the test's own pages from a folder, on the same origin.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class Nginx : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _output = new();

    private Nginx(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    /// <summary>The folder served at <c>/test/</c>.</summary>
    public string Pages => Path.Combine(_directory, "www", "test");

    public string Output => string.Join('\n', _output);

    public static async Task<Nginx> StartAsync(Uri primary, Uri backup, int? listenPort = null)
    {
        if (!File.Exists("/usr/sbin/nginx"))
        {
            throw new InvalidOperationException("nginx is missing: scripts/test.sh installs Debian's with apt-get.");
        }

        var directory = Directory.CreateTempSubdirectory("pushservice-nginx-").FullName;
        Directory.CreateDirectory(Path.Combine(directory, "www", "test"));
        foreach (var temp in new[] { "body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            // The workers may run as another user than the master.
            var path = Directory.CreateDirectory(Path.Combine(directory, temp)).FullName;
            File.SetUnixFileMode(path, (UnixFileMode)0b111_111_111);
        }

        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        var port = listenPort ?? FreePort.Next();
        var config = $$"""
            worker_processes 1;
            error_log {{directory}}/error.log warn;
            pid {{directory}}/nginx.pid;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path {{directory}}/body;
              proxy_temp_path {{directory}}/proxy;
              fastcgi_temp_path {{directory}}/fastcgi;
              uwsgi_temp_path {{directory}}/uwsgi;
              scgi_temp_path {{directory}}/scgi;
              types { text/html html; text/javascript js; }
              upstream gateways {
                server {{primary.Authority}} max_fails=1 fail_timeout=60s;
                server {{backup.Authority}} backup;
              }
              server {
                listen 127.0.0.1:{{port}};
                location /test/ { root {{directory}}/www; }
                location / {
                  proxy_pass http://gateways;
                  proxy_http_version 1.1;
                  proxy_set_header Connection "";
                  proxy_set_header Host $http_host;
                  proxy_buffering off;
                  proxy_cache off;
                  proxy_read_timeout 1h;
                  proxy_connect_timeout 2s;
                  proxy_next_upstream error timeout http_502 http_503;
                }
              }
            }
            """;
        var file = Path.Combine(directory, "nginx.conf");
        await File.WriteAllTextAsync(file, config);

        var info = new ProcessStartInfo("/usr/sbin/nginx") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "-p", directory, "-c", file, "-g", "daemon off;" })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("nginx did not start.");
        var nginx = new Nginx(process, directory, port);
        process.OutputDataReceived += (_, e) => nginx.Record(e.Data);
        process.ErrorDataReceived += (_, e) => nginx.Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return nginx;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(50);
            }
            catch (SocketException)
            {
                await nginx.DisposeAsync();
                throw new InvalidOperationException($"nginx did not listen on {port}:\n{nginx.Output}\n{ReadLog(directory)}");
            }
        }
    }

    private void Record(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    private static string ReadLog(string directory)
    {
        var log = Path.Combine(directory, "error.log");
        return File.Exists(log) ? File.ReadAllText(log) : "";
    }

    public async ValueTask DisposeAsync()
    {
        await ServerProcesses.StopAsync(_process, _directory);
    }
}
