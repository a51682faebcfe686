using System.Diagnostics;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>A real Redis Cluster of three masters on loopback, made with redis-cli --cluster create.</summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private readonly List<RedisServer> _servers = [];

    public string Configuration => string.Join(',', _servers.Select(s => s.Configuration));

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            _servers.Add(await RedisServer.StartAsync("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"));
        }

        var info = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("--cluster");
        info.ArgumentList.Add("create");
        foreach (var server in _servers)
        {
            info.ArgumentList.Add(server.Configuration);
        }

        info.ArgumentList.Add("--cluster-replicas");
        info.ArgumentList.Add("0");
        info.ArgumentList.Add("--cluster-yes");
        using (var create = Process.Start(info)!)
        {
            var output = await create.StandardOutput.ReadToEndAsync();
            await create.WaitForExitAsync();
            Assert.True(create.ExitCode == 0, $"redis-cli --cluster create failed: {output}{await create.StandardError.ReadToEndAsync()}");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var server in _servers)
        {
            while (!(await server.RawAsync("CLUSTER", "INFO")).Contains("cluster_state:ok", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "The cluster did not reach cluster_state:ok.");
                await Task.Delay(100);
            }
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }
    }
}
