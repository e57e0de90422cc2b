//! `subjectivity_score`: a port of pattern/TextBlob's `PatternAnalyzer`
//! subjectivity over the pattern `en-sentiment.xml` lexicon (PDDL, public
//! domain), extracted to `data/pattern_en_sentiment.tsv` by
//! `scripts/extract-resources.py`.
//!
//! Algorithm (TextBlob 0.20.1 `_text.py`, `Sentiment.assessments` with
//! `pos=None`): each known word forms an assessment with its subjectivity; a
//! known adverb ("very", "really") is a modifier that multiplies the next
//! known word's subjectivity by its intensity; the result is the mean over
//! assessments, 0.0 when no word is known. The modifier is kept across one
//! short word ("really a good") as pattern does.
//!
//! Additions: a few finance opinion words absent from pattern ("bullish",
//! "overvalued") with a project-chosen subjectivity, in
//! [`FINANCE_SUBJECTIVE`]. Limits: no POS tagging (pattern averages all
//! senses of a form, as TextBlob does by default), no emoticons, the
//! exclamation rule only affects polarity in pattern and is not ported.

use crate::text::{FastMap, Tokens};

const PATTERN_TSV: &str = include_str!("../data/pattern_en_sentiment.tsv");

/// Finance opinion words pattern lacks (it covers adjectives of general
/// English). Values mirror pattern's scale: clear opinion words sit at
/// 0.6–0.9 there ("great" 0.75, "terrible" 1.0).
const FINANCE_SUBJECTIVE: &[(&str, f64)] = &[
    ("bullish", 0.8),
    ("bearish", 0.8),
    ("overvalued", 0.7),
    ("undervalued", 0.7),
    ("overhyped", 0.9),
    ("moon", 0.8),
    ("mooning", 0.9),
    ("bagholder", 0.8),
    ("bagholders", 0.8),
    ("tendies", 0.9),
    ("upbeat", 0.6),
    ("downbeat", 0.6),
    ("disappointing", 0.7),
];

#[derive(Debug, Clone, Copy)]
struct Entry {
    subjectivity: f64,
    intensity: f64,
    modifier: bool,
}

/// The pattern lexicon.
pub(crate) struct Subjectivity {
    words: FastMap<String, Entry>,
}

impl Subjectivity {
    pub fn new() -> Subjectivity {
        let mut words = FastMap::default();
        for line in PATTERN_TSV.lines().filter(|l| !l.starts_with('#')) {
            let c: Vec<&str> = line.split('\t').collect();
            if c.len() != 5 {
                continue;
            }
            let (Ok(s), Ok(i)) = (c[2].parse::<f64>(), c[3].parse::<f64>()) else {
                continue;
            };
            words.insert(
                c[0].to_string(),
                Entry {
                    subjectivity: s,
                    intensity: i,
                    modifier: c[4] == "1",
                },
            );
        }
        for &(w, s) in FINANCE_SUBJECTIVE {
            words.entry(w.to_string()).or_insert(Entry {
                subjectivity: s,
                intensity: 1.0,
                modifier: false,
            });
        }
        Subjectivity { words }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Mean subjectivity of known words in [0, 1].
    pub fn score(&self, toks: &Tokens<'_>) -> f64 {
        let mut assessed: Vec<f64> = Vec::new();
        // Intensity of the preceding modifier, if the last known word was one.
        let mut modifier: Option<f64> = None;
        for t in toks.tokens.iter().filter(|t| t.is_word()) {
            match self.words.get(&*t.lower) {
                Some(e) => {
                    match (modifier, assessed.last_mut()) {
                        // "very good": the modifier's assessment absorbs the word.
                        (Some(i), Some(last)) => *last = (e.subjectivity * i).clamp(-1.0, 1.0),
                        _ => assessed.push(e.subjectivity),
                    }
                    modifier = e.modifier.then_some(e.intensity);
                }
                None => {
                    // pattern keeps a modifier across words of <= 2 chars.
                    if t.lower.chars().count() > 2 {
                        modifier = None;
                    }
                }
            }
        }
        if assessed.is_empty() {
            return 0.0;
        }
        (assessed.iter().sum::<f64>() / assessed.len() as f64).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> f64 {
        Subjectivity::new().score(&Tokens::new(text))
    }

    #[test]
    fn loads_the_whole_lexicon() {
        assert!(Subjectivity::new().len() >= 1528);
    }

    #[test]
    fn matches_textblob_on_known_sentences() {
        // TextBlob 0.20.1: TextBlob(t).sentiment.subjectivity
        assert!((s("The movie was great") - 0.75).abs() < 1e-6);
        assert!((s("This is a very good product") - 0.78).abs() < 1e-6);
    }

    #[test]
    fn objective_and_finance_opinion() {
        assert_eq!(s("Apple reported quarterly results on Thursday"), 0.0);
        assert!(s("I am extremely bullish, this is an amazing company") > 0.6);
        assert_eq!(s(""), 0.0);
    }
}
