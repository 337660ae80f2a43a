#!/usr/bin/env bash
# Benchmark: what a build's RUN instruction costs under the isolation crtask
# gives it (`--isolation oci` under runc, the host's network), next to
# buildah's chroot isolation (crtask's `--build-runtime none`, the peer).
# Two Dockerfiles on the seed image, one with 1 RUN and one with 11; the
# cost of one RUN is (time of 11 - time of 1) / 10, so the FROM, the
# commit and buildah's start-up cancel out. Each is built with
# `buildah bud --layers=false`, alternating the two isolations, N times;
# medians are printed.
#   infra/bench/build-runs.sh [N]     (default 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:-5}
infra/local/setup.sh >/dev/null
runc=$(command -v runc || echo /usr/sbin/runc)

work=$(mktemp -d)
reg_port=$((20000 + RANDOM % 10000))
REG=127.0.0.1:$reg_port
cleanup() {
  infra/local/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
infra/local/registry.sh start "$REG" "$work/registry" >/dev/null
infra/local/seed-base.sh "$REG" base:1 >/dev/null
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" > "$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
B="buildah --storage-driver vfs --root $work/root --runroot $work/runroot"
$B pull -q "$REG/base:1" >/dev/null

mkdir -p "$work/ctx"
for k in 1 11; do
  { echo "FROM $REG/base:1"; for i in $(seq 1 "$k"); do echo "RUN echo run-$i; echo err-$i >&2"; done; } > "$work/ctx/Dockerfile.$k"
done
declare -A iso=(
  [oci]="--isolation oci --runtime $runc --runtime-flag root=$work/runroot/runc --network host"
  [chroot]="--isolation chroot"
)
time_bud() { # ISOLATION RUNS -> seconds
  local s e
  s=$(date +%s.%N)
  # shellcheck disable=SC2086
  $B bud ${iso[$1]} --pull=false --layers=false -q -f "$work/ctx/Dockerfile.$2" "$work/ctx" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$n"); do
  for mode in oci chroot; do
    for k in 1 11; do echo "$mode $k $(time_bud "$mode" "$k")"; done
  done
done > "$work/times"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/times" <<'PY'
import sys, statistics
t = {}
for line in open(sys.argv[1]):
    mode, k, s = line.split()
    t.setdefault((mode, int(k)), []).append(float(s))
print(f"{'isolation':<10} {'1 RUN':>8} {'11 RUNs':>8} {'per RUN':>8}")
per = {}
for mode in ("oci", "chroot"):
    a, b = statistics.median(t[(mode, 1)]), statistics.median(t[(mode, 11)])
    per[mode] = (b - a) / 10
    print(f"{mode:<10} {a:>7.3f}s {b:>7.3f}s {per[mode]:>7.3f}s")
print(f"oci / chroot per RUN: {per['oci'] / per['chroot']:.2f}")
PY
