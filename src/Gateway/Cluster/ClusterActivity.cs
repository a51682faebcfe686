using PushService.Broker.Control;

namespace PushService.Gateway.Cluster;

/// <summary>
/// The whole cluster's activity, added up from the nodes' reports: what <c>GET /api/v1/admin/activity</c> answers and the
/// web console charts.
/// </summary>
/// <param name="Second">The Unix second of the newest bucket: the newest one every node has reported.</param>
/// <param name="Publications">Publications accepted by all nodes in each second, oldest first, ending at <paramref name="Second"/>.</param>
/// <param name="Deliveries">Pushes queued by all nodes in each second, aligned with <paramref name="Publications"/>.</param>
/// <param name="Disconnects">Connections ended on all nodes in the window, by close code.</param>
/// <param name="Nodes">Each node's recent rates and disconnects.</param>
public sealed record ClusterActivity(
    long Second, int[] Publications, int[] Deliveries, IReadOnlyDictionary<int, long> Disconnects, IReadOnlyList<NodeRates> Nodes)
{
    /// <summary>Seconds a node's rates are averaged over: steady enough to read, recent enough to follow a change.</summary>
    public const int RateSeconds = 5;

    /// <summary>Adds up <paramref name="reports"/>; a node without activity (an older version) counts as idle.</summary>
    public static ClusterActivity From(IReadOnlyList<NodeReport> reports, DateTimeOffset now)
    {
        const int window = ActivityHistory.WindowSeconds;
        var withActivity = reports.Where(r => r.Activity is not null).ToList();
        var end = withActivity.Count > 0 ? withActivity.Min(r => r.Activity!.Second) : now.ToUnixTimeSeconds() - 1;
        var publications = new int[window];
        var deliveries = new int[window];
        var disconnects = new Dictionary<int, long>();
        var nodes = new List<NodeRates>(reports.Count);
        foreach (var report in reports)
        {
            if (report.Activity is not { } activity)
            {
                nodes.Add(new NodeRates(report.Node, 0, 0, new Dictionary<int, long>()));
                continue;
            }

            // The node's series ends at its own Second, at or after the cluster's: its second s is at index
            // s - (Second - length + 1), the cluster's at s - (end - window + 1), so the node's index is the cluster's
            // less the difference, and the node's newest seconds (after end) are not in the sum yet.
            var shift = (int)Math.Min(activity.Second - end, window);
            var length = Math.Min(activity.Publications.Length, activity.Deliveries.Length);
            for (var j = 0; j < window; j++)
            {
                var i = j - shift - (window - length);
                if (i >= 0)
                {
                    publications[j] += activity.Publications[i];
                    deliveries[j] += activity.Deliveries[i];
                }
            }

            foreach (var (code, count) in activity.Disconnects)
            {
                disconnects[code] = disconnects.GetValueOrDefault(code) + count;
            }

            nodes.Add(new NodeRates(report.Node, Rate(activity.Publications), Rate(activity.Deliveries), activity.Disconnects));
        }

        return new ClusterActivity(end, publications, deliveries, disconnects, nodes);
    }

    /// <summary>Per second over the newest <see cref="RateSeconds"/> of a series.</summary>
    private static double Rate(int[] series)
    {
        var seconds = Math.Min(RateSeconds, series.Length);
        var sum = 0L;
        for (var i = series.Length - seconds; i < series.Length; i++)
        {
            sum += series[i];
        }

        return seconds == 0 ? 0 : Math.Round(sum / (double)seconds, 1);
    }
}

/// <summary>One node's recent rates.</summary>
/// <param name="Node">The node id.</param>
/// <param name="PublishRate">Publications accepted per second, over the newest <see cref="ClusterActivity.RateSeconds"/> seconds.</param>
/// <param name="DeliveryRate">Pushes queued per second, over the same seconds.</param>
/// <param name="Disconnects">Connections ended in the window, by close code.</param>
public sealed record NodeRates(string Node, double PublishRate, double DeliveryRate, IReadOnlyDictionary<int, long> Disconnects);
