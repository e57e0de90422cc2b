#!/usr/bin/env bash
# Fetch the VADER ICWSM-2014 human-rated corpora (Hutto & Gilbert) for the
# accuracy test tests/vader_ground_truth.rs. The texts come from Twitter, NYT,
# Rotten Tomatoes and Amazon, so they are fetched at test time and never
# committed: they ship only inside the vaderSentiment 3.3.2 sdist on PyPI.
#
# Usage: scripts/fetch-vader-ground-truth.sh DEST_DIR
# Then:  VADER_GROUND_TRUTH_DIR=DEST_DIR cargo test --release --test vader_ground_truth
#
# Idempotent (skips work when DEST_DIR already holds the verified files),
# non-interactive (safe with CI=true and no stdin). Needs pip, sha256sum, tar.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 DEST_DIR" >&2
    exit 2
fi
dest="$1"
sdist_sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
sdist_name="vaderSentiment-3.3.2.tar.gz"

if [ -s "$dest/tweets_GroundTruth.txt" ] && [ -s "$dest/nytEditorialSnippets_GroundTruth.txt" ]; then
    echo "VADER ground truth already present in $dest"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"${PYTHON:-python3}" -m pip download --quiet --no-deps --no-binary :all: --no-input -d "$work" "vaderSentiment==3.3.2" </dev/null
actual="$(sha256sum "$work/$sdist_name" | cut -d' ' -f1)"
if [ "$actual" != "$sdist_sha256" ]; then
    echo "sha256 mismatch for $sdist_name: got $actual, want $sdist_sha256" >&2
    exit 1
fi

tar -xzf "$work/$sdist_name" -C "$work" vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
mkdir -p "$work/gt"
tar -xzf "$work/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz" -C "$work/gt"
src="$(dirname "$(find "$work/gt" -name tweets_GroundTruth.txt | head -n1)")"
mkdir -p "$dest"
cp "$src"/*.txt "$dest"/
echo "VADER ground truth extracted to $dest:"
ls "$dest"
