#!/usr/bin/env bash
# Installs the independent readers used by the interop tests and benchmarks (PyIceberg, DuckDB with its
# iceberg extension from PyPI) into a project-local virtualenv. Idempotent; prints the interpreter path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SENTIMENT_LAKE_VENV:-$root/.venv}"
stamp="$venv/.requirements.sha256"
req="$root/scripts/requirements-interop.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
