#!/usr/bin/env bash
# Replication, restore and the drill (issue #35), with the release binary.
# 1. Live: `serve` replicating itself every 10 s while four partitions post 200 events/s, commits every 30 s
#    and maintenance every 5 minutes (scripts/bench/replicate_live.py): how long after each commit the replica
#    held it, and the recovery point over the run (p50/p99/worst); then the replica's rows against the events
#    acknowledged.
# 2. Bulk: a history of ROWS rows (30 commits of ROWS/30 generated events, 50 tickers x 4 sources, generated
#    and ingested through the CLI; the generator's one-day windows put them on the last two calendar days: the
#    files and bytes are what replication copies) replicated from scratch (MiB copied per CPU second), a round
#    with nothing new, a restore of the replica into an empty place, and the drill.
# Usage: scripts/bench/replicate.sh [MINUTES] [ROWS]   (defaults 10 and 10000000; SENTIMENT_LAKE_BIN picks the
# binary, default the release build; BENCH_WORK keeps the work directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
minutes="${1:-10}"
rows="${2:-10000000}"
python="$(scripts/setup-python.sh)"
if [ -z "${SENTIMENT_LAKE_BIN:-}" ]; then
  cargo build --release --locked >&2
  SENTIMENT_LAKE_BIN=target/release/sentiment-lake
fi
bin="$(realpath "$SENTIMENT_LAKE_BIN")"
work="${BENCH_WORK:-$(mktemp -d)}"
trap '[ -n "${BENCH_WORK:-}" ] || rm -rf "$work"' EXIT
export RUST_LOG=warn

timed() { # label, command...: "label wall_s cpu_s peak_mib" on stderr and in $work/time.label
  local label="$1"; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.$label" "$@"
  read -r wall user sys peak <"$work/time.$label"
  echo "$label wall_s=$wall cpu_s=$(echo "$user + $sys" | bc) peak_mib=$((peak / 1024))" >&2
}

if [ "$minutes" != "0" ]; then
  echo "live: $minutes min at 200 events/s" >&2
  mkdir -p "$work/live"
  "$python" scripts/bench/replicate_live.py "$bin" "$work/live" "$minutes" 200 30 10 300 | tee "$work/live.json"
fi

[ "$rows" != "0" ] || exit 0
echo "bulk: generating $rows rows in 30 commits" >&2
per_day=$((rows / 30))
for day in $(seq 0 29); do
  "$bin" generate --events "$per_day" --seed "$day" --days 1 --tickers 50 --out "$work/day.ndjson" >/dev/null
  "$bin" --warehouse "$work/history" ingest "$work/day.ndjson" >/dev/null 2>&1
done
rm -f "$work/day.ndjson"
du -sh "$work/history" >&2
timed replicate "$bin" --warehouse "$work/history" replicate --to "$work/replica" >"$work/replicate.json"
timed again "$bin" --warehouse "$work/history" replicate --to "$work/replica" >"$work/again.json"
timed restore "$bin" --warehouse "$work/restored" restore --from "$work/replica" >"$work/restore.json"
timed drill "$bin" --warehouse "$work/history" drill --replica "$work/replica" --scratch "$work/drill" >"$work/drill.txt"
cat "$work/drill.txt" >&2
"$python" - "$work" "$rows" <<'PY'
import json, sys
work, rows = sys.argv[1], int(sys.argv[2])
def t(label):
    wall, user, sys_, peak = open(f"{work}/time.{label}").read().split()
    return {"wall_s": float(wall), "cpu_s": round(float(user) + float(sys_), 2), "peak_rss_mib": int(peak) >> 10}
report = json.loads(open(f"{work}/replicate.json").read().strip().splitlines()[-1])
copied = sum(t["bytes_copied"] for t in report["tables"])
files = sum(t["files_copied"] for t in report["tables"])
again = json.loads(open(f"{work}/again.json").read().strip().splitlines()[-1])
restored = json.load(open(f"{work}/restore.json"))
out = {"rows": rows, "files_copied": files, "mib_copied": round(copied / 2**20, 1)}
for label in ("replicate", "again", "restore", "drill"):
    out[label] = t(label)
out["replicate"]["mib_per_cpu_s"] = round(copied / 2**20 / out["replicate"]["cpu_s"], 1)
out["replicate"]["mib_per_wall_s"] = round(copied / 2**20 / out["replicate"]["wall_s"], 1)
out["again"]["files_copied"] = sum(t["files_copied"] for t in again["tables"])
out["restore"]["snapshot"] = restored["snapshot"]
out["drill"]["passed"] = "FAIL" not in open(f"{work}/drill.txt").read()
print(json.dumps(out, indent=1))
PY
