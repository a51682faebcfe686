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
    public TimeSpan Drain { get; private set; } = TimeSpan.FromSeconds(15);
    public List<int> Pids { get; } = [];
    public bool Quiet { get; private set; }
    public bool AwaitConnect { get; private set; }

    /// <summary>Parses the command line; an <see cref="ArgumentException"/> names the option at fault and why.</summary>
    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            int Count(int min) => Whole(name, Value(), min);
            double Number(double min) => Real(name, Value(), min);
            switch (name)
            {
                case "--scenario": options.Scenario = OneOf(name, Value(), "fanout", "idle", "churn"); break;
                case "--target": options.Target = OneOf(name, Value(), "pushservice", "signalr", "socketio"); break;
                case "--ws": options.Endpoints.AddRange(Value().Split(',').Select(u => Address(name, u, "ws", "wss"))); break;
                case "--publish": options.PublishUrl = Address(name, Value(), "http", "https"); break;
                case "--api-key": options.ApiKey = Value(); break;
                case "--connections": options.Connections = Count(1); break;
                case "--channels": options.Channels = Count(1); break;
                case "--channels-per-connection": options.ChannelsPerConnection = Count(1); break;
                case "--rate": options.Rate = Number(0.001); break;
                case "--duration": options.Duration = TimeSpan.FromSeconds(Number(0.001)); break;
                case "--warmup": options.Warmup = TimeSpan.FromSeconds(Number(0)); break;
                case "--drain": options.Drain = TimeSpan.FromSeconds(Number(0)); break;
                case "--payload-bytes": options.PayloadBytes = Count(0); break;
                case "--connect-parallelism": options.ConnectParallelism = Count(1); break;
                case "--warmup-connections": options.WarmupConnections = Count(0); break;
                case "--pids": options.Pids.AddRange(Value().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => Whole(name, p, 1))); break;
                case "--quiet": options.Quiet = true; break;
                case "--await-connect": options.AwaitConnect = true; break;
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

        foreach (var pid in options.Pids)
        {
            if (!File.Exists($"/proc/{pid}/stat"))
            {
                throw new ArgumentException($"--pids: no process {pid} (its CPU and memory are read from /proc/{pid}).");
            }
        }

        return options;
    }

    private static int Whole(string name, string text, int min) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min
            ? value
            : throw new ArgumentException($"{name}: '{text}' is not a whole number of at least {min}.");

    private static double Real(string name, string text, double min) =>
        double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value) && value >= min && double.IsFinite(value)
            ? value
            : throw new ArgumentException($"{name}: '{text}' is not a number of at least {min.ToString(CultureInfo.InvariantCulture)}.");

    private static string OneOf(string name, string text, params string[] allowed) =>
        allowed.Contains(text, StringComparer.Ordinal) ? text : throw new ArgumentException($"{name} is {string.Join(", ", allowed)}; not '{text}'.");

    private static Uri Address(string name, string text, params string[] schemes) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && schemes.Contains(uri.Scheme, StringComparer.Ordinal)
            ? uri
            : throw new ArgumentException($"{name}: '{text}' is not an absolute {string.Join(" or ", schemes)} URL.");

    /// <summary>The channels connection <paramref name="index"/> subscribes to.</summary>
    public IEnumerable<string> ChannelsOf(int index) =>
        Enumerable.Range(0, ChannelsPerConnection).Select(j => ChannelName((index * ChannelsPerConnection + j) % Channels));

    public static string ChannelName(int i) => $"load{i}";
}
