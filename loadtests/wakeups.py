#!/usr/bin/env python3
"""How late a sleeping thread wakes on this machine: sleeps --interval-ms again and again for --seconds and prints one
JSON line with the overshoot past each sleep's end in microseconds (p50, p90, p99, p99.9, max).

Every hop of a publication's path (publisher to node, node to Redis, Redis to each node, a node's send loop, the
subscriber's socket) is a thread woken by the kernel, so on a machine shared with the load this is the floor under
latency tails. compare.sh runs it over each measured window with PROBE_WAKEUPS=1; alone it tells how quiet the machine
is:  python3 loadtests/wakeups.py --seconds 10
"""
import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval-ms", type=float, default=2.0)
    args = parser.parse_args()
    if args.seconds <= 0 or args.interval_ms <= 0:
        parser.error("--seconds and --interval-ms must be positive")

    interval = args.interval_ms / 1000.0
    overshoots = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        time.sleep(interval)
        overshoots.append((time.perf_counter() - started - interval) * 1e6)

    overshoots.sort()

    def at(fraction: float) -> int:
        return round(overshoots[min(len(overshoots) - 1, int(len(overshoots) * fraction))])

    print(json.dumps({"wakeups": len(overshoots), "wakeupP50us": at(0.5), "wakeupP90us": at(0.9),
                      "wakeupP99us": at(0.99), "wakeupP999us": at(0.999), "wakeupMaxus": round(overshoots[-1])}))


if __name__ == "__main__":
    main()
