#!/usr/bin/env bash
# Checks terraform/ offline with tools from PyPI: python-hcl2 parses every file (syntax), checkov scans the
# configuration (--skip-download: no calls to Prisma Cloud, so no severities; every failed check fails the
# run). A finding may be skipped only inline, `#checkov:skip=<ID>:<justification>`, and every skip must say why.
# Then the deployment pre-flight (scripts/preflight.py): Terraform, host.json and every function.json against
# each other and against what makes the app start in Azure, and its self-test (each rule fails on a copy
# broken the way it guards against; the configuration before issue #29 fails as reported).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$PWD/.cache/checkov-venv"
if [ ! -x "$venv/bin/checkov" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==3.3.30" "python-hcl2==8.1.4" >&2
fi
"$venv/bin/python" - terraform/*.tf terraform/*.tfvars <<'PY'
import sys, hcl2
for path in sys.argv[1:]:
    with open(path) as f:
        hcl2.load(f)
print(f"hcl2: {len(sys.argv) - 1} files parse")
PY
if grep -nE '#checkov:skip=[A-Z0-9_]+(:\s*)?$' terraform/*.tf; then
  echo "every checkov skip needs a justification after the check id" >&2
  exit 1
fi
"$venv/bin/checkov" -d terraform --framework terraform --quiet --compact --skip-download
"$venv/bin/python" scripts/preflight.py
"$venv/bin/python" scripts/preflight.py --self-test
