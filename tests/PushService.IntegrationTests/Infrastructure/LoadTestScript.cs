using System.Diagnostics;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>A Python script of <c>loadtests/</c>, run as <c>compare.sh</c> runs it.</summary>
public static class LoadTestScript
{
    /// <summary>Runs <paramref name="script"/> with <paramref name="arguments"/>, <paramref name="input"/> on its standard
    /// input; its exit code and what it printed. A script still running after a minute is killed and the test fails.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string script, string input, params string[] arguments)
    {
        var info = new ProcessStartInfo("python3")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(BuiltAssembly.RepositoryRoot, "loadtests", script));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("python3 did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The script ended without reading all of it (an option it refused): its exit code and output say why.
        }
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw;
        }

        return (process.ExitCode, await output, await error);
    }
}
