#!/usr/bin/env bash
# Builds the handler and assembles the Azure Functions app package (zip) in the layout the host expects:
#   host.json, <FunctionName>/function.json, and the `sentiment-lake` executable (mode 0755) at the root.
#
# Usage: infra/package.sh [--binary PATH] [--glibc-floor X.Y] [--host-build] [--out FILE]
#
# The Functions Linux workers run a Debian-based image; a binary linked against a newer glibc than the
# image's does not start. A static musl build would avoid that, but rustup targets cannot be downloaded
# here, so the default build links against an old glibc with cargo-zigbuild (`x86_64-unknown-linux-gnu.2.28`,
# zig from PyPI, cargo-zigbuild from crates.io, both installed on first use under .cache/). Whatever the
# build, the script reads the highest GLIBC_x.y symbol version the binary needs and refuses to package it
# above --glibc-floor (default 2.31, Debian 11, the oldest base of the Functions v4 images).
#   --host-build   build with the machine's own toolchain and glibc (check the floor it reports)
#   --binary PATH  package an already-built binary (no build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
binary="" floor="2.31" out="target/functionapp.zip" host_build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --glibc-floor) floor="$2"; shift 2 ;;
    --host-build) host_build=1; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  if [ -n "$host_build" ]; then
    cargo build --release --locked
    binary="target/release/sentiment-lake"
  else
    tools="$PWD/.cache/zigbuild"
    if [ ! -x "$tools/venv/bin/python" ]; then
      python3 -m venv "$tools/venv"
      "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "ziglang==0.14.1"
    fi
    if [ ! -x "$tools/bin/cargo-zigbuild" ]; then
      cargo install --locked --root "$tools" cargo-zigbuild@0.24.1
    fi
    # cargo-zigbuild finds zig through `python -m ziglang` of the first python on PATH.
    PATH="$tools/venv/bin:$tools/bin:$PATH" cargo zigbuild --release --locked --target x86_64-unknown-linux-gnu.2.28
    binary="target/x86_64-unknown-linux-gnu/release/sentiment-lake"
  fi
fi
[ -x "$binary" ] || { echo "no executable at $binary" >&2; exit 1; }

# The glibc floor: the highest versioned glibc symbol the dynamic binary references.
needed="$(objdump -T "$binary" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n | tail -1 || true)"
if [ -z "$needed" ]; then
  echo "glibc floor: none (static binary)"
else
  echo "glibc floor: $needed (worker images must have glibc >= $needed)"
  highest="$(printf '%s\n%s\n' "$needed" "$floor" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)"
  if [ "$highest" != "$floor" ]; then
    echo "refusing to package: the binary needs glibc $needed, above the floor $floor (build without --host-build, or raise --glibc-floor if your workers have it)" >&2
    exit 1
  fi
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp host.json "$stage/"
for dir in functions/*/; do
  name="$(basename "$dir")"
  mkdir -p "$stage/$name" && cp "$dir/function.json" "$stage/$name/"
done
install -m 0755 "$binary" "$stage/sentiment-lake"
mkdir -p "$(dirname "$out")"
python3 - "$stage" "$out" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(stage):
        for f in sorted(files):
            path = os.path.join(root, f)
            # from_file keeps the mode bits (the host starts the executable directly).
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, stage))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
PY
echo "wrote $out"
