using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using PushService.Gateway.Transport;

namespace PushService.Benchmarks;

/// <summary>The gateway's own RFC 6455 framing: reading a masked client frame, writing a server frame into a pipe.</summary>
[MemoryDiagnoser]
public class WebSocketFramingBenchmarks
{
    private readonly WebSocketReader _reader = new(64 * 1024);
    private readonly Pipe _pipe = new(new PipeOptions(pauseWriterThreshold: 0));
    private readonly byte[] _push = new byte[120];
    private ReadOnlySequence<byte> _subscribeFrame;

    [GlobalSetup]
    public void Setup()
    {
        // A 100-byte masked text frame, as a browser sends a subscribe command.
        var payload = new byte[100];
        payload.AsSpan().Fill((byte)'x');
        byte[] mask = [1, 2, 3, 4];
        byte[] frame = [0x81, 0x80 | 100, .. mask, .. payload.Select((b, i) => (byte)(b ^ mask[i % 4]))];
        _subscribeFrame = new ReadOnlySequence<byte>(frame);
    }

    [Benchmark]
    public int ReadMaskedTextFrame()
    {
        var buffer = _subscribeFrame;
        _reader.Read(ref buffer);
        var length = _reader.Message.Length;
        _reader.ReleaseMessage();
        return length;
    }

    [Benchmark]
    public long WriteTextFrame()
    {
        // Written and handed over as a send-loop pass does; the pipe never pauses, so nothing waits.
        WebSocketFrames.Write(_pipe.Writer, WebSocketOpcode.Text, _push);
        var flush = _pipe.Writer.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("The pipe paused.");
        }

        _pipe.Reader.TryRead(out var result);
        var length = result.Buffer.Length;
        _pipe.Reader.AdvanceTo(result.Buffer.End);
        return length;
    }
}
