#!/usr/bin/env bash
# Installs Debian packages non-interactively (through sudo when not root), refreshing the package index once
# if the first attempt fails (a fresh machine's index may be stale or empty). Used by the setup scripts.
set -euo pipefail
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing $* (Debian packages)" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@" >&2 \
  || { $SUDO apt-get update >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$@" >&2; }
