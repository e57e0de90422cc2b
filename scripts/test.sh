#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need (PyIceberg and DuckDB in a project
# virtualenv, the VADER human-rated corpus for the enrichment accuracy test, all from PyPI; Debian's
# redis-server for the cache tests), then runs every Rust test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SENTIMENT_LAKE_PYTHON="$(scripts/setup-python.sh)"
scripts/setup-redis.sh
export VADER_GROUND_TRUTH_DIR="$PWD/.cache/vader-ground-truth"
crates/enrich/scripts/fetch-vader-ground-truth.sh "$VADER_GROUND_TRUTH_DIR" >&2
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test --workspace --locked -j "$CARGO_BUILD_JOBS" "$@"
