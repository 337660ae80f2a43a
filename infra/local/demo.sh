#!/usr/bin/env bash
# End-to-end demo on one machine: installs what is missing, starts a local
# registry and the crtask server, seeds a base image, runs a quick build of
# examples/hello, and checks that the registry serves the digest crtask recorded.
# The server's webhooks listen on LISTEN; its management API (what the CLI
# calls) on API_LISTEN, loopback, with a bearer token the demo generates.
#   REGISTRY=127.0.0.1:5000 LISTEN=127.0.0.1:7878 API_LISTEN=127.0.0.1:7879 KEEP=1 infra/local/demo.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
REGISTRY=${REGISTRY:-127.0.0.1:5000}
LISTEN=${LISTEN:-127.0.0.1:7878}
API_LISTEN=${API_LISTEN:-127.0.0.1:7879}
DATA=${DATA:-$root/.crtask-demo}
export CRTASK_SERVER="http://$API_LISTEN"

infra/local/setup.sh
echo "demo: building crtask"
cargo build --quiet -p crtask
bin="${CARGO_TARGET_DIR:-$root/target}/debug/crtask"

mkdir -p "$DATA"
# The API token: the server reads the file, the CLI the environment.
if [ ! -s "$DATA/api-token" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DATA/api-token")
fi
CRTASK_API_TOKEN=$(cat "$DATA/api-token")
export CRTASK_API_TOKEN
infra/local/registry.sh start "$REGISTRY" "$DATA/registry"
server_pid=""
cleanup() {
  if [ -z "${KEEP:-}" ]; then
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    infra/local/registry.sh stop "$DATA/registry" >/dev/null || true
  else
    echo "demo: KEEP is set; server (pid $server_pid) and registry left running"
  fi
}
trap cleanup EXIT

echo "demo: seeding $REGISTRY/base:1 from busybox"
base_digest=$(infra/local/seed-base.sh "$REGISTRY" base:1)
echo "demo: base:1 is $base_digest"

"$bin" serve --listen "$LISTEN" --api-listen "$API_LISTEN" --api-token-file "$DATA/api-token" \
  --data-dir "$DATA/server" --registry "$REGISTRY" \
  --insecure-registry "$REGISTRY" > "$DATA/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$CRTASK_SERVER/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$DATA/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "demo: webhooks at http://$LISTEN, management API at $CRTASK_SERVER (token in $DATA/api-token)"

echo "demo: \$ crtask build -t hello:{{.Run.ID}} -t hello:latest --build-arg BASE=$REGISTRY/base:1 --build-arg GREETING=hi examples/hello"
out=$("$bin" build -t 'hello:{{.Run.ID}}' -t hello:latest --build-arg "BASE=$REGISTRY/base:1" \
  --build-arg GREETING=hi examples/hello | tee /dev/stderr)
run_id=$(printf '%s\n' "$out" | sed -n 's/^Queued a build with ID: //p' | head -n1)

echo "demo: \$ crtask task show-run --run-id $run_id -o json"
run_json=$("$bin" task show-run --run-id "$run_id" -o json)
printf '%s\n' "$run_json"
recorded=$(printf '%s' "$run_json" | python3 -c 'import json,sys; r=json.load(sys.stdin); print([o["digest"] for o in r["outputImages"] if o["tag"]=="latest"][0])')
served=$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$REGISTRY/v2/hello/manifests/latest" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
echo "demo: crtask recorded hello:latest = $recorded"
echo "demo: registry serves hello:latest = $served"
if [ "$recorded" != "$served" ]; then
  echo "demo: FAILED: digests differ" >&2
  exit 1
fi
echo "demo: OK: the registry serves exactly the image crtask built (run $run_id)"
