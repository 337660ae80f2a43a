#!/usr/bin/env bash
# Benchmark: `crtask build` of a small context (20 files, 110 KiB) against
# `buildah bud` + `buildah push` of the same context, on this machine, in the
# same run, same storage driver and isolation.
# Prints each side's median wall time and the ratio.
#   infra/bench/quick-build.sh [RUNS]     (default 10)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-10}
command -v hyperfine >/dev/null 2>&1 || { apt-get install -y -qq hyperfine >/dev/null; }
infra/local/setup.sh >/dev/null
cargo build --quiet --release -p crtask
bin="${CARGO_TARGET_DIR:-$root/target}/release/crtask"

work=$(mktemp -d)
reg_port=$((20000 + RANDOM % 10000)); srv_port=$((reg_port + 1)); api_port=$((reg_port + 2))
REG=127.0.0.1:$reg_port
cleanup() {
  [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null || true
  infra/local/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
infra/local/registry.sh start "$REG" "$work/registry" >/dev/null
infra/local/seed-base.sh "$REG" base:1 >/dev/null

mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<DOCKERFILE
FROM $REG/base:1
COPY . /app/
RUN echo built > /built.txt
DOCKERFILE
for i in $(seq 1 20); do head -c 4096 /dev/urandom | base64 > "$work/ctx/file$i.txt"; done

"$bin" serve --listen "127.0.0.1:$srv_port" --api-listen "127.0.0.1:$api_port" --data-dir "$work/server" --registry "$REG" \
  --insecure-registry "$REG" --workers 1 2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$srv_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

peer_root="$work/peer"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" > "$work/registries.conf"
B="buildah --storage-driver vfs --root $peer_root/root --runroot $peer_root/runroot"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
# The peer does the same engine work crtask does (ask the registry for the
# base, build, push), so the difference is crtask's own overhead: packing and
# uploading the context, queueing, recording, streaming the log.
peer="$B pull -q --policy always $REG/base:1 >/dev/null && $B bud --isolation chroot -q --pull=false -t $REG/peer:latest -f $work/ctx/Dockerfile $work/ctx >/dev/null && $B push -q $REG/peer:latest docker://$REG/peer:latest"
ours="CRTASK_SERVER=http://127.0.0.1:$api_port $bin build --no-logs -t $REG/ours:latest $work/ctx >/dev/null"

hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/result.json" \
  -n "buildah bud + push" "$peer" -n "crtask build" "$ours" >&2
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
peer, ours = r["buildah bud + push"]["median"], r["crtask build"]["median"]
print(f"buildah bud + push median: {peer:.3f} s")
print(f"crtask build median:       {ours:.3f} s")
print(f"ratio crtask/buildah:      {ours/peer:.3f}  (overhead {ours-peer:+.3f} s; target <= 10% + 0.3 s -> {peer*1.1+0.3:.3f} s)")
PY
