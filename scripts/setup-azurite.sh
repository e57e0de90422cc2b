#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator, from npm) into .cache/azurite and prints the path of its blob
# server. 3.35.0 is the last release that runs on node 20; the Azure tests start their own blob server on a
# free loopback port and stop it. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=3.35.0
PREFIX="$PWD/.cache/azurite"
BIN="$PREFIX/node_modules/.bin/azurite-blob"
if [ ! -x "$BIN" ] || ! grep -q "\"version\": \"$VERSION\"" "$PREFIX/node_modules/azurite/package.json" 2>/dev/null; then
  command -v npm >/dev/null 2>&1 || { echo "npm is needed for Azurite (Debian: apt-get install npm)" >&2; exit 1; }
  echo "installing azurite@$VERSION (npm)" >&2
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "azurite@$VERSION" >&2
fi
echo "$BIN"
