#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests use, checks
# formatting and lints, builds the crtask binary the end-to-end tests drive,
# and runs every test (unit, integration, end to end with buildah and the
# distribution registry; each test starts the services it needs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The AWS platform's tests run against moto_server (DynamoDB, S3, CodeBuild).
command -v moto_server >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'

infra/local/setup.sh
if [ -f tests/js/package.json ]; then
  command -v npm >/dev/null 2>&1 || { echo "test: npm is required for the webhook fixtures" >&2; exit 1; }
  npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
fi
infra/aws/lint.sh
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --quiet -p crtask

# Tests that skip themselves (ACR's samples absent, see tests/src/acr_samples.rs)
# append their names to this run's own file; listed after the run.
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
mkdir -p "$target/tmp"
export CRTASK_SKIP_LOG="$target/tmp/crtask-skipped-tests.$$.log"
rm -f "$CRTASK_SKIP_LOG"
status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?
if [ -s "$CRTASK_SKIP_LOG" ]; then
  echo "test: skipped (see each test's stderr for why):"
  sort -u "$CRTASK_SKIP_LOG" | sed 's/^/  /'
fi
rm -f "$CRTASK_SKIP_LOG"
exit "$status"
