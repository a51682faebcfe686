using System.Globalization;

namespace PushService.LoadGen;

/// <summary>
/// CPU time and memory of the gateway processes, read from /proc (Linux). A reading is null when there is nothing to
/// read (no <c>--pids</c>) or a process has gone (a node that died during the run): a sum over fewer nodes than were
/// measured would be a wrong figure.
/// </summary>
internal static class ProcessStats
{
    // USER_HZ: /proc/<pid>/stat counts CPU time in these ticks; 100 on every Linux this runs on.
    private const double TicksPerSecond = 100;

    /// <summary>User and system (kernel) CPU seconds of all <paramref name="pids"/> so far; null when one has gone.</summary>
    public static CpuTime? Cpu(IReadOnlyCollection<int> pids)
    {
        if (pids.Count == 0)
        {
            return null;
        }

        double user = 0, system = 0;
        foreach (var pid in pids)
        {
            if (Read($"/proc/{pid}/stat") is not { } stat)
            {
                return null;
            }

            // Fields after the command name (which may hold spaces) start after the last ')'.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            user += long.Parse(fields[11], CultureInfo.InvariantCulture) / TicksPerSecond;
            system += long.Parse(fields[12], CultureInfo.InvariantCulture) / TicksPerSecond;
        }

        return new CpuTime(user, system);
    }

    /// <summary>
    /// Resident memory now (<c>VmRSS</c>) or at its peak (<c>VmHWM</c>), in KiB, summed over the processes; null when
    /// one has gone.
    /// </summary>
    public static long? MemoryKiB(IReadOnlyCollection<int> pids, string field)
    {
        if (pids.Count == 0)
        {
            return null;
        }

        long total = 0;
        foreach (var pid in pids)
        {
            if (Read($"/proc/{pid}/status") is not { } status)
            {
                return null;
            }

            foreach (var line in status.Split('\n'))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    total += long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }

        return total;
    }

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>CPU seconds in user space and in the kernel.</summary>
internal readonly record struct CpuTime(double User, double System)
{
    public double Total => User + System;

    public static CpuTime operator -(CpuTime end, CpuTime start) => new(end.User - start.User, end.System - start.System);
}
