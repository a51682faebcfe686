using System.Diagnostics;
using System.Globalization;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// A real Redis Cluster of three masters on loopback, made with <c>redis-cli --cluster create</c>, with a replica per
/// master when asked (nodes fail over after a second without answering).
/// </summary>
public sealed class RedisClusterSet : IAsyncDisposable
{
    private readonly List<RedisServer> _servers = [];

    private RedisClusterSet()
    {
    }

    public IReadOnlyList<RedisServer> Servers => _servers;

    public string Configuration => string.Join(',', _servers.Select(s => s.Configuration));

    /// <param name="replicas">Replicas per master.</param>
    /// <param name="extraArguments">More <c>redis-server</c> arguments for every node.</param>
    public static async Task<RedisClusterSet> StartAsync(int replicas = 0, params string[] extraArguments)
    {
        var set = new RedisClusterSet();
        var nodeTimeout = replicas > 0 ? "1000" : "2000";
        for (var i = 0; i < 3 * (1 + replicas); i++)
        {
            set._servers.Add(await RedisServer.StartAsync(
                ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", nodeTimeout, .. extraArguments]));
        }

        var info = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("--cluster");
        info.ArgumentList.Add("create");
        foreach (var server in set._servers)
        {
            info.ArgumentList.Add(server.Configuration);
        }

        info.ArgumentList.Add("--cluster-replicas");
        info.ArgumentList.Add(replicas.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add("--cluster-yes");
        using (var create = Process.Start(info)!)
        {
            var output = await create.StandardOutput.ReadToEndAsync();
            await create.WaitForExitAsync();
            Assert.True(create.ExitCode == 0, $"redis-cli --cluster create failed: {output}{await create.StandardError.ReadToEndAsync()}");
        }

        await set.WaitUntilHealthyAsync(replicas);
        return set;
    }

    /// <summary>Waits until every node says <c>cluster_state:ok</c> and every master has its replicas online.</summary>
    public async Task WaitUntilHealthyAsync(int replicas)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var server in _servers)
        {
            while (!(await server.RawAsync("CLUSTER", "INFO")).Contains("cluster_state:ok", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "The cluster did not reach cluster_state:ok.");
                await Task.Delay(100);
            }

            if (replicas > 0 && (await server.RawAsync("INFO", "replication")).Contains("role:master", StringComparison.Ordinal))
            {
                await server.WaitForOnlineReplicasAsync(replicas, deadline - DateTime.UtcNow);
            }
        }
    }

    /// <summary>The server that is master of <paramref name="key"/>'s slot now, as the cluster's own map says; null while
    /// none is (its master failed and no replica has taken over yet).</summary>
    public async Task<RedisServer?> MasterOfAsync(string key)
    {
        RedisServer? live = null;
        foreach (var server in _servers)
        {
            try
            {
                if (await server.CommandAsync("PING") == "+PONG")
                {
                    live = server;
                    break;
                }
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
            {
                // Killed by the test: ask another.
            }
        }

        if (live is null)
        {
            throw new InvalidOperationException("No node of the cluster answers.");
        }

        var slot = int.Parse((await live.CommandAsync("CLUSTER", "KEYSLOT", key)).TrimStart(':'), CultureInfo.InvariantCulture);
        var nodes = await live.RawAsync("CLUSTER", "NODES");
        foreach (var line in nodes.Split('\n'))
        {
            var fields = line.Split(' ');
            if (fields.Length < 9 || !fields[2].Contains("master", StringComparison.Ordinal) || fields[2].Contains("fail", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var range in fields[8..])
            {
                var bounds = range.Trim().Split('-');
                if (bounds[0].StartsWith('[') || bounds[0].Length == 0)
                {
                    continue;
                }

                var from = int.Parse(bounds[0], CultureInfo.InvariantCulture);
                var to = bounds.Length > 1 ? int.Parse(bounds[1], CultureInfo.InvariantCulture) : from;
                if (slot >= from && slot <= to)
                {
                    var port = int.Parse(fields[1].Split('@')[0].Split(':')[1], CultureInfo.InvariantCulture);
                    return _servers.Single(s => s.Port == port);
                }
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }
    }
}

/// <summary>A three-master Redis Cluster without replicas, shared by the tests of a class.</summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private RedisClusterSet _set = null!;

    public string Configuration => _set.Configuration;

    public async Task InitializeAsync() => _set = await RedisClusterSet.StartAsync();

    public async Task DisposeAsync() => await _set.DisposeAsync();
}
