#!/usr/bin/env bash
# What the dashboard's browser test needs: Debian's chromium, and playwright-core from npm (a driver only: it
# downloads no browser) in .cache/browser. Idempotent; prints the directory holding node_modules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v chromium >/dev/null 2>&1 || scripts/apt-install.sh chromium
dir="$PWD/.cache/browser"
if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  mkdir -p "$dir"
  echo "installing playwright-core 1.65.1 (npm)" >&2
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent playwright-core@1.65.1 >&2)
fi
echo "$dir"
