using System.IO.Pipelines;

namespace PushService.UnitTests;

/// <summary>A connection's transport made of two in-memory pipe ends, for tests that hold a connection without a socket.</summary>
internal sealed record PipePair(PipeReader Input, PipeWriter Output) : IDuplexPipe;
