using System.Diagnostics;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>What the fixtures of outside servers (nginx, Prometheus) share: stopping one and removing its folder.</summary>
internal static class ServerProcesses
{
    /// <summary>Kills <paramref name="process"/> (and its workers), then deletes its temporary <paramref name="directory"/>.</summary>
    public static async Task StopAsync(Process process, string directory)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A worker may still be letting go of its files: the temporary folder is left for the machine to clean.
        }
    }
}
