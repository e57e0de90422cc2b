//! `toxicity_score`: an exact port of the `alt-profanity-check` 1.9.1 model
//! (MIT), exported by `scripts/extract-resources.py` to
//! `data/profanity_model.tsv`.
//!
//! The model is scikit-learn's TF-IDF (lower-cased unigrams matching
//! `(?u)\b\w\w+\b`, English stop words already absent from the vocabulary,
//! smooth idf, l2 norm) feeding five sigmoid-calibrated `LinearSVC`s whose
//! probabilities are averaged (`CalibratedClassifierCV.predict_proba`).
//! Recognised company names and tickers are masked before scoring because
//! names like "Dick's Sporting Goods" or "$CUM" would otherwise read as
//! profanity.
//!
//! Limits: trained on general web comments, so it scores profanity and
//! insults, not finance-specific abuse ("pump and dump scammers" is low);
//! a text with no vocabulary word gets the model's base rate (about 0.036),
//! not 0. Unicode lower-casing follows Rust, which can differ from Python for
//! a few exotic characters.

use std::ops::Range;

use crate::text::{FastMap, Tokens};

const MODEL_TSV: &str = include_str!("../data/profanity_model.tsv");

const N_MODELS: usize = 5;

/// One calibrated linear SVM: decision = w·x + intercept,
/// p = 1 / (1 + exp(a·decision + b)).
#[derive(Debug, Clone, Copy, Default)]
struct Calibrated {
    intercept: f64,
    a: f64,
    b: f64,
}

/// One vocabulary term's weights.
#[derive(Debug, Clone, Copy)]
struct Term {
    idf: f64,
    coef: [f64; N_MODELS],
}

/// The profanity model.
pub(crate) struct Toxicity {
    /// word -> index into `terms`.
    vocab: FastMap<String, usize>,
    /// idf and the five coefficients side by side: one cache line per term.
    terms: Vec<Term>,
    models: [Calibrated; N_MODELS],
}

impl Toxicity {
    pub fn new() -> Toxicity {
        let mut vocab = FastMap::default();
        let mut terms = Vec::with_capacity(16_000);
        let mut models = [Calibrated::default(); N_MODELS];
        for line in MODEL_TSV.lines() {
            if let Some(cal) = line.strip_prefix("#calib\t") {
                for (m, part) in models.iter_mut().zip(cal.split('\t')) {
                    let v: Vec<f64> = part.split(',').filter_map(|x| x.parse().ok()).collect();
                    if let [intercept, a, b] = v[..] {
                        *m = Calibrated { intercept, a, b };
                    }
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let mut cols = line.split('\t');
            let (Some(word), Some(w_idf), Some(w_coef)) = (cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let Ok(w_idf) = w_idf.parse::<f64>() else {
                continue;
            };
            let parsed: Vec<f64> = w_coef.split(',').filter_map(|x| x.parse().ok()).collect();
            let Ok(c) = <[f64; N_MODELS]>::try_from(parsed) else {
                continue;
            };
            vocab.insert(word.to_string(), terms.len());
            terms.push(Term {
                idf: w_idf,
                coef: c,
            });
        }
        Toxicity {
            vocab,
            terms,
            models,
        }
    }

    /// Whether a lower-cased word is in the model's vocabulary (15k common
    /// words of web comments); the entity module uses it as an English
    /// dictionary to spot company short names that are everyday words.
    pub fn is_vocabulary_word(&self, lower: &str) -> bool {
        self.vocab.contains_key(lower)
    }

    #[cfg(test)]
    pub fn vocab_len(&self) -> usize {
        self.vocab.len()
    }

    /// Probability in [0, 1] that the text is profane/toxic, ignoring tokens
    /// that overlap any byte range in `masked`.
    ///
    /// The unigrams are cut from the shared tokens: splitting each word
    /// token's lower-cased text at non-word characters gives exactly the
    /// runs of `(?u)\b\w\w+\b` in the lower-cased text, because the
    /// tokeniser only joins word characters across non-word characters.
    pub fn score(&self, toks: &Tokens<'_>, masked: &[Range<usize>]) -> f64 {
        // The masked ranges merged into sorted disjoint ones: tokens come in
        // text order, so one forward cursor answers "overlaps any mask"
        // instead of a scan of every mask per token. Empty ranges overlap
        // nothing and are dropped.
        let mut merged: Vec<Range<usize>> =
            masked.iter().filter(|m| !m.is_empty()).cloned().collect();
        merged.sort_unstable_by_key(|m| m.start);
        merged.dedup_by(|next, prev| {
            let overlaps = next.start <= prev.end;
            if overlaps {
                prev.end = prev.end.max(next.end);
            }
            overlaps
        });
        let mut cursor = 0;
        let mut ids: Vec<usize> = Vec::new();
        for t in toks.tokens.iter().filter(|t| t.is_word()) {
            while merged.get(cursor).is_some_and(|m| m.end <= t.span.start) {
                cursor += 1;
            }
            if merged.get(cursor).is_some_and(|m| m.start < t.span.end) {
                continue;
            }
            for run in t.lower.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if run.chars().nth(1).is_none() {
                    continue;
                }
                if let Some(&idx) = self.vocab.get(run) {
                    ids.push(idx);
                }
            }
        }
        // Sorted term ids: equal terms become runs (their counts) and the
        // float sums below run in a fixed order.
        ids.sort_unstable();
        let mut counts: Vec<(usize, f64)> = Vec::with_capacity(ids.len());
        for id in ids {
            match counts.last_mut() {
                Some((last, c)) if *last == id => *c += 1.0,
                _ => counts.push((id, 1.0)),
            }
        }
        let norm = counts
            .iter()
            .map(|&(i, c)| (c * self.terms[i].idf).powi(2))
            .sum::<f64>()
            .sqrt();
        let mut p_sum = 0.0;
        for (m, cal) in self.models.iter().enumerate() {
            let mut decision = cal.intercept;
            if norm > 0.0 {
                for &(i, c) in &counts {
                    let t = &self.terms[i];
                    decision += c * t.idf / norm * t.coef[m];
                }
            }
            p_sum += 1.0 / (1.0 + (cal.a * decision + cal.b).exp());
        }
        (p_sum / N_MODELS as f64).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_full_vocabulary() {
        assert_eq!(Toxicity::new().vocab_len(), 15_442);
    }

    #[test]
    fn matches_python_predict_prob() {
        // profanity_check.predict_prob([t]) with alt-profanity-check 1.9.1,
        // scikit-learn 1.9.1 (values recorded when the model was exported).
        let t = Toxicity::new();
        let cases = [
            (
                "What a shitty quarter, total garbage guidance",
                0.9873100321998388,
            ),
            (
                "This management team is full of crooks and idiots",
                0.8783633690994563,
            ),
            (
                "Analysts say the stock is a dog, sell it",
                0.2695290870184683,
            ),
            (
                "Short squeeze on $GME, bears getting crushed",
                0.005095325321104582,
            ),
            ("", 0.036375752016469504),
        ];
        for (text, want) in cases {
            let got = t.score(&Tokens::new(text), &[]);
            assert!((got - want).abs() < 1e-9, "{text}: {got} vs {want}");
        }
    }

    #[test]
    fn masking_removes_company_names() {
        let t = Toxicity::new();
        let text = "Hedge funds dumped shares of Dick's Sporting Goods";
        let unmasked = t.score(&Tokens::new(text), &[]);
        let start = text.find("Dick").unwrap();
        let masked = t.score(
            &Tokens::new(text),
            std::slice::from_ref(&(start..text.len())),
        );
        assert!(masked <= unmasked);
        assert!(masked < 0.1, "{masked}");
    }

    #[test]
    fn unigrams_follow_sklearn_pattern() {
        // "a" and "é" are single characters; "d_e" and "f1" are words;
        // "don't" splits into "don" + "t" as in scikit-learn.
        let t = Toxicity::new();
        let a = t.score(&Tokens::new("a bc d_e f1 é! don't"), &[]);
        let b = t.score(&Tokens::new("bc d_e f1 don"), &[]);
        assert_eq!(a, b);
    }
}
