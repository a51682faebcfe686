#!/usr/bin/env python3
"""How long each thread waited for a core before it ran: reads `perf sched timehist` output on stdin and prints one JSON
line per process label and thread kind, with how many times its threads were switched out and the scheduling delay
before each of those runs (from being woken, or preempted, to running) in microseconds (p50, p90, p99, p99.9, max).

wakeups.py measures the machine's wake-up latency from a probe thread of its own; this profiles the threads of the
processes under test themselves, hop by hop: the gateways' send loops and socket threads, Redis, the load generator.
compare.sh runs it over five seconds of each measured window with PROBE_SCHED=1 (perf, as root); alone:
  perf sched record -a -o sched.data -- sleep 5
  perf sched timehist -i sched.data | python3 loadtests/schedlat.py --label gateway=1234,1240 --label redis=1200
Threads of processes without a label are reported under "other"; threads with fewer than --min-switches switches are
left out.
"""
import argparse
import json
import re
import sys

# "  66673.466759 [0000]  .NET TP Worker[6284/6254]   0.000   0.000   0.134" (time, cpu, name[tid/pid] or name[pid],
# wait time, scheduling delay and run time in milliseconds).
LINE = re.compile(r"\s*\d+\.\d+\s+\[\d+\]\s+(?P<name>.+?)\[(?P<tid>\d+)(?:/(?P<pid>\d+))?\]"
                  r"\s+(?P<wait>\d+\.\d+)\s+(?P<delay>\d+\.\d+)\s+(?P<run>\d+\.\d+)")


def label_option(text: str) -> tuple[str, list[str]]:
    name, _, pids = text.partition("=")
    pid_list = [p for p in pids.split(",") if p]
    if not name or not pid_list or not all(p.isdigit() for p in pid_list):
        raise argparse.ArgumentTypeError(f"expected NAME=PID[,PID...], got {text!r}")
    return name, pid_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", type=label_option, action="append", default=[], metavar="NAME=PID[,PID...]")
    parser.add_argument("--min-switches", type=int, default=100)
    args = parser.parse_args()
    if args.min_switches < 1:
        parser.error("--min-switches must be positive")

    labels = {pid: name for name, pids in args.label for pid in pids}
    delays: dict[tuple[str, str], list[float]] = {}
    for line in sys.stdin:
        match = LINE.match(line)
        if match is None or match["name"].startswith("<idle>"):
            continue

        # Thread names that end in a number (migration/0 and migration/1, one per core) are one thread kind.
        thread = re.sub(r"[\d:/-]+$", "", match["name"].strip()) or match["name"].strip()
        key = (labels.get(match["pid"] or match["tid"], "other"), thread)
        delays.setdefault(key, []).append(float(match["delay"]) * 1000)

    if not delays:
        sys.exit("no perf sched timehist lines on stdin")

    rows = []
    for (process, thread), values in delays.items():
        if len(values) < args.min_switches:
            continue
        values.sort()

        def at(fraction: float) -> int:
            return round(values[min(len(values) - 1, int(len(values) * fraction))])

        rows.append({"process": process, "thread": thread, "switches": len(values), "delayP50us": at(0.5),
                     "delayP90us": at(0.9), "delayP99us": at(0.99), "delayP999us": at(0.999), "delayMaxus": round(values[-1])})

    for row in sorted(rows, key=lambda r: (r["process"], -r["switches"])):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
