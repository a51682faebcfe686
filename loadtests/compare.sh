#!/usr/bin/env bash
# Measures PushService and its peers (SignalR, Socket.IO) side by side, in one run, on this machine: for each run, two
# gateway nodes of each server on one redis-server, the same load generator scenario, gateway CPU read from /proc over
# the measured window. Prints each run's JSON and the medians. Usage:
#   loadtests/compare.sh A|B|C|idle|churn [runs] [extra load generator options...]
# The idle figures in docs/benchmarks.md add --await-connect (PushService's subscribers wait for the connect reply before
# they subscribe, as the SDK does and as the peers' clients wait for their handshakes); without it they send both back
# to back, which cost PushService about 1 KiB a connection on Kestrel's socket transport and about 0.3 KiB on its own
# lean transport, the default (docs/benchmarks-history.md says why).
# Regimes (issue 5): A notifications (2000 conns x 1 of 10 channels, 20k deliveries/s); B dashboards (200 conns x 10
# channels, 100k/s); C feeds (100 conns x 10 channels, 200k/s).
set -euo pipefail
cd "$(dirname "$0")/.."
regime=${1:-A}; runs=${2:-3}; shift $(( $# > 2 ? 2 : $# )) || true
targets=${TARGETS:-"pushservice signalr socketio"}
# The fan-out regimes warm up for 30 s: with dynamic PGO on, a .NET server is still recompiling hot code for its first
# 20-30 s under load (a tenth of a PushService node's CPU on the JIT's thread 8-18 s into the load, 2% at 43-53 s; the
# gateway now runs without PGO, the SignalR peer with it), and a server that fell behind during a short warm-up catches
# up inside the window at a lower cost per delivery. Churn keeps 5 s.
duration=${DURATION:-15}
# The load generator is inside every latency figure: with .NET's default gen-0 budget the SignalR client it runs collected
# about ten times a second, each a pause of 7-9 ms (8% of the window), and PushService's subscribers once a second. A
# 256 MB budget leaves its measured window without a collection for PushService and with five or six for SignalR.
# LOADGEN_ENV= (empty) runs it with the runtime's defaults, as every set before the evening of 2026-12-01 did.
loadgen_env=${LOADGEN_ENV-DOTNET_GCgen0size=0x10000000}
if [ "$regime" = churn ]; then warmup=${WARMUP:-5}; else warmup=${WARMUP:-30}; fi

case "$regime" in
  A) scenario=(--scenario fanout --connections 2000 --channels 10 --channels-per-connection 1 --rate 100) ;;
  B) scenario=(--scenario fanout --connections 200 --channels 10 --channels-per-connection 10 --rate 500) ;;
  C) scenario=(--scenario fanout --connections 100 --channels 10 --channels-per-connection 10 --rate 2000) ;;
  idle) scenario=(--scenario idle --connections 10000 --warmup-connections 200 --channels 10 --channels-per-connection 1 --connect-parallelism 128) ;;
  churn) scenario=(--scenario churn --channels 10 --channels-per-connection 1 --rate 200) ;;
  *) echo "unknown regime $regime" >&2; exit 2 ;;
esac

for project in src/Gateway loadtests/peers/signalr loadtests/PushService.LoadGen; do
  dotnet build "$project" -c Release -nologo -v quiet >/dev/null
done
if [[ " $targets " == *" socketio "* ]]; then
  # The Socket.IO peer's packages, at the versions its lock file pins.
  npm ci --prefix loadtests/peers/socketio --no-audit --no-fund --loglevel=error >/dev/null
fi
gateway=src/Gateway/bin/Release/net10.0/PushService.Gateway.dll
peer=loadtests/peers/signalr/bin/Release/net10.0/PushService.Peers.SignalR.dll
loadgen=loadtests/PushService.LoadGen/bin/Release/net10.0/PushService.LoadGen.dll

work=$(mktemp -d)
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids=()
cleanup() { kill "${pids[@]}" "$redis_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

# PushService's nodes run with the runtime settings its image and chart give them.
gateway_runtime=$(grep -v '^#' loadtests/gateway.env | xargs)
start_nodes() {
  local target=$1; pids=(); ws=(); publish=""
  for n in 1 2; do
    local port; port=$(free_port)
    if [ "$target" = pushservice ]; then
      env $gateway_runtime ${GATEWAY_ENV:-} dotnet "$gateway" --urls "http://127.0.0.1:$port" --PushService:Redis:Configuration="127.0.0.1:$redis_port" \
        --PushService:NodeId="bench-$n" --Logging:LogLevel:Default=Warning ${GATEWAY_ARGS:-} >"$work/node$n.log" 2>&1 &
      pids+=($!); ws+=("ws://127.0.0.1:$port/ws"); wait_http "http://127.0.0.1:$port/readyz"
    elif [ "$target" = signalr ]; then
      dotnet "$peer" --urls "http://127.0.0.1:$port" --Redis="127.0.0.1:$redis_port" --Logging:LogLevel:Default=Warning >"$work/node$n.log" 2>&1 &
      pids+=($!); ws+=("ws://127.0.0.1:$port/hub"); wait_http "http://127.0.0.1:$port/healthz"
    elif [ "$target" = socketio ]; then
      PORT=$port REDIS_URL="redis://127.0.0.1:$redis_port" node loadtests/peers/socketio/server.js >"$work/node$n.log" 2>&1 &
      pids+=($!); ws+=("ws://127.0.0.1:$port/"); wait_http "http://127.0.0.1:$port/healthz"
    else
      echo "unknown target $target" >&2; exit 2
    fi
    if [ -z "$publish" ]; then publish="http://127.0.0.1:$port/"; fi
  done
}

results="$work/results.jsonl"
for run in $(seq 1 "$runs"); do
  for target in $targets; do
    start_nodes "$target"
    probe=""
    if [ "${PROBE_WAKEUPS:-0}" = 1 ] && [ "$regime" != idle ]; then
      # How late a sleeping thread wakes meanwhile (loadtests/wakeups.py), from when the warm-up ends if connecting took
      # no time: the measured window, give or take the seconds the subscribers took to connect.
      (sleep "$warmup"; python3 loadtests/wakeups.py --seconds "$duration" >"$work/wakeups.json") &
      probe=$!
    fi
    sched=""
    if [ "${PROBE_SCHED:-0}" = 1 ] && [ "$regime" != idle ]; then
      # Five seconds of the scheduler's events from inside the measured window (perf, as root), then how long each
      # thread of the nodes, Redis and the load generator waited for a core after its wake-ups (loadtests/schedlat.py).
      (sleep "$(( warmup + duration / 2 ))"; pgrep -n -f "$loadgen" >"$work/loadgen.pid" || true
       perf sched record -a -o "$work/sched.data" -- sleep 5 >/dev/null 2>&1) &
      sched=$!
    fi
    line=$(env $loadgen_env dotnet "$loadgen" --target "$target" --ws "$(IFS=,; echo "${ws[*]}")" --publish "$publish" \
      --pids "$(IFS=,; echo "${pids[*]}")" --duration "$duration" --warmup "$warmup" --quiet "${scenario[@]}" "$@" || true)
    if [ -n "$probe" ]; then
      wait "$probe" || true
      line=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a.update(json.load(open(sys.argv[2]))); print(json.dumps(a, separators=(",",":")))' "$line" "$work/wakeups.json" 2>/dev/null || echo "$line")
    fi
    echo "run $run $target: $line"
    if [ -n "$sched" ]; then
      wait "$sched" || true
      labels=(--label "gateway=$(IFS=,; echo "${pids[*]}")" --label "redis=$redis_pid")
      if [ -s "$work/loadgen.pid" ]; then labels+=(--label "loadgen=$(cat "$work/loadgen.pid")"); fi
      perf sched timehist -i "$work/sched.data" 2>/dev/null | python3 loadtests/schedlat.py "${labels[@]}" \
        | sed "s/^/sched run $run $target: /" || echo "sched run $run $target: no profile (perf sched needs perf, as root)"
      rm -f "$work/sched.data"
    fi
    echo "$line" >>"$results"
    kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; pids=()
    redis-cli -p "$redis_port" flushall >/dev/null
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
keys = ["deliveriesPerSecond", "gatewayCpuUsPerDelivery", "p50us", "p90us", "p99us", "maxus", "publishP50us", "publishP99us", "loadgenCores", "loadgenGcPauseMs", "wakeupP50us", "wakeupP99us", "wakeupP999us", "lost", "achievedPublishRate",
        "connectsPerSecond", "rssGrowthKiBPerConnection", "peakGrowthKiBPerConnection", "coldPeakGrowthKiBPerConnection", "marginalKiBPerConnection", "achievedConnectsPerSecond", "gatewayCpuUsPerConnect"]
by = {}
for r in rows: by.setdefault(r["target"], []).append(r)
print("medians over", {t: len(v) for t, v in by.items()}, "runs")
for t, rs in by.items():
    med = {k: statistics.median([r[k] for r in rs if r.get(k) is not None]) for k in keys if any(r.get(k) is not None for r in rs)}
    print(t, json.dumps(med))
for peer in [t for t in by if t != "pushservice"]:
    if "pushservice" not in by: break
    for k in ["gatewayCpuUsPerDelivery", "p99us", "peakGrowthKiBPerConnection", "coldPeakGrowthKiBPerConnection", "marginalKiBPerConnection", "gatewayCpuUsPerConnect"]:
        a = [r[k] for r in by["pushservice"] if r.get(k) is not None]; b = [r[k] for r in by[peer] if r.get(k) is not None]
        if a and b: print(f"ratio pushservice/{peer} {k}: {statistics.median(a)/statistics.median(b):.2f}")
PY
