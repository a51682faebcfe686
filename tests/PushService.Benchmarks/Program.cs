// Micro-benchmarks of the hot path, run by hand (not by the test command):
//   dotnet run -c Release --project tests/PushService.Benchmarks -- --filter '*'
// Results and the exact commands used for the published figures are in docs/benchmarks.md.
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(PushService.Benchmarks.ProtocolBenchmarks).Assembly).Run(args);
