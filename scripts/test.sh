#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need (PyIceberg, adlfs and DuckDB in a
# project virtualenv, the VADER human-rated corpus for the enrichment accuracy test, all from PyPI; Debian's
# redis-server for the cache tests, protobuf-compiler for the Dremio stand-in's build, chromium and
# playwright-core (npm) for the dashboard's browser test; lakana-server, an Iceberg REST catalog, in .cache/lakana-venv from PyPI;
# Azurite from npm for the Azure storage tests), then runs every Rust test.
# The PostgreSQL catalog tests use the machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SENTIMENT_LAKE_PYTHON="$(scripts/setup-python.sh)"
scripts/setup-redis.sh
# protoc for the Flight SQL server the Dremio tests run against (a build dependency of the tests).
scripts/setup-protoc.sh
# An Iceberg REST catalog (lakana-server, with its own PyIceberg) for tests/rest_catalog.rs.
lakana_python="$(scripts/setup-lakana.sh)"
export SENTIMENT_LAKE_LAKANA="$(dirname "$lakana_python")/lakana-server"
scripts/setup-azurite.sh >/dev/null
# Debian's chromium and playwright-core (npm) for the dashboard's browser test.
export SENTIMENT_LAKE_BROWSER="$(scripts/setup-browser.sh)"
export VADER_GROUND_TRUTH_DIR="$PWD/.cache/vader-ground-truth"
crates/enrich/scripts/fetch-vader-ground-truth.sh "$VADER_GROUND_TRUTH_DIR" >&2
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test --workspace --locked -j "$CARGO_BUILD_JOBS" "$@"
