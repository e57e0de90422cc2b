#!/usr/bin/env bash
# Makes sure Debian's protobuf-compiler is installed with the well-known types (libprotobuf-dev, only a
# recommendation of protobuf-compiler, which apt-install.sh does not follow): the test-only Flight SQL server
# that stands in for Dremio (datafusion-flight-sql-server, through datafusion-substrait) compiles .proto files
# importing google/protobuf/empty.proto when it builds. Idempotent.
set -euo pipefail
if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/empty.proto ]; then
  "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" protobuf-compiler libprotobuf-dev
fi
