#!/usr/bin/env bash
# Installs lakana-server (an Iceberg REST catalog, from PyPI) and the PyIceberg that reads through it into
# a virtualenv of its own (its pins must not move the interop venv's), for tests/rest_catalog.rs.
# Idempotent; prints the venv's interpreter path (lakana-server is beside it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SENTIMENT_LAKE_LAKANA_VENV:-$root/.cache/lakana-venv}"
stamp="$venv/.requirements"
requirements=('lakana-server==0.20.0' 'pyiceberg[pyarrow,pyiceberg-core,sql-sqlite]==0.12.*')
want="${requirements[*]}"
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$venv/bin/lakana-server" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
