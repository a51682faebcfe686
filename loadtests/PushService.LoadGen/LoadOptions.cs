using System.Globalization;

namespace PushService.LoadGen;

/// <summary>Command-line options: <c>--name value</c> pairs.</summary>
internal sealed class LoadOptions
{
    public string Scenario { get; private set; } = "fanout";
    public string Target { get; private set; } = "pushservice";
    public List<Uri> Endpoints { get; } = [];
    public Uri? PublishUrl { get; private set; }
    public string? ApiKey { get; private set; }
    public int Connections { get; private set; } = 100;
    public int Channels { get; private set; } = 10;
    public int ChannelsPerConnection { get; private set; } = 1;
    public double Rate { get; private set; } = 100;
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; private set; } = TimeSpan.FromSeconds(3);
    public int PayloadBytes { get; private set; } = 64;
    public int ConnectParallelism { get; private set; } = 64;
    public int WarmupConnections { get; private set; }
    public List<int> Pids { get; } = [];
    public bool Quiet { get; private set; }

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            switch (name)
            {
                case "--scenario": options.Scenario = Value(); break;
                case "--target": options.Target = Value(); break;
                case "--ws": options.Endpoints.AddRange(Value().Split(',').Select(u => new Uri(u))); break;
                case "--publish": options.PublishUrl = new Uri(Value()); break;
                case "--api-key": options.ApiKey = Value(); break;
                case "--connections": options.Connections = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--channels": options.Channels = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--channels-per-connection": options.ChannelsPerConnection = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--rate": options.Rate = double.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--duration": options.Duration = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture)); break;
                case "--warmup": options.Warmup = TimeSpan.FromSeconds(double.Parse(Value(), CultureInfo.InvariantCulture)); break;
                case "--payload-bytes": options.PayloadBytes = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--connect-parallelism": options.ConnectParallelism = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--warmup-connections": options.WarmupConnections = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--pids": options.Pids.AddRange(Value().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))); break;
                case "--quiet": options.Quiet = true; break;
                default: throw new ArgumentException($"Unknown option {name}. See loadtests/README.md.");
            }
        }

        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("--ws is required (comma-separated WebSocket URLs, or the SignalR hub URLs for --target signalr).");
        }

        if (options.ChannelsPerConnection > options.Channels)
        {
            throw new ArgumentException("--channels-per-connection cannot exceed --channels.");
        }

        return options;
    }

    /// <summary>The channels connection <paramref name="index"/> subscribes to.</summary>
    public IEnumerable<string> ChannelsOf(int index) =>
        Enumerable.Range(0, ChannelsPerConnection).Select(j => ChannelName((index * ChannelsPerConnection + j) % Channels));

    public static string ChannelName(int i) => $"load{i}";
}
