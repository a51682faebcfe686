#!/usr/bin/env bash
# The telemetry's cost in alternating pairs, so drifts of the machine hit both sides alike (docs/benchmarks.md, "Telemetry"):
#   loadtests/telemetry-pairs.sh B|C pairs metrics   telemetry off (PushService:Telemetry:Enabled=false) against on
#   loadtests/telemetry-pairs.sh B|C pairs tracing   metrics only against tracing everything over OTLP to a port where
#                                                    nothing listens (the exporters do all their work, then fail to send)
# Each line is one compare.sh run of PushService alone; the pairs' ratios are the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
regime=${1:-B}; pairs=${2:-3}; what=${3:-metrics}
for i in $(seq 1 "$pairs"); do
  if [ "$what" = metrics ]; then sides=(off on); else sides=(metrics traced); fi
  if [ $((i % 2)) -eq 0 ]; then sides=("${sides[1]}" "${sides[0]}"); fi
  for side in "${sides[@]}"; do
    args=""; envs=""
    case "$side" in
      off) args="--PushService:Telemetry:Enabled=false" ;;
      traced) envs="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9" ;;
    esac
    line=$(TARGETS=pushservice GATEWAY_ARGS="$args" GATEWAY_ENV="$envs" loadtests/compare.sh "$regime" 1 | grep "^run 1 pushservice:" || true)
    echo "$regime pair $i $side: ${line#run 1 pushservice: }"
  done
done
