#!/usr/bin/env bash
# Migration throughput and memory (issue #15): legacy Parquet files in the old writer's layout (generated
# with pyarrow, scripts/bench/legacy_generate.py) migrated by `sentiment-lake migrate` (read, map, enrich the
# missing analysis fields, validate, stage, commit, retire, verify) and, in the same run, by a pyarrow +
# PyIceberg + vaderSentiment script (scripts/bench/pyiceberg_migrate.py) into a table with the same schema
# and spec. Then the peak memory of migrating one ~1 GB legacy file. Rows/s per core = rows / CPU-seconds.
# Usage: scripts/bench/migrate.sh [ROWS] [BIG_FILE_MB]   (defaults 100000 and 1024; SENTIMENT_LAKE_BIN picks
# the binary, default the release build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rows="${1:-100000}"
big_mb="${2:-1024}"
python="$(scripts/setup-python.sh)"
"$python" -m pip install --quiet --no-input "vaderSentiment==3.3.2" </dev/null
if [ -z "${SENTIMENT_LAKE_BIN:-}" ]; then
  cargo build --release --locked >&2
  SENTIMENT_LAKE_BIN=target/release/sentiment-lake
fi
bin="$SENTIMENT_LAKE_BIN"
work="${BENCH_WORK:-$(mktemp -d)}"
trap '[ -n "${BENCH_WORK:-}" ] || rm -rf "$work"' EXIT
export RUST_LOG=warn

timed() { # label, command...: prints "label wall_s cpu_s peak_kib" to stderr, the command's stdout to stdout
  local label="$1"; shift
  /usr/bin/time -f "$label %e %U %S %M" -o "$work/time.$label" "$@"
  read -r _ wall user sys peak <"$work/time.$label"
  echo "$label wall_s=$wall cpu_s=$(echo "$user + $sys" | bc) peak_mib=$((peak / 1024))" >&2
}
json() { "$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {'d': d}))" "$@"; }

echo "generating $rows rows in 4 files" >&2
"$python" scripts/bench/legacy_generate.py "$work/legacy" "$rows" 4 200 >/dev/null
du -sh "$work/legacy" >&2

timed rust "$bin" --warehouse "$work/rust" migrate --workers 2 "$work/legacy" >"$work/rust.json" 2>"$work/rust.err"
echo "  verified: $(json "$work/rust.json" 'd["verification"]["verified"]'), committed rows: $(json "$work/rust.json" 'd["committed"][0]["rows_committed"]')" >&2
timed rust-no-verify "$bin" --warehouse "$work/rust-nv" migrate --workers 2 --no-verify "$work/legacy" >/dev/null 2>&1

"$bin" --warehouse "$work/peer" commit >/dev/null 2>&1 # creates the tables with the same schema and spec
timed peer "$python" scripts/bench/pyiceberg_migrate.py "$work/peer" sentiment_lake sentiment.sentiment_records "$work"/legacy/*.parquet >"$work/peer.json"
echo "  peer: $(cat "$work/peer.json")" >&2

echo "generating one ~${big_mb} MB file" >&2
bytes_per_row=$(( $(du -sb "$work/legacy" | cut -f1) / rows ))
big_rows=$(( big_mb * 1024 * 1024 / bytes_per_row ))
"$python" scripts/bench/legacy_generate.py "$work/big" "$big_rows" 1 200 100000 >/dev/null
ls -l "$work/big" >&2
timed big "$bin" --warehouse "$work/rust-big" migrate --workers 1 --no-verify "$work/big" >"$work/big.json" 2>/dev/null
echo "  big: $big_rows rows, committed $(json "$work/big.json" 'd["committed"][0]["rows_committed"]')" >&2
timed big-reconcile "$bin" --warehouse "$work/rust-big" reconcile "$work/big" >/dev/null 2>&1 || true

"$python" - "$work" "$rows" "$big_rows" <<'PY'
import json, sys
work, rows, big_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def t(label):
    _, wall, user, sys_, peak = open(f"{work}/time.{label}").read().split()
    return float(wall), float(user) + float(sys_), int(peak) * 1024
out = {}
for label, n in [("rust", rows), ("rust-no-verify", rows), ("peer", rows), ("big", big_rows), ("big-reconcile", big_rows)]:
    wall, cpu, peak = t(label)
    out[label] = {"rows": n, "wall_s": wall, "cpu_s": cpu, "rows_per_cpu_s": round(n / cpu), "peak_rss_mib": peak >> 20}
out["ratio_per_core_verified"] = round(out["rust"]["rows_per_cpu_s"] / out["peer"]["rows_per_cpu_s"], 1)
out["ratio_per_core_no_verify"] = round(out["rust-no-verify"]["rows_per_cpu_s"] / out["peer"]["rows_per_cpu_s"], 1)
print(json.dumps(out, indent=1))
PY
