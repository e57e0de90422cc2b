#!/usr/bin/env bash
# Builds the handler and assembles the Azure Functions app package (zip) in the layout the host expects:
#   host.json, <FunctionName>/function.json, and the `sentiment-lake` executable at the root.
# Usage: infra/package.sh [--target TRIPLE] [--features LIST] [--out FILE]
# Azure's Linux workers run glibc; a musl target (x86_64-unknown-linux-musl) gives a static binary if that
# rustup target is installed. The zip keeps the executable bit (the host starts the file directly).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="" features="azure" out="target/functionapp.zip"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --features) features="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
args=(build --release --locked --features "$features")
[ -n "$target" ] && args+=(--target "$target")
cargo "${args[@]}"
binary="target/${target:+$target/}release/sentiment-lake"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp host.json "$stage/"
for dir in functions/*/; do
  name="$(basename "$dir")"
  mkdir -p "$stage/$name" && cp "$dir/function.json" "$stage/$name/"
done
install -m 0755 "$binary" "$stage/sentiment-lake"
python3 - "$stage" "$out" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(stage):
        for f in files:
            path = os.path.join(root, f)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, stage))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
PY
echo "wrote $out"
