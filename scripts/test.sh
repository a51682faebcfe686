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

# The browser client's tests run in Debian's Chromium, driven by playwright-core (which downloads no browser of its own).
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium not found: installing Debian's with apt-get (the browser client's tests drive it headless)."
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null

# The Helm chart's tests: there is no helm binary here, so a small renderer on Go's text/template and Sprig (Debian's
# packages, built in GOPATH mode: nothing is downloaded) renders it, kubernetes-models and ajv from npm validate it, and
# the rolling-upgrade simulation puts Debian's haproxy in front of the gateways.
missing=()
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || missing+=(golang-github-masterminds-sprig-dev)
[ -d /usr/share/gocode/src/sigs.k8s.io/yaml ] || missing+=(golang-k8s-sigs-yaml-dev)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The Server-Sent Events tests put Debian's nginx in front of the gateways, as a proxy that breaks WebSockets would be.
[ -x /usr/sbin/nginx ] || missing+=(nginx)
# The metrics tests start a real Prometheus and check the alert rules with its promtool.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get (the Helm chart's renderer, the rolling-upgrade, metrics and event-stream tests need them)."
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
npm ci --prefix deploy/helm/tests --no-audit --no-fund --loglevel=error >/dev/null
# 3,000 clients through one HAProxy in the rolling-upgrade test: two descriptors each on the proxy.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The TypeScript client: its unit tests, then its build, which the gateway embeds and serves at /sdk/push.js. The built
# file is committed (so `dotnet run` needs no npm); a build that differs from it fails here.
npm ci --prefix src/Sdk/js --no-audit --no-fund --loglevel=error >/dev/null
js_log=$(mktemp)
js_status=0
npm test --prefix src/Sdk/js 2>&1 | tee "$js_log" || js_status=$?
npm run build --prefix src/Sdk/js --silent
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- src/Sdk/js/dist; then
  echo "src/Sdk/js/dist differs from a fresh build: run 'npm run build --prefix src/Sdk/js' and commit it." >&2
  git diff --stat -- src/Sdk/js/dist >&2
  js_status=1
fi

# The web console's script, built the same way: its TypeScript compiler from npm, the build committed and checked.
npm ci --prefix src/Gateway/WebConsole/web --no-audit --no-fund --loglevel=error >/dev/null
npm run build --prefix src/Gateway/WebConsole/web --silent || js_status=1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- src/Gateway/WebConsole/web/dist; then
  echo "src/Gateway/WebConsole/web/dist differs from a fresh build: run 'npm run build --prefix src/Gateway/WebConsole/web' and commit it." >&2
  git diff --stat -- src/Gateway/WebConsole/web/dist >&2
  js_status=1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build PushService.sln -c Release -warnaserror -nologo -v quiet

# Batched sends need io_uring, which container runtimes' default seccomp profiles refuse: there the tests that need it
# (trait Requires=io_uring) are left out, and this says so; the node's fallback is tested everywhere.
filter=()
if command -v python3 >/dev/null 2>&1 && ! python3 - <<'PROBE'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 8, params) if os.uname().machine in ("x86_64", "aarch64") else -1
if fd >= 0:
    os.close(fd)
sys.exit(0 if fd >= 0 else 1)
PROBE
then
  echo "io_uring is refused on this machine: the tests that need it (Requires=io_uring) are not run."
  filter=(--filter "Requires!=io_uring")
fi

log=$(mktemp)
trap 'rm -f "$log" "$js_log"' EXIT
status=$js_status
dotnet test PushService.sln -c Release --no-build --nologo "${filter[@]}" 2>&1 | tee "$log" || status=$?

# The functional suite once more with every performance switch off, as an operator would set them, so the library
# paths (Kestrel's transport and WebSockets, socket-by-socket sends, StackExchange.Redis for pub/sub and publishing,
# thread-pool scheduling) stay correct. PerformanceSwitchTests checks the switches were in force.
echo "Functional tests again with every performance switch off:"
PushService__Server__BypassKestrelTransport=false PushService__Server__BypassHttpPipeline=false \
PushService__WebSocket__BatchSends=false PushService__Redis__BypassLibrarySubscriptions=false \
PushService__Redis__BypassLibraryPublish=false PushService__Server__InlineSocketScheduling=false \
DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 \
  dotnet test tests/PushService.FunctionalTests -c Release --no-build --nologo 2>&1 | tee -a "$log" || status=$?

# One closing line over all test projects, the TypeScript client's included.
js_passed=$(grep -Eo '^# pass [0-9]+' "$js_log" | awk '{s+=$3} END {print s+0}')
js_failed=$(grep -Eo '^# fail [0-9]+' "$js_log" | awk '{s+=$3} END {print s+0}')
passed=$(grep -Eo 'Passed: +[0-9]+' "$log" | awk -v js="$js_passed" '{s+=$2} END {print s+js}')
failed=$(grep -Eo 'Failed: +[0-9]+' "$log" | awk -v js="$js_failed" '{s+=$2} END {print s+js}')
skipped=$(grep -Eo 'Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
echo "tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
exit $status
