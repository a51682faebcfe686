using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// Runs the load generator (<c>loadtests/PushService.LoadGen</c>) as the benchmarks do: a process of its own, its figures
/// the JSON line it prints last.
/// </summary>
public static class LoadGenerator
{
    public sealed record Run(int ExitCode, string StandardOutput, string StandardError)
    {
        /// <summary>The summary line, parsed.</summary>
        public JsonElement Summary
        {
            get
            {
                var last = StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
                Assert.True(last is not null && last.StartsWith('{'), $"no summary line; exit {ExitCode}\nstdout: {StandardOutput}\nstderr: {StandardError}");
                return JsonDocument.Parse(last).RootElement.Clone();
            }
        }

        public long Count(string name) => Summary.GetProperty(name).GetInt64();

        public double Figure(string name) => Summary.GetProperty(name).GetDouble();
    }

    /// <summary>Starts the load generator; <paramref name="onError"/> sees each line it writes to standard error.</summary>
    public static async Task<Run> RunAsync(IEnumerable<string> arguments, Action<string>? onError = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(BuiltAssembly.Locate(Path.Combine("loadtests", "PushService.LoadGen"), "PushService.LoadGen"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("The load generator did not start.");
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (output)
                {
                    output.AppendLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (error)
                {
                    error.AppendLine(e.Data);
                }

                onError?.Invoke(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout ?? TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The load generator did not finish:\n{error}");
        }

        // The asynchronous readers may still hold the last lines until the streams are drained.
        process.WaitForExit();
        return new Run(process.ExitCode, output.ToString(), error.ToString());
    }
}
