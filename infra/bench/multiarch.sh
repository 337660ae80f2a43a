#!/usr/bin/env bash
# Benchmark: a multi-platform build. One `crtask build --platform
# linux/amd64,linux/arm64` (one image index; arm64 under qemu user
# emulation) against the two single-platform builds run one after the other
# (`--platform linux/amd64`, then `--platform linux/arm64`), interleaved by
# hyperfine. The Dockerfile's RUN step does some shell work, so the emulated
# platform's cost shows. `--no-cache` on every side: each run builds anew.
#   [CRTASK_BIN=PATH] infra/bench/multiarch.sh [RUNS]     (default 5)
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
infra/local/seed-multiarch-base.sh "$REG" base:multi >/dev/null

mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<DOCKERFILE
FROM $REG/base:multi
RUN i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; uname -m > /built-on
COPY . /app/
DOCKERFILE
for i in $(seq 1 20); do head -c 4096 /dev/urandom | base64 > "$work/ctx/file$i.txt"; done

"$bin" serve --listen "127.0.0.1:$srv_port" --api-listen "127.0.0.1:$api_port" --data-dir "$work/server" --registry "$REG" \
  --insecure-registry "$REG" --workers 1 2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$srv_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

cli="CRTASK_SERVER=http://127.0.0.1:$api_port $bin build --no-logs --no-cache"
multi="$cli --platform linux/amd64,linux/arm64 -t $REG/app:multi $work/ctx >/dev/null"
amd="$cli --platform linux/amd64 -t $REG/app:amd64 $work/ctx >/dev/null"
arm="$cli --platform linux/arm64 -t $REG/app:arm64 $work/ctx >/dev/null"

hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/result.json" \
  -n "crtask build --platform linux/amd64,linux/arm64" "$multi" \
  -n "amd64 build, then arm64 build" "$amd && $arm" \
  -n "amd64 build alone" "$amd" >&2
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
multi = r["crtask build --platform linux/amd64,linux/arm64"]
seq = r["amd64 build, then arm64 build"]
amd = r["amd64 build alone"]
print(f"multi-platform build median:      {multi:.3f} s")
print(f"two single-platform builds median: {seq:.3f} s")
print(f"amd64 build alone median:          {amd:.3f} s")
print(f"multi / two singles:               {multi/seq:.3f}")
PY
