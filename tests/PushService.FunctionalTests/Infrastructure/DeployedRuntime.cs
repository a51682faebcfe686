using System.Runtime.CompilerServices;

namespace PushService.FunctionalTests.Infrastructure;

/// <summary>
/// The gateways here run in the test process, which is to run as a deployed node does: with the runtime switch the
/// container image and the Helm chart set (docs/deploy.md). Read by the runtime once, at the process's first
/// asynchronous socket operation, so it is set before any test runs; an environment that sets it (the README test
/// command's run with every performance switch off sets 0) is left alone.
/// </summary>
internal static class DeployedRuntime
{
    public const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    [ModuleInitializer]
    internal static void Apply()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
        }
    }
}
