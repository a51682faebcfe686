#!/usr/bin/env bash
# What an idle connection holds, by type: starts one PushService node (in-memory broker), holds N subscribed idle
# connections with the load generator, takes a heap dump with dotnet-gcdump (installed as a global tool when missing)
# and prints the bytes per connection of every type with at least 0.9 N objects, then their total. Usage:
#   loadtests/heapdump-idle.sh [connections, default 5000] [extra gateway options...]
# e.g. loadtests/heapdump-idle.sh 5000 --PushService:Server:BypassKestrelTransport=false for Kestrel's own transport.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-5000}; shift $(( $# > 0 ? 1 : 0 )) || true
gcdump=${DOTNET_GCDUMP:-$HOME/.dotnet/tools/dotnet-gcdump}
[ -x "$gcdump" ] || dotnet tool install --global dotnet-gcdump >/dev/null
for project in src/Gateway loadtests/PushService.LoadGen; do
  dotnet build "$project" -c Release -nologo -v quiet >/dev/null
done

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
env $(grep -v '^#' loadtests/gateway.env | xargs) dotnet src/Gateway/bin/Release/net10.0/PushService.Gateway.dll --urls "http://127.0.0.1:$port" \
  --Logging:LogLevel:Default=Warning "$@" >"$work/node.log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# Held long enough for the dump; the dump is taken once every connection is open.
dotnet loadtests/PushService.LoadGen/bin/Release/net10.0/PushService.LoadGen.dll --target pushservice --scenario idle \
  --ws "ws://127.0.0.1:$port/ws" --publish "http://127.0.0.1:$port" --connections "$connections" --channels 10 \
  --channels-per-connection 1 --warmup-connections 200 --await-connect --duration 40 --pids "$node" --quiet \
  >"$work/loadgen.json" 2>&1 &
loadgen=$!
for _ in $(seq 1 600); do
  [ "$(ss -Htn state established "( sport = :$port )" | wc -l)" -ge "$connections" ] && break; sleep 0.1
done
sleep 2
"$gcdump" collect -p "$node" -o "$work/idle.gcdump" >/dev/null
"$gcdump" report "$work/idle.gcdump" >"$work/report.txt"
wait "$loadgen" || true
python3 - "$work/report.txt" "$connections" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]).read().splitlines():
    m = re.match(r'\s*([\d,]+)\s+([\d,]+)\s+(.*)$', line)
    if m:
        size, count, name = int(m.group(1).replace(',', '')), int(m.group(2).replace(',', '')), m.group(3)
        row = rows.setdefault(name, [0, 0]); row[0] += size * count; row[1] += count
n = int(sys.argv[2]); total = 0
for name, (size, count) in sorted(rows.items(), key=lambda r: -r[1][0]):
    if count >= 0.9 * n:
        total += size
        print(f"{size / n:8.0f} B  {count:7d}  {name[:150]}")
print(f"{total / n:8.0f} B per connection in types with at least {int(0.9 * n)} objects")
PY
