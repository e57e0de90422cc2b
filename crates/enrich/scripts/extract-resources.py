#!/usr/bin/env python3
"""Regenerate the embedded third-party data files in data/ from registry packages.

Usage:
    scripts/extract-resources.sh            # downloads the packages, then runs this
    python3 scripts/extract-resources.py SCRATCH_DIR OUT_DIR

SCRATCH_DIR must hold the unpacked packages (see extract-resources.sh):
    x_textblob/            textblob 0.20.1 wheel      -> pattern_en_sentiment.tsv
    empath-0.89/           empath 0.89 sdist          -> empath_emotions.tsv
    x_pytickersymbols/     pytickersymbols 1.17.10    -> tickers.tsv
    x_alt_profanity_check/ alt-profanity-check 1.9.1  -> profanity_model.tsv
The profanity model needs scikit-learn==1.9.1 and joblib==1.6.0 importable
(the versions the package pins) because its files are joblib pickles.

The outputs are deterministic (sorted, fixed float formatting) so re-running
gives byte-identical files; data/PROVENANCE.md records their sha256.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

scratch, out = sys.argv[1], sys.argv[2]


def avg(xs):
    return sum(xs) / len(xs)


def pattern():
    # Mirrors textblob/_text.py Sentiment.load(): average senses per (form, pos),
    # then average those per-pos means into the pos=None entry TextBlob's
    # PatternAnalyzer uses (it does not POS-tag). A form is a modifier when any
    # sense is an adverb ("RB"), as in Sentiment.assessments().
    path = os.path.join(scratch, "x_textblob/textblob/en/en-sentiment.xml")
    words = {}
    for w in ET.parse(path).getroot().findall("word"):
        form = w.attrib.get("form")
        if not form:
            continue
        psi = (float(w.attrib.get("polarity", 0.0)), float(w.attrib.get("subjectivity", 0.0)),
               float(w.attrib.get("intensity", 1.0)))
        words.setdefault(form, {}).setdefault(w.attrib.get("pos"), []).append(psi)
    rows = []
    for form in sorted(words):
        per_pos = [[avg(c) for c in zip(*v)] for v in words[form].values()]
        p, s, i = [avg(c) for c in zip(*per_pos)]
        modifier = 1 if "RB" in words[form] else 0
        rows.append(f"{form}\t{p:.6f}\t{s:.6f}\t{i:.6f}\t{modifier}")
    write("pattern_en_sentiment.tsv",
          "# form\tpolarity\tsubjectivity\tintensity\tmodifier (see PROVENANCE.md)", rows)


EMPATH_KEEP = ["anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust",
               "nervousness", "optimism", "rage", "disappointment", "ridicule"]


def empath():
    path = os.path.join(scratch, "empath-0.89/empath/data/categories.tsv")
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] in EMPATH_KEEP:
                words = sorted(set(w.strip().lower() for w in parts[1:] if w.strip()))
                rows.append(parts[0] + "\t" + "\t".join(words))
    rows.sort()
    write("empath_emotions.tsv", "# category\twords... (Empath 0.89 categories.tsv subset)", rows)


US_INDICES = ["S&P 500", "S&P 100", "NASDAQ 100", "DOW JONES", "S&P 600"]


def tickers():
    sys.path.insert(0, os.path.join(scratch, "x_pytickersymbols"))
    from pytickersymbols.indices_data import INDICES  # noqa: E402
    names = {}
    for idx in US_INDICES:
        for c in INDICES[idx]["companies"]:
            sym = (c.get("symbol") or "").strip().upper()
            name = (c.get("name") or "").strip()
            if not re.fullmatch(r"[A-Z]{1,5}(\.[A-Z])?", sym) or not name:
                continue
            names.setdefault(sym, name)
    rows = [f"{s}\t{names[s]}" for s in sorted(names)]
    write("tickers.tsv", "# symbol\tcompany name (pytickersymbols 1.17.10, US indices)", rows)


def profanity():
    import joblib  # noqa: E402
    base = os.path.join(scratch, "x_alt_profanity_check/profanity_check/data")
    model = joblib.load(os.path.join(base, "model.joblib"))
    vec = joblib.load(os.path.join(base, "vectorizer.joblib"))
    ccs = model.calibrated_classifiers_
    header = ["#calib"]
    for cc in ccs:
        est, cal = cc.estimator, cc.calibrators[0]
        header.append(f"{float(est.intercept_[0])!r},{float(cal.a_)!r},{float(cal.b_)!r}")
    rows = []
    for word, col in sorted(vec.vocabulary_.items()):
        coefs = ",".join(repr(float(cc.estimator.coef_[0][col])) for cc in ccs)
        rows.append(f"{word}\t{float(vec.idf_[col])!r}\t{coefs}")
    write("profanity_model.tsv",
          "# word\tidf\tcoef x5 (alt-profanity-check 1.9.1); next line: intercept,a,b per model\n"
          + "\t".join(header), rows)


def write(name, header, rows):
    with open(os.path.join(out, name), "w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(r + "\n")
    print(f"wrote {name}: {len(rows)} rows")


for step in sys.argv[3:] or ["pattern", "empath", "tickers", "profanity"]:
    globals()[step]()
