#!/usr/bin/env bash
# Refreshes the vendored browser libraries under assets/vendor from the npm registry, at the pinned versions
# below, with their licences. The files are committed and embedded in the binary at build time, so neither a
# build nor a test needs npm; run this only to change a version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UPLOT=1.6.32          # MIT
SWAGGER_UI=5.35.0     # Apache-2.0
work="$PWD/.cache/vendor-npm"
mkdir -p "$work"
(cd "$work" && npm install --no-audit --no-fund --silent "uplot@$UPLOT" "swagger-ui-dist@$SWAGGER_UI" >&2)
cp "$work/node_modules/uplot/dist/uPlot.iife.min.js" "$work/node_modules/uplot/dist/uPlot.min.css" "$work/node_modules/uplot/LICENSE" assets/vendor/uplot/
cp "$work/node_modules/swagger-ui-dist/swagger-ui-bundle.js" "$work/node_modules/swagger-ui-dist/swagger-ui.css" \
   "$work/node_modules/swagger-ui-dist/LICENSE" "$work/node_modules/swagger-ui-dist/NOTICE" \
   "$work/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" assets/vendor/swagger-ui/
printf 'uplot %s (MIT)\nswagger-ui-dist %s (Apache-2.0)\n' "$UPLOT" "$SWAGGER_UI" > assets/vendor/VERSIONS
echo "vendored uplot $UPLOT and swagger-ui-dist $SWAGGER_UI into assets/vendor" >&2
