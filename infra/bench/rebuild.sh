#!/usr/bin/env bash
# Benchmark: the layer cache. A Dockerfile with a slow dependency step
# (sleep 8, standing for a package install) before `COPY . .`; each timed
# run changes one source file first. Three sides, interleaved by hyperfine:
#   - crtask build, rebuild (the dependency layer comes from the registry cache)
#   - bare buildah: pull + `bud --layers --cache-from R --cache-to R` + push,
#     on a fresh store each time (as crtask's runs are), same cache repository
#   - crtask build --no-cache (a clean build)
# Targets: rebuild <= 0.3x the clean build; within 5% + 0.2 s of bare buildah.
#   [CRTASK_BIN=PATH] infra/bench/rebuild.sh [RUNS]     (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-5}
command -v hyperfine >/dev/null 2>&1 || { apt-get install -y -qq hyperfine >/dev/null; }
infra/local/setup.sh >/dev/null
# CRTASK_BIN: an already built binary (else a release build is made).
bin=${CRTASK_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --release -p crtask
  bin="${CARGO_TARGET_DIR:-$root/target}/release/crtask"
fi

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
RUN sleep 8 && echo deps > /deps
COPY . /app/
DOCKERFILE
for i in $(seq 1 20); do head -c 4096 /dev/urandom | base64 > "$work/ctx/file$i.txt"; done

"$bin" serve --listen "127.0.0.1:$srv_port" --api-listen "127.0.0.1:$api_port" --data-dir "$work/server" --registry "$REG" \
  --insecure-registry "$REG" --workers 1 2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$srv_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" > "$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
B="buildah --storage-driver vfs --root $work/peer/root --runroot $work/peer/runroot"
cache=$REG/app/cache
change="date +%s%N > $work/ctx/changed.txt"
fresh="rm -rf $work/peer; $change"
peer="$B pull -q --policy always $REG/base:1 >/dev/null && $B bud --isolation chroot -q --pull=false --layers --cache-from $cache --cache-to $cache -t $REG/app:peer $work/ctx >/dev/null && $B push -q $REG/app:peer docker://$REG/app:peer"
ours="CRTASK_SERVER=http://127.0.0.1:$api_port $bin build --no-logs -t $REG/app:ours $work/ctx >/dev/null"
clean="CRTASK_SERVER=http://127.0.0.1:$api_port $bin build --no-logs --no-cache -t $REG/app:clean $work/ctx >/dev/null"
# Fill the cache once.
eval "$ours"

hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/result.json" \
  --prepare "$fresh" -n "buildah bud --layers (registry cache)" "$peer" \
  --prepare "$change" -n "crtask build (rebuild)" "$ours" \
  --prepare "$change" -n "crtask build --no-cache" "$clean" >&2
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
peer, ours, clean = r["buildah bud --layers (registry cache)"], r["crtask build (rebuild)"], r["crtask build --no-cache"]
print(f"bare buildah rebuild median:  {peer:.3f} s")
print(f"crtask rebuild median:        {ours:.3f} s  (target <= 5% + 0.2 s over buildah -> {peer*1.05+0.2:.3f} s)")
print(f"crtask clean build median:    {clean:.3f} s")
print(f"rebuild / clean:              {ours/clean:.3f}  (target <= 0.3)")
PY
