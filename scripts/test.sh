#!/usr/bin/env bash
# Runs every test of PushService: builds with warnings as errors, installs what the integration tests need
# (redis-server) when it is missing, and runs all test projects. Test fixtures start and stop their own servers
# on free loopback ports, so nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing it with apt-get (the integration tests start their own)."
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# The Debian package starts a system-wide server on 6379; the tests never use it, they start their own.

# Node.js runs the Socket.IO peer, which the integration tests measure through the load generator as compare.sh does:
# its packages come from npm at the versions its lock file pins. k6 is not installable here: its scripts are at least
# checked for syntax, as is the peer's server.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm (Node.js 20) are needed: the integration tests run the Socket.IO peer." >&2
  exit 1
fi
for script in loadtests/k6/*.js loadtests/peers/socketio/server.js; do node --check "$script"; done
npm ci --prefix loadtests/peers/socketio --no-audit --no-fund --loglevel=error >/dev/null

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build PushService.sln -c Release -warnaserror -nologo -v quiet

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test PushService.sln -c Release --no-build --nologo 2>&1 | tee "$log" || status=$?

# The functional suite once more with every performance switch off, as an operator would set them, so the library
# paths (Kestrel's transport and WebSockets, socket-by-socket sends, StackExchange.Redis for pub/sub and publishing,
# thread-pool scheduling) stay correct. PerformanceSwitchTests checks the switches were in force.
echo "Functional tests again with every performance switch off:"
PushService__Server__LeanTransport=false PushService__Server__DirectWebSockets=false \
PushService__WebSocket__BatchSends=false PushService__Redis__DirectSubscriptions=false \
PushService__Redis__DirectPublish=false PushService__Server__InlineSocketScheduling=false \
PushService__Server__InlineSocketCompletions=false \
  dotnet test tests/PushService.FunctionalTests -c Release --no-build --nologo 2>&1 | tee -a "$log" || status=$?

# One closing line over all test projects.
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
exit $status
