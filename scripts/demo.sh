#!/usr/bin/env bash
# The main job end to end, on this machine only: start a distribution registry with htpasswd auth
# on a free loopback port; with a throw-away HOME, log in, push an image made with umoci, pull it
# back into the shared store and into a layout of its own, build a runtime bundle of it pinned by
# digest, list credentials and log out; then run the private image with credentials from
# $REGISTRY_AUTH_FILE alone, as the documented journey does.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker-registry htpasswd umoci busybox runc tini-static; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing; install Debian's docker-registry, apache2-utils, umoci, busybox-static, runc and tini" >&2; exit 1; }
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
microagent() { node dist/bin.cjs "$@"; }

step() { printf '\n$ %s\n' "$*"; }
step "printf '%s\\n' \"\$PASSWORD\" | microagent registry login $host -u demo --password-stdin"
printf '%s\n' demo-password | microagent registry login "$host" -u demo --password-stdin
step "microagent registry list"
microagent registry list

# An image to push, made with umoci: busybox as /bin/sh, and 4 MiB of random bytes.
umoci init --layout "$work/layout" >/dev/null
umoci new --image "$work/layout:demo" >/dev/null
umoci insert --image "$work/layout:demo" "$(command -v busybox)" /bin/sh >/dev/null
head -c 4194304 /dev/urandom > "$work/payload.bin"
umoci insert --image "$work/layout:demo" "$work/payload.bin" /payload.bin >/dev/null
umoci config --image "$work/layout:demo" --config.cmd /bin/sh >/dev/null

step "microagent push oci:$work/layout:demo $host/demo/app:1"
pushed=$(microagent push "oci:$work/layout:demo" "$host/demo/app:1")
echo "$pushed"
step "microagent pull $host/demo/app:1"
pulled=$(microagent pull "$host/demo/app:1")
echo "$pulled"
[ "$pushed" = "$pulled" ]
step "microagent pull $host/demo/app:1 --output $work/copy"
microagent pull "$host/demo/app:1" --output "$work/copy"
step "microagent rootfs build $host/demo/app:1 --out $work/bundle   # refused: a tag can move, exit 2"
code=0; microagent rootfs build "$host/demo/app:1" --out "$work/bundle" || code=$?
echo "exit code $code"
[ "$code" = 2 ]
step "microagent rootfs build $host/demo/app@$pulled --out $work/bundle"
microagent rootfs build "$host/demo/app@$pulled" --out "$work/bundle"
step "ls $work/bundle $work/bundle/rootfs"
ls "$work/bundle" "$work/bundle/rootfs"
step "printf 'wrong\\n' | microagent registry login $host -u demo --password-stdin   # rejected: exit 4, store unchanged"
code=0; printf 'wrong\n' | microagent registry login "$host" -u demo --password-stdin || code=$?
echo "exit code $code"
[ "$code" = 4 ]
step "microagent registry logout $host"
microagent registry logout "$host"
step "microagent registry list --json"
microagent registry list --json

# The documented journey: credentials in a containers-auth.json named by $REGISTRY_AUTH_FILE.
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$(printf 'demo:demo-password' | base64)" > "$work/auth.json"
step "export REGISTRY_AUTH_FILE=$work/auth.json"
export REGISTRY_AUTH_FILE="$work/auth.json"
step "microagent run $host/demo/app:1 sh -c 'echo hello from \$(hostname); exit 3'   # the process's exit code"
code=0; microagent run "$host/demo/app:1" sh -c 'echo hello from $(hostname); exit 3' || code=$?
echo "exit code $code"
[ "$code" = 3 ]
unset REGISTRY_AUTH_FILE
printf '\ndemo: ok\n'
