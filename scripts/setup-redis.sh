#!/usr/bin/env bash
# Makes sure Debian's redis-server binary (and openssl, which makes the TLS test's certificate) are installed:
# the query tests start their own servers on free loopback ports (they never use a Redis that may already run
# on 6379). Idempotent.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" redis-server openssl
