#!/usr/bin/env bash
# Builds the serverless stack as `sam deploy` ships it: `sam validate --lint`
# on template.yaml, then `sam build` (the four functions as arm64
# `bootstrap` binaries through Cargo Lambda and Zig, and the executor layer's
# x86_64 `crtask` through infra/aws/executor-layer/Makefile). The artifacts
# land in .aws-sam/build, where `sam deploy` looks for them.
#
# Installs what is missing, without asking:
# - the AWS SAM CLI, Cargo Lambda and Zig (PyPI `aws-sam-cli`, `cargo-lambda`,
#   `ziglang`, pinned below) in their own virtual environment under the cache
#   directory, so they cannot disturb other Python tools;
# - a `zig` command on PATH for that environment's Zig (Cargo Lambda looks
#   for `zig` and otherwise asks interactively whether to install it);
# - the Rust target aarch64-unknown-linux-gnu (rustup);
# - `make` (apt), which the layer's `BuildMethod: makefile` runs, and
#   `qemu-user-static` with `libc6-arm64-cross` (apt), with which
#   tests/tests/sam_build.rs starts the arm64 bootstraps here, and
#   `python3-venv` when Python cannot make a virtual environment.
#
# Kept outside the clone so repeated runs are incremental: the Cargo build
# (CARGO_TARGET_DIR, by default the same directory as .ci/run's test build)
# and SAM's cache of unchanged artifacts.
#   infra/aws/build.sh [extra `sam build` arguments]
# Environment: CRTASK_CACHE_DIR (default ~/.cache/crtask), CARGO_TARGET_DIR,
# CRTASK_SAM_BUILD_DIR (default .aws-sam/build), PYTHON (default python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
TARGET=aarch64-unknown-linux-gnu

cache=${CRTASK_CACHE_DIR:-$HOME/.cache/crtask}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
build_dir=${CRTASK_SAM_BUILD_DIR:-$root/.aws-sam/build}
tools=$cache/sam-tools
python=${PYTHON:-python3}
mkdir -p "$cache" "$CARGO_TARGET_DIR"

say() { echo "sam build: $*" >&2; }

# --- apt packages: make (the executor layer's build method) and what the
# arm64 smoke test (tests/tests/sam_build.rs) runs the bootstraps with
need=()
command -v make >/dev/null 2>&1 || need+=(make)
command -v qemu-aarch64 >/dev/null 2>&1 || command -v qemu-aarch64-static >/dev/null 2>&1 \
  || need+=(qemu-user-static)
[ -d /usr/aarch64-linux-gnu/lib ] || need+=(libc6-arm64-cross)
# The PyPI tools' virtual environment (Debian splits venv and ensurepip out
# of python3).
"${PYTHON:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- SAM CLI, Cargo Lambda, Zig (their own virtual environment)
installed() {
  [ -x "$tools/bin/sam" ] && [ -x "$tools/bin/cargo-lambda" ] && [ -x "$tools/bin/zig" ] || return 1
  "$tools/bin/sam" --version 2>/dev/null | grep -qx "SAM CLI, version $SAM_CLI_VERSION" || return 1
  "$tools/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "^cargo-lambda $CARGO_LAMBDA_VERSION " || return 1
  [ "$("$tools/bin/zig" version 2>/dev/null)" = "$ZIGLANG_VERSION" ]
}
if ! installed; then
  command -v "$python" >/dev/null 2>&1 || { say "python3 is required (PYTHON=...)"; exit 1; }
  say "installing aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION, ziglang $ZIGLANG_VERSION in $tools"
  [ -x "$tools/bin/python" ] || "$python" -m venv "$tools" \
    || { say "cannot create a virtual environment (on Debian: apt-get install python3-venv)"; exit 1; }
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
  # The ziglang wheel ships the compiler inside the package; Cargo Lambda
  # runs `zig` from PATH.
  zig=$("$tools/bin/python" -c 'import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
  ln -sfn "$zig" "$tools/bin/zig"
  installed || { say "the tools in $tools do not answer with the pinned versions"; exit 1; }
fi
export PATH="$tools/bin:$PATH"
# Cargo Lambda's Zig lookup, spelled out (no prompt even if PATH changes).
export CARGO_ZIGBUILD_ZIG_PATH="$tools/bin/zig"
# No telemetry, no prompts.
export SAM_CLI_TELEMETRY=0
export AWS_REGION="${AWS_REGION:-us-east-1}"
# The functions' release settings (the layer's Makefile sets its own).
# shellcheck source=infra/aws/function-profile.sh
. "$root/infra/aws/function-profile.sh"

# --- the Rust target of the functions
if ! rustup target list --installed | grep -qx "$TARGET"; then
  say "adding the Rust target $TARGET"
  rustup target add "$TARGET"
fi

say "$(sam --version), $(cargo lambda --version), zig $(zig version), $(rustc --version)"
say "validate --lint"
sam validate --lint --template template.yaml

say "build (Cargo target directory $CARGO_TARGET_DIR)"
start=$(date +%s)
# --cached: SAM reuses an artifact whose source is unchanged; Cargo's own
# target directory makes a changed one incremental.
sam build --template template.yaml --build-dir "$build_dir" \
  --cached --cache-dir "$cache/sam-cache" "$@"
say "built in $(( $(date +%s) - start )) s: $build_dir"
for f in GitWebhookFunction BuildStatusFunction RegistryEventFunction ScheduleFunction; do
  [ -f "$build_dir/$f/bootstrap" ] || { say "missing $build_dir/$f/bootstrap"; exit 1; }
  say "$(printf '%-22s %7d KiB' "$f" $(( $(stat -c %s "$build_dir/$f/bootstrap") / 1024 )))"
done
[ -f "$build_dir/ExecutorLayer/bin/crtask" ] || { say "missing $build_dir/ExecutorLayer/bin/crtask"; exit 1; }
say "$(printf '%-22s %7d KiB' ExecutorLayer $(( $(stat -c %s "$build_dir/ExecutorLayer/bin/crtask") / 1024 )))"
