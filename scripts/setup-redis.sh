#!/usr/bin/env bash
# Makes sure Debian's redis-server binary (and openssl, which makes the TLS test's certificate) are installed:
# the query tests start their own servers on free loopback ports (they never use a Redis that may already run
# on 6379). Idempotent.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing redis-server (Debian package)" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends redis-server openssl >&2 \
  || { $SUDO apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends redis-server openssl >&2; }
