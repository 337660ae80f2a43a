#!/usr/bin/env bash
# Benchmark: how close a multi-step run gets to its critical path.
# Two graphs of `cmd` steps that sleep: four independent steps, and a
# diamond (A 1 s -> B 2 s, C 3 s -> D 1 s). For each, crtask's run wall time
# (run start to finish, from the run record) is divided by the critical
# path: nominal (the sleeps) and measured (each step's own recorded
# duration, container start included, summed along the longest path). The
# peer is the same graph hand-scheduled in bash (`&` and `wait`) with plain
# `buildah from` + `buildah run`, timed the same way, once with chroot
# isolation and once under runc as crtask runs cmd steps.
#   infra/bench/multistep.sh [RUNS]     (default 3)
# CRTASK_BIN=path/to/crtask measures that binary instead of a fresh release
# build (to compare two builds of the same profile side by side).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-3}
infra/local/setup.sh >/dev/null
if [ -n "${CRTASK_BIN:-}" ]; then
  bin=$CRTASK_BIN
else
  cargo build --quiet --release -p crtask
  bin="${CARGO_TARGET_DIR:-$root/target}/release/crtask"
fi

work=$(mktemp -d)
reg_port=$((20000 + RANDOM % 10000)); srv_port=$((reg_port + 1)); api_port=$((reg_port + 2))
REG=127.0.0.1:$reg_port
export CRTASK_SERVER="http://127.0.0.1:$api_port"
cleanup() {
  [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null || true
  infra/local/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
infra/local/registry.sh start "$REG" "$work/registry" >/dev/null
infra/local/seed-base.sh "$REG" base:1 >/dev/null
"$bin" serve --listen "127.0.0.1:$srv_port" --api-listen "127.0.0.1:$api_port" --data-dir "$work/server" --registry "$REG" \
  --insecure-registry "$REG" --workers 1 2> "$work/server.log" &
srv_pid=$!
for _ in $(seq 1 100); do curl -fsS "$CRTASK_SERVER/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

img="$REG/base:1"
mkdir -p "$work/ctx"
cat > "$work/ctx/independent.yaml" <<YAML
steps:
  - {id: s1, cmd: $img sleep 3, when: ["-"]}
  - {id: s2, cmd: $img sleep 3, when: ["-"]}
  - {id: s3, cmd: $img sleep 3, when: ["-"]}
  - {id: s4, cmd: $img sleep 3, when: ["-"]}
YAML
cat > "$work/ctx/diamond.yaml" <<YAML
steps:
  - {id: a, cmd: $img sleep 1}
  - {id: b, cmd: $img sleep 2, when: [a]}
  - {id: c, cmd: $img sleep 3, when: [a]}
  - {id: d, cmd: $img sleep 1, when: [b, c]}
YAML
# A first run (each run pulls its images into its own store; this warms the registry and page cache).
"$bin" run --no-logs -f diamond.yaml "$work/ctx" >/dev/null

printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" > "$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
B="buildah --storage-driver vfs --root $work/peer/root --runroot $work/peer/runroot"
# The peer's containers run with buildah's chroot isolation (crtask's cmd
# steps did too before they moved to runc); PEER_ISOLATION=runc gives the
# peer crtask's own runtime options instead, for a second column.
isolation=(--isolation chroot)
step() { local c; c=$($B from --quiet --pull=missing "$img"); $B run "${isolation[@]}" "$c" -- sleep "$1"; $B rm "$c" >/dev/null; }
# `wait` names its children: a bare `wait` would also wait for the server.
peer_independent() {
  local p=()
  for _ in 1 2 3 4; do step 3 & p+=($!); done
  wait "${p[@]}"
}
peer_diamond() {
  step 1
  step 2 & local b=$!
  step 3 & local c=$!
  wait "$b" "$c"
  step 1
}
step 0  # warm the peer's image store

for graph in independent diamond; do
  for i in $(seq 1 "$runs"); do
    id=$("$bin" run --no-logs -f "$graph.yaml" "$work/ctx" | sed -n 's/^Queued a run with ID: //p')
    "$bin" task show-run --run-id "$id" -o json > "$work/$graph-$i.json"
    isolation=(--isolation chroot)
    s=$(date +%s.%N); "peer_$graph"; e=$(date +%s.%N)
    echo "$s $e" > "$work/peer-$graph-$i.txt"
    isolation=(--isolation oci --runtime runc --runtime-flag "root=$work/peer/runc" --network host)
    s=$(date +%s.%N); "peer_$graph"; e=$(date +%s.%N)
    echo "$s $e" > "$work/peerrunc-$graph-$i.txt"
  done
done

python3 - "$work" "$runs" <<'PY'
import json, sys, statistics
from datetime import datetime
work, runs = sys.argv[1], int(sys.argv[2])
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
nominal = {"independent": 3.0, "diamond": 1 + 3 + 1}
deps = {"independent": {"s1": [], "s2": [], "s3": [], "s4": []},
        "diamond": {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}}
# Steps on the critical path: per-step overhead = (wall - nominal) / steps.
path_steps = {"independent": 1, "diamond": 3}
print(f"{'graph':<12} {'crtask wall':>11} {'nominal cp':>10} {'ratio':>6} {'measured cp':>11} {'ratio':>6} {'overhead/step':>13} {'peer wall':>9} {'peer/nominal':>12} {'peer overhead/step':>18} {'crtask/peer':>11} {'runc peer overhead/step':>23} {'crtask/runc peer':>16}")
for g in ("independent", "diamond"):
    walls, cps, peers, runcs = [], [], [], []
    for i in range(1, runs + 1):
        r = json.load(open(f"{work}/{g}-{i}.json"))
        assert r["status"] == "Succeeded", r
        walls.append(t(r["finishTime"]) - t(r["startTime"]))
        dur = {s["id"]: t(s["finishTime"]) - t(s["startTime"]) for s in r["steps"]}
        longest = {}
        for sid in deps[g]:  # file order is a topological order here
            longest[sid] = dur[sid] + max((longest[d] for d in deps[g][sid]), default=0)
        cps.append(max(longest.values()))
        s, e = map(float, open(f"{work}/peer-{g}-{i}.txt").read().split())
        peers.append(e - s)
        s, e = map(float, open(f"{work}/peerrunc-{g}-{i}.txt").read().split())
        runcs.append(e - s)
    w, cp, p = statistics.median(walls), statistics.median(cps), statistics.median(peers)
    o, po = (w - nominal[g]) / path_steps[g], (p - nominal[g]) / path_steps[g]
    ro = (statistics.median(runcs) - nominal[g]) / path_steps[g]
    print(f"{g:<12} {w:>10.3f}s {nominal[g]:>9.1f}s {w/nominal[g]:>6.3f} {cp:>10.3f}s {w/cp:>6.3f} {o:>12.3f}s {p:>8.3f}s {p/nominal[g]:>12.3f} {po:>17.3f}s {o/po:>11.2f} {ro:>22.3f}s {o/ro:>16.2f}")
PY
