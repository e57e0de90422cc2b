#!/usr/bin/env bash
# Makes sure Debian's protobuf-compiler is installed: the test-only Flight SQL server that stands in for Dremio
# (datafusion-flight-sql-server, through datafusion-substrait) compiles .proto files when it builds. Idempotent.
set -euo pipefail
command -v protoc >/dev/null 2>&1 || "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" protobuf-compiler
