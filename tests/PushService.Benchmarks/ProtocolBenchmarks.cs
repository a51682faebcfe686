using System.Text;
using BenchmarkDotNet.Attributes;
using PushService.Broker;
using PushService.Gateway.Protocol;

namespace PushService.Benchmarks;

/// <summary>Encoding a message push (once per publication per node) and decoding client commands.</summary>
[MemoryDiagnoser]
public class ProtocolBenchmarks
{
    private readonly Publication _small = new("news", 123_456, "k2x7qv4a", Encoding.UTF8.GetBytes("{\"headline\":\"hello\",\"n\":42}"));
    private readonly Publication _oneKb = new("news", 123_456, "k2x7qv4a", Encoding.UTF8.GetBytes("{\"pad\":\"" + new string('x', 1000) + "\"}"));
    private readonly byte[] _subscribe = Encoding.UTF8.GetBytes("{\"op\":\"subscribe\",\"id\":7,\"channel\":\"chat:room\",\"since\":{\"epoch\":\"k2x7qv4a\",\"offset\":41}}");
    private readonly byte[] _publish = Encoding.UTF8.GetBytes("{\"op\":\"publish\",\"id\":8,\"channel\":\"chat:room\",\"data\":{\"text\":\"" + new string('x', 1000) + "\"}}");

    [Benchmark]
    public byte[] EncodeMessage_SmallData() => FrameEncoder.Message(_small);

    [Benchmark]
    public byte[] EncodeMessage_1KiBData() => FrameEncoder.Message(_oneKb);

    [Benchmark]
    public Command? DecodeSubscribe() => CommandDecoder.Decode(_subscribe, out _);

    [Benchmark]
    public Command? DecodePublish_1KiBData() => CommandDecoder.Decode(_publish, out _);
}
