using System.Diagnostics;
using System.Text.Json;

namespace PushService.IntegrationTests.Infrastructure;

/// <summary>
/// Runs one of <c>tests/browser</c>'s scripts in Node 20 (they drive Debian's headless Chromium through playwright-core)
/// and returns the JSON report it prints on its last line; the test judges the report.
/// </summary>
internal static class BrowserScript
{
    public static async Task<JsonElement> RunAsync(string script, string inputVariable, string input, TimeSpan timeout)
    {
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Node 20 has its WHATWG WebSocket behind this flag; the scripts use it beside the browser.
        info.ArgumentList.Add("--experimental-websocket");
        info.ArgumentList.Add(Path.Combine(BuiltAssembly.RepositoryRoot, "tests", "browser", script));
        info.Environment[inputVariable] = input;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var text = await stdout;
        Assert.True(process.ExitCode == 0, $"{script} failed ({process.ExitCode}):\n{text}\n{await stderr}");
        return JsonDocument.Parse(text.Trim().Split('\n')[^1]).RootElement.Clone();
    }
}
