//! `sentiment_score` and `sentiment_magnitude`: VADER 3.3.2 (exact, via the
//! vendored `vader` module, a speed-patched `vader-parity` 0.1.0) plus the
//! project's finance overlay.
//!
//! Company names that contain VADER sentiment words ("Best Buy", "Super
//! Micro", "United Airlines") are blanked before VADER reads the text (see
//! [`mask`]): a name carries no opinion.
//!
//! Combination rule: VADER's compound `c` is turned back into its raw valence
//! sum (`vader_raw`), the overlay corrections of the span are added, and the
//! result is normalised again with VADER's own formula. This behaves as if the
//! finance terms were in VADER's lexicon. When the overlay found nothing in the
//! span, the score *is* VADER's compound bit for bit, which is what keeps the
//! Pearson r on VADER's human-rated tweets at VADER's level.
//!
//! Magnitude is VADER's non-neutral share `pos + neg` (= 1 - neu); when
//! overlay terms apply it is raised to the overlay's own share of sentiment
//! mass, computed VADER's way (`sum(|v|+1) / (sum(|v|+1) + neutral words)`).
//!
//! Aspect clauses use [`SentimentModel::clause_scores`], a lexicon-only variant
//! that is about ten times cheaper than a second VADER pass: VADER's lexicon
//! valences of the clause's words (negated words x -0.74, as VADER) plus the
//! overlay corrections, normalised VADER's way. It skips VADER's booster,
//! caps, punctuation and idiom rules, which matter little inside one clause
//! (clauses are already cut at "but").
//!
//! Limits: VADER's contrastive "but", caps and booster rules do not reach the
//! overlay terms; the overlay sees negation only.

use std::ops::Range;

use crate::vader::SentimentIntensityAnalyzer;

use crate::finance_lexicon::{vader_normalize, vader_raw, FinanceLexicon, Match};
use crate::text::{negated, Tokens};

/// Score and magnitude of a text or span, unrounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Polarity {
    pub score: f64,
    pub magnitude: f64,
}

/// VADER plus overlay.
pub(crate) struct SentimentModel {
    pub vader: SentimentIntensityAnalyzer,
    pub lexicon: FinanceLexicon,
}

impl SentimentModel {
    pub fn new() -> SentimentModel {
        let vader = SentimentIntensityAnalyzer::new();
        let lexicon = FinanceLexicon::new(&vader);
        SentimentModel { vader, lexicon }
    }

    /// Scores the byte range `span` of the tokenised text, using the overlay
    /// matches that lie inside it. `vader_text` is what VADER reads: the
    /// text itself, or a copy with the same byte layout in which company names
    /// that contain sentiment words are blanked (see [`mask`]).
    pub fn score_span(
        &self,
        toks: &Tokens<'_>,
        vader_text: &str,
        span: Range<usize>,
        matches: &[Match],
    ) -> Polarity {
        let Some(slice) = vader_text.get(span.clone()) else {
            return Polarity {
                score: 0.0,
                magnitude: 0.0,
            };
        };
        let v = self.vader.polarity_scores(slice);
        let inside: Vec<&Match> = matches
            .iter()
            .filter(|m| {
                toks.tokens[m.first].span.start >= span.start
                    && toks.tokens[m.last].span.end <= span.end
            })
            .collect();
        let vader_mag = (v.pos + v.neg).clamp(0.0, 1.0);
        if inside.is_empty() {
            return Polarity {
                score: v.compound,
                magnitude: vader_mag,
            };
        }
        let delta: f64 = inside.iter().map(|m| m.delta).sum();
        let score = vader_normalize(vader_raw(v.compound) + delta);
        let mass: f64 = inside
            .iter()
            .filter(|m| m.target != 0.0)
            .map(|m| m.target.abs() + 1.0)
            .sum();
        let covered: usize = inside
            .iter()
            .map(|m| {
                toks.tokens[m.first..=m.last]
                    .iter()
                    .filter(|t| t.is_word())
                    .count()
            })
            .sum();
        let words = toks
            .tokens
            .iter()
            .filter(|t| t.is_word() && t.span.start >= span.start && t.span.end <= span.end)
            .count();
        let neutral = words.saturating_sub(covered) as f64;
        let fin_mag = if mass > 0.0 {
            mass / (mass + neutral)
        } else {
            0.0
        };
        Polarity {
            score,
            magnitude: vader_mag.max(fin_mag).clamp(0.0, 1.0),
        }
    }
}

impl SentimentModel {
    /// Lexicon-only score of every clause, indexed by clause (see the
    /// module docs). One pass over the tokens.
    pub fn clause_scores(&self, toks: &Tokens<'_>, matches: &[Match]) -> Vec<f64> {
        let t = &toks.tokens;
        let mut sums = vec![0.0; toks.clauses.len()];
        for (i, tok) in t.iter().enumerate() {
            if !tok.is_word() {
                continue;
            }
            if let (Some(v), Some(sum)) = (
                self.vader.word_valence(&tok.lower),
                sums.get_mut(tok.clause),
            ) {
                *sum += if negated(t, i, 3) { v * -0.74 } else { v };
            }
        }
        for m in matches {
            if let Some(sum) = sums.get_mut(t[m.first].clause) {
                *sum += m.delta;
            }
        }
        sums.into_iter().map(vader_normalize).collect()
    }
}

/// Copy of `text` with each byte of the `spans` replaced by `x`, so VADER
/// does not read "Best" in "Best Buy" while byte offsets stay valid. Spans
/// come from whole-match boundaries, so the result is valid UTF-8.
pub(crate) fn mask(text: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let mut sorted: Vec<&Range<usize>> = spans.iter().collect();
    sorted.sort_by_key(|r| r.start);
    for r in sorted {
        if r.start < pos
            || r.end > text.len()
            || !text.is_char_boundary(r.start)
            || !text.is_char_boundary(r.end)
        {
            continue;
        }
        out.push_str(&text[pos..r.start]);
        out.extend(std::iter::repeat_n('x', r.end - r.start));
        pos = r.end;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(m: &SentimentModel, text: &str, hint: bool) -> Polarity {
        let t = Tokens::new(text);
        let matches = m.lexicon.matches(&t, hint, &[]);
        m.score_span(&t, text, 0..text.len(), &matches)
    }

    #[test]
    fn plain_text_is_exact_vader() {
        let m = SentimentModel::new();
        for text in [
            "VADER is smart, handsome, and funny.",
            "I miss you so much",
            "",
        ] {
            let p = score(&m, text, false);
            assert_eq!(p.score, m.vader.polarity_scores(text).compound, "{text}");
        }
    }

    #[test]
    fn finance_headlines_get_direction() {
        let m = SentimentModel::new();
        let p = score(&m, "Apple beats earnings estimates, stock jumps 5%", false);
        assert!(p.score > 0.5, "{p:?}");
        assert!(p.magnitude > 0.3, "{p:?}");
        let n = score(
            &m,
            "Tesla shares plunge after disappointing deliveries",
            false,
        );
        assert!(n.score < -0.5, "{n:?}");
        let neg = score(&m, "Intel did not beat estimates", true);
        assert!(neg.score < -0.3, "{neg:?}");
    }

    #[test]
    fn clause_score_reads_lexicon_and_overlay() {
        let m = SentimentModel::new();
        let t = Tokens::new("Revenue was great, but guidance was not good and shares plunged");
        let o = m.lexicon.matches(&t, true, &[]);
        let s = m.clause_scores(&t, &o);
        assert_eq!(s.len(), 2);
        assert!(s[0] > 0.4, "{s:?}");
        assert!(s[1] < -0.4, "{s:?}");
    }

    #[test]
    fn mask_keeps_layout() {
        let m = mask("Best Buy é up", std::slice::from_ref(&(0..8)));
        assert_eq!(m, "xxxxxxxx é up");
        // A span that cuts a character is ignored rather than corrupting UTF-8.
        assert_eq!(mask("é", std::slice::from_ref(&(0..1))), "é");
    }

    #[test]
    fn neutral_finance_text_stays_near_zero() {
        let m = SentimentModel::new();
        let p = score(
            &m,
            "Microsoft shares outstanding rose to 7.4 billion",
            false,
        );
        assert!(p.score.abs() < 0.45, "{p:?}");
        let q = score(&m, "Fed holds interest rates steady", false);
        assert!(q.score.abs() < 0.3, "{q:?}");
    }
}
