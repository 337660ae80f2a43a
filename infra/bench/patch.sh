#!/usr/bin/env bash
# Benchmark: OS patching (`crtask patch`) against a full rebuild of the same
# image from its Dockerfile, for the same package update, on one server.
# The image: a debootstrap Debian root (the base) plus a Dockerfile layer
# that installs two packages from a local apt repository. Then the repository
# gets newer versions, and each of N identical tags is patched once
# (`crtask patch app:K`) and rebuilt once (`crtask build` of the Dockerfile,
# which installs the newer versions). Wall time per run from the run records.
#   infra/bench/patch.sh [N]   (default 3; needs debootstrap, dpkg-dev, python3;
#   CRTASK_BIN=path uses that binary instead of a release build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${1:-3}
# CRTASK_BIN: a crtask binary to use as is (the time goes to buildah and
# the package manager, not to crtask; a debug build measures the same).
if [ -z "${CRTASK_BIN:-}" ]; then cargo build --quiet --release -p crtask; fi
bin="${CRTASK_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/crtask}"
cache="${CARGO_TARGET_DIR:-$root/target}/tmp/patch-fixtures"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The Debian root, made once (the patch tests share the cache).
suite=$(awk '/^Suites:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
suite=${suite:-bookworm}; mirror=${mirror:-http://deb.debian.org/debian}
tarball="$cache/debian-$suite-minbase.tar"
if [ ! -f "$tarball" ]; then
  mkdir -p "$cache"
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >/dev/null
  rm -f "$work/rootfs"/var/cache/apt/archives/*.deb; find "$work/rootfs/var/lib/apt/lists" -maxdepth 1 -type f -delete
  tar -C "$work/rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
fi

reg=127.0.0.1:$(free_port)
printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: "%s"}\nhttp: {addr: "%s"}\n' "$work/reg" "$reg" > "$work/reg.yml"
docker-registry serve "$work/reg.yml" >/dev/null 2>&1 & pids+=($!)
repo_port=$(free_port); mkdir -p "$work/repo"
(cd "$work/repo" && exec python3 -m http.server "$repo_port" --bind 127.0.0.1 >/dev/null 2>&1) & pids+=($!)
mkdeb() { # NAME VERSION
  d="$work/pkg-$1-$2"; mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: bench <bench@example.invalid>\nDescription: bench\n' "$1" "$2" > "$d/DEBIAN/control"
  echo "$2" > "$d/usr/share/$1/version"; touch -d "@$((1600000000 + ${#2} * 1000 + $(printf '%s' "$2" | cksum | cut -d' ' -f1) % 1000))" "$d/usr/share/$1/version"
  dpkg-deb --root-owner-group -b "$d" "$work/repo/$1_$2_all.deb" >/dev/null
  (cd "$work/repo" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null)
}
mkdeb crtask-demo 1.0; mkdeb crtask-other 1.0

B="--storage-driver vfs --root $work/b/root --runroot $work/b/run"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$reg" > "$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
ctr=$(buildah $B from scratch); buildah $B add "$ctr" "$tarball" / >/dev/null
buildah $B commit --quiet --identity-label=false "$ctr" "$reg/debian:$suite" >/dev/null
buildah $B push --quiet "$reg/debian:$suite" "docker://$reg/debian:$suite"

mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<DOCKERFILE
FROM $reg/debian:$suite
RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources \\
 && echo "deb [trusted=yes] http://127.0.0.1:$repo_port/ ./" > /etc/apt/sources.list.d/local.list \\
 && apt-get update -q && apt-get install -y -q crtask-demo crtask-other \\
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/bin/cat", "/usr/share/crtask-demo/version"]
DOCKERFILE

api=127.0.0.1:$(free_port)
"$bin" serve --listen 127.0.0.1:$(free_port) --api-listen "$api" --data-dir "$work/data" \
  --registry "$reg" --insecure-registry "$reg" --workers 1 2>"$work/serve.log" & pids+=($!)
export CRTASK_SERVER=http://$api
for _ in $(seq 100); do curl -fs "$CRTASK_SERVER/healthz" >/dev/null && break; sleep 0.1; done
for k in $(seq "$n"); do "$bin" build --no-logs -t "app:$k" "$work/ctx" >/dev/null; done
mkdeb crtask-demo 1.1; mkdeb crtask-other 1.1

secs() { # RUN-ID: seconds from start to finish
  "$bin" -o json task show-run --run-id "$1" | python3 -c 'import json,sys,datetime as d
r=json.load(sys.stdin); p=lambda s: d.datetime.fromisoformat(s.replace("Z","+00:00"))
assert r["status"]=="Succeeded", r
print("%.1f" % (p(r["finishTime"])-p(r["startTime"])).total_seconds())'
}
patch=(); rebuild=()
for k in $(seq "$n"); do
  id=$("$bin" patch --no-logs "app:$k" | sed -n 's/^Queued a patch with ID: //p'); patch+=("$(secs "$id")")
  id=$("$bin" build --no-logs -t "app:$k-rebuilt" "$work/ctx" | sed -n 's/^Queued a build with ID: //p'); rebuild+=("$(secs "$id")")
done
python3 - "${patch[*]}" "${rebuild[*]}" <<'PY'
import statistics, sys
p = [float(x) for x in sys.argv[1].split()]; r = [float(x) for x in sys.argv[2].split()]
print(f"patch   (crtask patch, one layer over the original ones): runs {p} s, median {statistics.median(p):.1f} s")
print(f"rebuild (crtask build of the Dockerfile, full):           runs {r} s, median {statistics.median(r):.1f} s")
PY
