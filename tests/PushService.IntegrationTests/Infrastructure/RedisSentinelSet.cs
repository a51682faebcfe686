using System.Diagnostics;
using System.Globalization;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A Redis primary, one replica and three Sentinels on loopback (quorum 2, a primary is down after 1 s without
/// answering), all real <c>redis-server</c> processes; the gateway is pointed at the Sentinels with a service name.
/// </summary>
public sealed class RedisSentinelSet : IAsyncDisposable
{
    public const string ServiceName = "pushservice";

    private readonly List<Process> _sentinels = [];
    private readonly List<int> _sentinelPorts = [];
    private readonly string _directory;

    private RedisSentinelSet(RedisServer primary, RedisServer replica, string directory)
    {
        Primary = primary;
        Replica = replica;
        _directory = directory;
    }

    /// <summary>The server that was primary when the set started.</summary>
    public RedisServer Primary { get; }

    /// <summary>The server that was its replica.</summary>
    public RedisServer Replica { get; }

    /// <summary>The StackExchange.Redis configuration string that finds the primary through the Sentinels.</summary>
    public string Configuration => string.Join(',', _sentinelPorts.Select(p => $"127.0.0.1:{p}")) + $",serviceName={ServiceName}";

    public static async Task<RedisSentinelSet> StartAsync()
    {
        // A primary refuses writes (the publish script, and the history script, which refreshes the channel's expiry)
        // while no replica is in sync: a failed primary restarted with its old data, a primary until the Sentinels make
        // it a replica again, cannot then serve a publication its successor does not have (docs/backplane.md).
        string[] durable = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"];
        var primary = await RedisServer.StartAsync(durable);
        var replica = await RedisServer.StartAsync([.. durable, "--replicaof", "127.0.0.1", primary.Port.ToString(CultureInfo.InvariantCulture)]);
        var directory = Path.Combine(Path.GetTempPath(), "pushservice-sentinel-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var set = new RedisSentinelSet(primary, replica, directory);
        await primary.WaitForOnlineReplicasAsync(1, TimeSpan.FromSeconds(30));
        for (var i = 0; i < 3; i++)
        {
            await set.StartSentinelAsync(i);
        }

        // Every Sentinel knows the primary, its replica and the other two before a test relies on a failover.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var port in set._sentinelPorts)
        {
            while (true)
            {
                var info = await RedisServer.RawAsync(port, "SENTINEL", "MASTER", ServiceName);
                if (info.Contains("num-slaves\r\n$1\r\n1\r\n", StringComparison.Ordinal)
                    && info.Contains("num-other-sentinels\r\n$1\r\n2\r\n", StringComparison.Ordinal))
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, $"Sentinel {port} did not see the replica and the other Sentinels: {info}");
                await Task.Delay(100);
            }
        }

        return set;
    }

    /// <summary>The server the Sentinels name primary now.</summary>
    public async Task<RedisServer> CurrentPrimaryAsync()
    {
        var port = await PrimaryPortAsync();
        return port == Primary.Port ? Primary : port == Replica.Port ? Replica : throw new InvalidOperationException($"No server on {port}.");
    }

    /// <summary>The port of the primary as the Sentinels name it now.</summary>
    public async Task<int> PrimaryPortAsync()
    {
        var reply = await RedisServer.RawAsync(_sentinelPorts[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", ServiceName);
        var lines = reply.Split("\r\n");
        return int.Parse(lines[^2], CultureInfo.InvariantCulture);
    }

    private async Task StartSentinelAsync(int index)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort.Next();
            var config = Path.Combine(_directory, $"sentinel-{index}.conf");
            await File.WriteAllTextAsync(config, string.Join('\n',
                $"port {port}",
                "bind 127.0.0.1",
                $"dir {_directory}",
                $"sentinel monitor {ServiceName} 127.0.0.1 {Primary.Port} 2",
                $"sentinel down-after-milliseconds {ServiceName} 1000",
                $"sentinel failover-timeout {ServiceName} 5000",
                $"sentinel parallel-syncs {ServiceName} 1",
                ""));
            var info = new ProcessStartInfo(File.Exists("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "redis-server")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(config);
            info.ArgumentList.Add("--sentinel");
            var process = Process.Start(info)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!process.HasExited && DateTime.UtcNow < deadline)
            {
                try
                {
                    if ((await RedisServer.RawAsync(port, "PING")).StartsWith("+PONG", StringComparison.Ordinal))
                    {
                        _sentinels.Add(process);
                        _sentinelPorts.Add(port);
                        return;
                    }
                }
                catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
                {
                }

                await Task.Delay(50);
            }

            process.Kill();
            Assert.True(attempt < 5, $"Sentinel {index} did not start on port {port}.");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sentinel in _sentinels)
        {
            if (!sentinel.HasExited)
            {
                sentinel.Kill();
            }

            sentinel.Dispose();
        }

        await Primary.DisposeAsync();
        await Replica.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
