#!/usr/bin/env bash
# User acceptance run of the legacy migration (the seed's 4.4), on this machine, in a scratch directory:
# generates legacy Parquet files in several layouts (pyarrow), migrates them with the CLI (twice) and through
# the MigrateBlob function route (the real handler, the file on Azurite, the Event Grid event delivered twice), runs
# ingestion with dual-write, reconciles files and table, and prints each check with its result. Exit code 0
# only when every check passes.
# Usage: scripts/uat.sh   (SENTIMENT_LAKE_BIN picks the binary; default: the debug build, built if needed)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="$(scripts/setup-python.sh)"
azurite="$(scripts/setup-azurite.sh)"
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

"$bin" --warehouse "$wh" migrate --report "$work/reports" "$work/legacy" >"$work/run1.json" 2>/dev/null
check "corrupt and truncated files are refused, the run exits non-zero" test "$(field run1.json 'len(d["failed"])')" = 2
check "every readable row is migrated or dead-lettered" test "$(field run1.json 'sum(f["staged"] + f["dead_lettered"] for f in d["files"])')" = "$(field expected.json 'd["rows"] + 1')"
check "rows land in the table once" test "$(field run1.json 'd["committed"][0]["rows_committed"]')" = "$(field expected.json 'd["rows"]')"
check "the row without text is dead-lettered with its reason" test "$(field run1.json 'd["committed"][1]["rows_committed"]')" = 1
check "the run verifies: rows accounted for, ids once, score checksums per ticker/day agree" test "$(field run1.json 'd["verification"]["verified"]')" = True
check "migrated files are retired to the migration ledger, out of the watermarks" test "$(field run1.json 'len(d["retirement"]["retired"])')" = 3
check "a JSON report per file and for the run is written" test "$(ls "$work/reports"/*/files/*.json | wc -l)" = 3
"$bin" --warehouse "$wh" migrate "$work/legacy" >"$work/run2.json" 2>/dev/null
check "a second run commits nothing and reads nothing again" test "$(field run2.json 'sum(f["staged"] for f in d["files"]) + d["committed"][0]["rows_committed"]')" = 0
check "reconciliation of the migrated layouts agrees" "$bin" --warehouse "$wh" reconcile "$work/legacy/TSLA.parquet" "$work/legacy/seed_layout.parquet" "$work/legacy/old_writer.parquet"
check "reconciliation accounts for the dead-lettered row through the dead-letter table" test "$("$bin" --warehouse "$wh" reconcile "$work/legacy/old_writer.parquet" 2>/dev/null | "$python" -c 'import json,sys; print(json.load(sys.stdin)["report"]["dead_lettered"])')" = 1

# The function route: the real handler streams the uploaded file from Azurite by the event's URL.
"$python" scripts/uat/migrate_route.py "$azurite" "$bin" "$work/legacy/old_writer.parquet" "$work" >"$work/blob.json" 2>"$work/blob.err"
check "MigrateBlob migrates an uploaded file (299 rows, 1 dead letter)" test "$(field blob.json '[d["deliveries"][0]["reply"][k] for k in ("staged", "dead_lettered")]')" = "[299, 1]"
check "MigrateBlob delivered twice commits nothing twice" test "$(field blob.json 'd["deliveries"][1]["reply"]["staged"] + d["deliveries"][1]["reply"]["dead_lettered"]')" = 0
check "MigrateBlob retires the file: no watermark left behind" test "$(field blob.json 'd["health"]["tables"]["sentiment_records"]["sources"]')" = 0

# Dual-write: live ingestion also writes the legacy per-ticker layout, and the two stores reconcile.
"$bin" --warehouse "$wh" --dual-write "$work/dual" demo --events 2000 >/dev/null 2>&1
check "dual-write writes the legacy per-ticker layout" test "$(find "$work/dual" -name '*.parquet' | wc -l)" -gt 0
check "reconciliation of the dual-written store agrees with the table" "$bin" --warehouse "$wh" reconcile "$work/dual"
check "doctor finds the lake healthy" "$bin" --warehouse "$wh" doctor

printf '\n%-6s %s\n' result check
failed=0
for r in "${results[@]}"; do
  printf '%-6s %s\n' "${r%%|*}" "${r#*|}"
  [ "${r%%|*}" = PASS ] || failed=1
done
exit $failed
