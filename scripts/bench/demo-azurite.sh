#!/usr/bin/env bash
# `demo` (the main job: generated events through the Event Hubs pipeline, one commit, a read back) with the
# warehouse on blob storage (Azurite, in memory, on a free loopback port) beside the same run on local disk,
# both with the machine's PostgreSQL as the catalog, then local disk with the default SQLite catalog.
# Usage: scripts/bench/demo-azurite.sh [EVENTS]   (SENTIMENT_LAKE_BIN picks the binary; default: release build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
events="${1:-20000}"
python="$(scripts/setup-python.sh)"
azurite="$(scripts/setup-azurite.sh)"
if [ -z "${SENTIMENT_LAKE_BIN:-}" ]; then
  cargo build --release --locked >&2
  SENTIMENT_LAKE_BIN=target/release/sentiment-lake
fi
bin="$SENTIMENT_LAKE_BIN"
port="$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
(cd "$work" && exec "$azurite" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence --silent --skipApiVersionCheck --disableTelemetry --loose) &
azurite_pid=$!
trap 'kill $azurite_pid 2>/dev/null; rm -rf "$work"' EXIT
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
for _ in $(seq 100); do "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.1; done
"$python" -c "from azure.storage.blob import BlobServiceClient as C; import os; C.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING']).create_container('lake')"

catalog() {
  local schema="bench_$(date +%s%N)"
  psql -q "postgres://postgres@127.0.0.1:5432/test" -c "CREATE SCHEMA $schema" >&2
  echo "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D$schema"
}
run() {
  local label="$1"; shift
  local started ended
  started="$(date +%s.%N)"
  "$bin" "$@" demo --events "$events" | sed "s/^/  /"
  ended="$(date +%s.%N)"
  "$python" -c "print(f'$label: {$ended - $started:.2f} s wall\n')"
}
echo "demo --events $events, binary $bin"
run "local disk, PostgreSQL catalog" --warehouse "$work/local-pg" --catalog-uri "$(catalog)"
run "Azurite blob storage, PostgreSQL catalog" --warehouse "abfss://lake@devstoreaccount1.dfs.core.windows.net/warehouse" --catalog-uri "$(catalog)"
run "local disk, SQLite catalog (the fresh-machine default)" --warehouse "$work/local-sqlite"
