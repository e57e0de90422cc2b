#!/usr/bin/env bash
# Regenerate the third-party files in data/ (everything except the project's
# own finance_lexicon.tsv and eval/) from pinned PyPI packages:
#   data/pattern_en_sentiment.tsv  <- textblob 0.20.1   textblob/en/en-sentiment.xml (PDDL)
#   data/empath_emotions.tsv       <- empath 0.89       empath/data/categories.tsv (MIT)
#   data/tickers.tsv               <- pytickersymbols 1.17.10 indices_data.py (MIT)
#   data/profanity_model.tsv       <- alt-profanity-check 1.9.1 model/vectorizer.joblib (MIT)
# data/vader/ is copied from the vader-parity 0.1.0 crate instead (see data/PROVENANCE.md).
#
# Usage: scripts/extract-resources.sh [SCRATCH_DIR]   (default: .scratch/extract)
# Needs python3 (>= 3.11, for scikit-learn 1.9.1), pip, venv. Non-interactive; the
# outputs are byte-identical on re-runs and must match the sha256 in data/PROVENANCE.md.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "${1:-$here/.scratch/extract}/pypi"
scratch="$(cd "${1:-$here/.scratch/extract}" && pwd)"
cd "$scratch/pypi"

pip download --quiet --no-deps --no-input -d . \
    textblob==0.20.1 empath==0.89 pytickersymbols==1.17.10 alt-profanity-check==1.9.1 </dev/null

sha256sum -c - <<'SUMS'
f957699169a3e7b9a03a504883111b7b6973679496b9af959db2f74ee2449977  textblob-0.20.1-py3-none-any.whl
91283d9b0233e0cb32c765b9f6274228d20dba9758fae1875e0fb83e4871c40b  empath-0.89.tar.gz
126ba59039f62fbde99d02b49eb180f0eb7987120aa8daaa25fe4b1c1651eb57  pytickersymbols-1.17.10-py3-none-any.whl
cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3  alt_profanity_check-1.9.1-py3-none-any.whl
SUMS

python3 -m zipfile -e textblob-0.20.1-py3-none-any.whl x_textblob
python3 -m zipfile -e pytickersymbols-1.17.10-py3-none-any.whl x_pytickersymbols
python3 -m zipfile -e alt_profanity_check-1.9.1-py3-none-any.whl x_alt_profanity_check
tar -xzf empath-0.89.tar.gz

# The profanity model is a joblib pickle: load it with the versions the package pins.
if [ ! -x "$scratch/venv/bin/python" ]; then
    python3 -m venv "$scratch/venv"
fi
"$scratch/venv/bin/pip" install --quiet --no-input scikit-learn==1.9.1 joblib==1.6.0 </dev/null

"$scratch/venv/bin/python" "$here/scripts/extract-resources.py" "$scratch/pypi" "$here/data"
cd "$here/data" && sha256sum pattern_en_sentiment.tsv empath_emotions.tsv tickers.tsv profanity_model.tsv
