#!/usr/bin/env bash
# Benchmark (issue #4): cold start and warm latency of each Lambda function
# binary against a Lambda Runtime API emulator, beside a hello-world
# `lambda_runtime` binary built with the same release profile
# (functions/build-status/examples/hello.rs). AWS calls go through a timing
# proxy to moto_server so they can be subtracted. The driver is
# functions/build-status/examples/lambda_bench/ (its header says what is
# measured). Prints a Markdown table.
#   infra/bench/lambda.sh [COLD_RUNS] [WARM_INVOCATIONS] [driver args...]
#   (defaults 20 and 500; e.g. `--event schedule=event.json`)
# A function whose package does not build yet is skipped with a note.
# When infra/aws/build.sh has run (`sam build`, .aws-sam/build or
# CRTASK_SAM_BUILD_DIR), the sizes of the arm64 bootstraps it built follow.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cold=${1:-20}
warm=${2:-500}
shift $(( $# < 2 ? $# : 2 ))
command -v moto_server >/dev/null 2>&1 || pip install -q 'moto[server]'
target="${CARGO_TARGET_DIR:-$root/target}"

# The functions' release settings, as infra/aws/build.sh builds them.
# shellcheck source=infra/aws/function-profile.sh
. "$root/infra/aws/function-profile.sh"
# The baseline and the driver (examples of build-status), then each function.
cargo build --quiet --release -p build-status --bins --examples
functions=()
for f in git-webhook build-status registry-event schedule; do
  if [ "$f" = build-status ] || cargo build --quiet --release -p "$f" --bins; then
    functions+=(--function "$f=$target/release/$f")
  else
    echo "note: $f does not build: skipped" >&2
  fi
done

work=$(mktemp -d)
port=$((30000 + RANDOM % 10000))
cleanup() {
  [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
moto_server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null && break
  sleep 0.1
done

echo "x86_64 release binaries ($(rustc --version)), $(nproc) cores"
# Other work on a shared machine disturbs millisecond timings: when allowed,
# the driver and the functions it starts run at a higher priority.
prio=()
[ "$(id -u)" = 0 ] && prio=(nice -n -10)
"${prio[@]}" "$target/release/examples/lambda_bench" --moto "http://127.0.0.1:$port" \
  --hello "$target/release/examples/hello" --cold "$cold" --warm "$warm" \
  "${functions[@]}" "$@"

sam_build=${CRTASK_SAM_BUILD_DIR:-$root/.aws-sam/build}
if [ -f "$sam_build/template.yaml" ]; then
  echo
  echo "arm64 bootstraps of \`sam build\` ($sam_build):"
  echo
  echo "| function | arm64 bootstrap |"
  echo "|---|---|"
  for f in GitWebhookFunction BuildStatusFunction RegistryEventFunction ScheduleFunction; do
    [ -f "$sam_build/$f/bootstrap" ] || continue
    echo "| $f | $(awk -v b="$(stat -c %s "$sam_build/$f/bootstrap")" 'BEGIN { printf "%.1f MiB", b / 1048576 }') |"
  done
else
  echo
  echo "note: no \`sam build\` output at $sam_build (infra/aws/build.sh): arm64 sizes not shown" >&2
fi
