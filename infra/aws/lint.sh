#!/usr/bin/env bash
# Lints the AWS deployment: template.yaml with cfn-lint and checkov (no
# findings allowed; checkov skips are documented in each resource's Metadata),
# and checks that the buildspec inlined in template.yaml is infra/aws/buildspec.yml.
# Installs the pinned linters from PyPI when they are missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

CFN_LINT_VERSION=1.51.0
CHECKOV_VERSION=3.3.30

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || { echo "aws lint: python3 is required" >&2; exit 1; }

need=()
cfn-lint --version 2>/dev/null | grep -qx "cfn-lint $CFN_LINT_VERSION" || need+=("cfn-lint==$CFN_LINT_VERSION")
[ "$(checkov --version 2>/dev/null || true)" = "$CHECKOV_VERSION" ] || need+=("checkov==$CHECKOV_VERSION")
if [ ${#need[@]} -gt 0 ]; then
  echo "aws lint: installing ${need[*]}" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "${need[@]}"
fi

echo "aws lint: buildspec"
"$python" infra/aws/check-buildspec.py

echo "aws lint: cfn-lint"
cfn-lint template.yaml

echo "aws lint: checkov"
# --skip-download: no calls to the vendor's platform (offline and deterministic).
checkov -f template.yaml --quiet --compact --skip-download --framework cloudformation

echo "aws lint: ok"
