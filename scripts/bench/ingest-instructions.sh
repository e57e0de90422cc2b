#!/usr/bin/env bash
# Instructions one round of staging or of the commit executes in the ingest benchmark (benches/ingest.rs),
# counted by callgrind: repeatable to the instruction whatever else the machine is doing, unlike its timings.
# A run of 2 profile rounds minus a run of 1 leaves one round, without generating the events and staging the
# warehouse that both runs share. Warehouses go under /dev/shm (the file system's kernel work is not counted
# by callgrind anyway). What callgrind cannot see is the cost of an instruction: a CPUID that a hypervisor
# traps counts as one (docs/benchmarks.md), so profile time with `perf record -e cpu-clock` too.
# Usage: scripts/bench/ingest-instructions.sh stage|commit   (INGEST_BENCH_BIN picks the bench binary;
# default: built here)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
part="${1:?usage: $0 stage|commit}"
command -v valgrind >/dev/null || { echo "valgrind is needed (Debian package valgrind)" >&2; exit 1; }
bin="${INGEST_BENCH_BIN:-}"
if [ -z "$bin" ]; then
  bin="$(cargo bench --bench ingest --no-run --locked --message-format=json 2>/dev/null \
    | grep '"kind":\["bench"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)"
fi
work="$(mktemp -d /dev/shm/ingest-instructions.XXXXXX)"
trap 'rm -rf "$work"' EXIT
total() {
  TMPDIR="$work" INGEST_BENCH_PROFILE="$part" INGEST_BENCH_PROFILE_ROUNDS="$1" \
    valgrind --tool=callgrind --callgrind-out-file="$work/rounds-$1.out" "$bin" >/dev/null 2>"$work/rounds-$1.log"
  sed -n 's/^summary: \([0-9]*\).*/\1/p' "$work/rounds-$1.out"
}
one=$(total 1)
two=$(total 2)
echo "$part: $((two - one)) instructions per round (20,000 events)"
