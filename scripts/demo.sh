#!/usr/bin/env bash
# The main job end to end, on this machine only: start a distribution registry with htpasswd auth
# on a free loopback port, then log in, list and log out with a throw-away HOME.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker-registry htpasswd; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing; install Debian's docker-registry and apache2-utils" >&2; exit 1; }
done

work=$(mktemp -d)
registry_pid=""
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
host="127.0.0.1:$port"
htpasswd -Bbc "$work/htpasswd" demo demo-password 2>/dev/null
cat > "$work/config.yml" <<YAML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/data } }
http: { addr: "$host", secret: demo }
auth: { htpasswd: { realm: demo, path: $work/htpasswd } }
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
node -e '
const until = Date.now() + 15000
const poll = () => fetch(process.argv[1]).then(() => process.exit(0), () =>
  Date.now() > until ? (console.error("demo: the registry did not start"), process.exit(1)) : setTimeout(poll, 100))
poll()' "http://$host/v2/"

export HOME="$work/home"
mkdir -p "$HOME"
microagent() { node dist/bin.mjs "$@"; }

step() { printf '\n$ %s\n' "$*"; }
step "printf '%s\\n' \"\$PASSWORD\" | microagent registry login $host -u demo --password-stdin"
printf '%s\n' demo-password | microagent registry login "$host" -u demo --password-stdin
step "microagent registry list"
microagent registry list
step "printf 'wrong\\n' | microagent registry login $host -u demo --password-stdin   # rejected: exit 4, store unchanged"
code=0; printf 'wrong\n' | microagent registry login "$host" -u demo --password-stdin || code=$?
echo "exit code $code"
[ "$code" = 4 ]
step "microagent registry logout $host"
microagent registry logout "$host"
step "microagent registry list --json"
microagent registry list --json
printf '\ndemo: ok\n'
