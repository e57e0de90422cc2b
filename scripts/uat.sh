#!/usr/bin/env bash
# User acceptance run of the legacy migration (the seed's 4.4), on this machine, in a scratch directory:
# generates legacy Parquet files in several layouts (pyarrow), migrates them, migrates them again, reconciles
# the files with the table, and prints each check with its result. Exit code 0 only when every check passes.
# Usage: scripts/uat.sh   (SENTIMENT_LAKE_BIN picks the binary; default: the debug build, built if needed)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="$(scripts/setup-python.sh)"
if [ -z "${SENTIMENT_LAKE_BIN:-}" ]; then
  cargo build --locked -q >&2 || exit 1
  SENTIMENT_LAKE_BIN=target/debug/sentiment-lake
fi
bin="$SENTIMENT_LAKE_BIN"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export RUST_LOG=warn
results=()
check() { # name, command...
  local name="$1"; shift
  if "$@" >"$work/out" 2>"$work/err"; then results+=("PASS|$name"); else results+=("FAIL|$name"); sed 's/^/    /' "$work/err" | tail -5 >&2; fi
}
field() { "$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$work/$1" "$2"; }

"$python" tests/interop/write_legacy.py "$work/legacy" > "$work/expected.json"
wh="$work/warehouse"

"$bin" --warehouse "$wh" migrate "$work/legacy" >"$work/run1.json" 2>/dev/null
check "corrupt and truncated files are refused, the run exits non-zero" test "$(field run1.json 'len(d["failed"])')" = 2
check "every readable row is migrated or dead-lettered" test "$(field run1.json 'sum(f["staged"] + f["dead_lettered"] for f in d["files"])')" = "$(field expected.json 'd["rows"] + 1')"
check "rows land in the table once" test "$(field run1.json 'd["committed"][0]["rows_committed"]')" = "$(field expected.json 'd["rows"]')"
check "the row without text is dead-lettered with its reason" test "$(field run1.json 'd["committed"][1]["rows_committed"]')" = 1
"$bin" --warehouse "$wh" migrate "$work/legacy" >"$work/run2.json" 2>/dev/null
check "a second run commits nothing and reads nothing again" test "$(field run2.json 'sum(f["staged"] for f in d["files"]) + d["committed"][0]["rows_committed"]')" = 0
check "reconciliation of the migrated layouts agrees (TSLA, seed layout)" "$bin" --warehouse "$wh" reconcile "$work/legacy/TSLA.parquet" "$work/legacy/seed_layout.parquet"
check "reconciliation names the dead-lettered row as missing" bash -c "! '$bin' --warehouse '$wh' reconcile '$work/legacy/old_writer.parquet' >/dev/null 2>&1"
check "doctor finds the lake healthy" "$bin" --warehouse "$wh" doctor

printf '\n%-6s %s\n' result check
failed=0
for r in "${results[@]}"; do
  printf '%-6s %s\n' "${r%%|*}" "${r#*|}"
  [ "${r%%|*}" = PASS ] || failed=1
done
exit $failed
