using System.Globalization;

namespace PushService.LoadGen;

/// <summary>CPU time and memory of the gateway processes, read from /proc (Linux).</summary>
internal static class ProcessStats
{
    // USER_HZ: /proc/<pid>/stat counts CPU time in these ticks; 100 on every Linux this runs on.
    private const double TicksPerSecond = 100;

    /// <summary>User plus system CPU seconds of all <paramref name="pids"/> so far.</summary>
    public static double CpuSeconds(IEnumerable<int> pids)
    {
        var (user, system) = CpuSplit(pids);
        return user + system;
    }

    /// <summary>User and system (kernel) CPU seconds of all <paramref name="pids"/> so far.</summary>
    public static (double User, double System) CpuSplit(IEnumerable<int> pids)
    {
        double user = 0, system = 0;
        foreach (var pid in pids)
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");

            // Fields after the command name (which may hold spaces) start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            user += long.Parse(fields[11], CultureInfo.InvariantCulture) / TicksPerSecond;
            system += long.Parse(fields[12], CultureInfo.InvariantCulture) / TicksPerSecond;
        }

        return (user, system);
    }

    /// <summary>Resident memory now (<c>VmRSS</c>) or at its peak (<c>VmHWM</c>), in KiB, summed over the processes.</summary>
    public static long MemoryKiB(IEnumerable<int> pids, string field)
    {
        long total = 0;
        foreach (var pid in pids)
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    total += long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }

        return total;
    }
}
