//! `primary_emotion` and `emotion_intensity_vector` from Empath 0.89 word
//! categories (MIT, `data/empath_emotions.tsv`) plus the project's finance
//! fear/greed terms ([`FINANCE_EMOTION`]).
//!
//! The vector always has the keys of [`EMOTIONS`] (Plutchik's eight plus
//! `greed`, the market-sentiment counterpart of fear). Each Empath category
//! feeds one key ([`CATEGORY_MAP`]). A word hit adds its weight (Empath 1.0,
//! finance terms as listed) to every emotion it belongs to; a hit preceded by
//! a negator ("no panic") is dropped. Intensity of emotion `e` is
//! `hits_e / max(3, total_hits)`: one fear word gives fear 0.33, three or more
//! emotion words saturate the scale and the values become shares. The primary
//! emotion is the largest value, ties broken by the order of [`EMOTIONS`];
//! "neutral" when nothing matched.
//!
//! Limits: bag of words without lemmatising (Empath does not lemmatise
//! either); Empath lists are generic and noisy (its `sadness` list holds
//! "happiness"), so the generic words in [`EMPATH_STOPWORDS`] are removed.

use std::collections::BTreeMap;

use crate::text::{negated, FastMap, Tokens};

const EMPATH_TSV: &str = include_str!("../data/empath_emotions.tsv");

/// Output keys, in tie-break order (fear and greed first: they are the
/// market-relevant pair).
pub(crate) const EMOTIONS: &[&str] = &[
    "fear",
    "greed",
    "anger",
    "joy",
    "sadness",
    "trust",
    "anticipation",
    "surprise",
    "disgust",
];

/// Empath category -> output emotion. Near-synonym categories are folded in
/// because the eight Plutchik lists alone are short (50–170 words).
const CATEGORY_MAP: &[(&str, &str)] = &[
    ("anger", "anger"),
    ("rage", "anger"),
    ("anticipation", "anticipation"),
    ("optimism", "anticipation"),
    ("disgust", "disgust"),
    ("fear", "fear"),
    ("nervousness", "fear"),
    ("joy", "joy"),
    ("sadness", "sadness"),
    ("disappointment", "sadness"),
    ("surprise", "surprise"),
    ("trust", "trust"),
];

/// Words Empath puts in many emotion categories at once; they say "this is
/// about feelings", not which one.
const EMPATH_STOPWORDS: &[&str] = &[
    "emotion",
    "emotions",
    "feel",
    "feeling",
    "feelings",
    "emotional",
    "overwhelm",
    "overwhelming",
    "anticipation",
    "profound",
    "intense",
];

/// Finance terms Empath lacks, with the emotion they signal in market talk and
/// a weight (2.0 = as strong as two Empath words: these are the words traders
/// actually use for fear and greed).
const FINANCE_EMOTION: &[(&str, &str, f64)] = &[
    // fear: sell-offs, crashes and forced selling
    ("crash", "fear", 2.0),
    ("crashes", "fear", 2.0),
    ("crashing", "fear", 2.0),
    ("selloff", "fear", 2.0),
    ("sell-off", "fear", 2.0),
    ("panic", "fear", 2.0),
    ("capitulation", "fear", 2.0),
    ("plunge", "fear", 1.5),
    ("plunges", "fear", 1.5),
    ("plummets", "fear", 1.5),
    ("bloodbath", "fear", 2.0),
    ("meltdown", "fear", 2.0),
    ("contagion", "fear", 2.0),
    ("recession", "fear", 1.5),
    ("bankruptcy", "fear", 1.5),
    ("default", "fear", 1.0),
    ("volatility", "fear", 1.0),
    ("bearish", "fear", 1.0),
    ("rout", "fear", 1.5),
    ("tumbles", "fear", 1.0),
    ("downgrade", "fear", 0.5),
    ("warns", "fear", 1.0),
    ("probe", "fear", 1.0),
    // greed / euphoria: squeezes, moon talk, FOMO
    ("moon", "greed", 2.0),
    ("mooning", "greed", 2.0),
    ("rocket", "greed", 1.5),
    ("🚀", "greed", 2.0),
    ("squeeze", "greed", 1.5),
    ("fomo", "greed", 2.0),
    ("yolo", "greed", 2.0),
    ("tendies", "greed", 2.0),
    ("lambo", "greed", 2.0),
    ("skyrocket", "greed", 1.5),
    ("skyrockets", "greed", 1.5),
    ("soars", "greed", 1.0),
    ("surges", "greed", 1.0),
    ("rally", "greed", 1.0),
    ("bullish", "greed", 1.0),
    ("ath", "greed", 1.5),
    ("euphoria", "greed", 2.0),
    ("frenzy", "greed", 1.5),
    ("bubble", "greed", 1.0),
    // other emotions with a finance reading
    ("fraud", "anger", 1.5),
    ("scam", "anger", 1.5),
    ("rigged", "anger", 1.5),
    ("crooks", "anger", 1.5),
    ("layoffs", "sadness", 1.0),
    ("misses", "sadness", 1.0),
    ("disappointing", "sadness", 1.0),
    ("beats", "joy", 1.0),
    ("upgrade", "trust", 1.0),
    ("reaffirms", "trust", 1.0),
    ("unexpectedly", "surprise", 1.0),
    ("unexpected", "surprise", 1.0),
];

/// Emotion lexicon: word -> list of (emotion index, weight).
pub(crate) struct Emotions {
    words: FastMap<String, Vec<(usize, f64)>>,
}

/// Emotion result before rounding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EmotionResult {
    pub primary: &'static str,
    pub vector: BTreeMap<String, f64>,
}

fn emotion_index(name: &str) -> Option<usize> {
    EMOTIONS.iter().position(|e| *e == name)
}

impl Emotions {
    pub fn new() -> Emotions {
        let mut words: FastMap<String, Vec<(usize, f64)>> = FastMap::default();
        let mut add = |w: &str, e: usize, weight: f64| {
            let v = words.entry(w.to_string()).or_default();
            if !v.iter().any(|(i, _)| *i == e) {
                v.push((e, weight));
            }
        };
        // Finance terms first so they keep their weight when Empath lists them too.
        for &(w, e, weight) in FINANCE_EMOTION {
            if let Some(i) = emotion_index(e) {
                add(w, i, weight);
            }
        }
        for line in EMPATH_TSV.lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let Some(cat) = cols.next() else { continue };
            let Some(&(_, e)) = CATEGORY_MAP.iter().find(|(c, _)| *c == cat) else {
                continue;
            };
            let Some(i) = emotion_index(e) else { continue };
            for w in cols.filter(|w| !EMPATH_STOPWORDS.contains(w)) {
                add(w, i, 1.0);
            }
        }
        Emotions { words }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn analyze(&self, toks: &Tokens<'_>) -> EmotionResult {
        let mut sums = vec![0.0f64; EMOTIONS.len()];
        for (i, t) in toks.tokens.iter().enumerate() {
            if t.lower.is_empty() {
                continue;
            }
            if let Some(hits) = self.words.get(&*t.lower) {
                if t.is_word() && negated(&toks.tokens, i, 2) {
                    continue;
                }
                for &(e, w) in hits {
                    sums[e] += w;
                }
            }
        }
        let total: f64 = sums.iter().sum();
        let denom = total.max(3.0);
        let mut vector = BTreeMap::new();
        let mut primary = "neutral";
        let mut best = 0.0;
        for (i, name) in EMOTIONS.iter().enumerate() {
            let v = (sums[i] / denom).clamp(0.0, 1.0);
            if v > best {
                best = v;
                primary = name;
            }
            vector.insert((*name).to_string(), v);
        }
        EmotionResult { primary, vector }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> EmotionResult {
        Emotions::new().analyze(&Tokens::new(text))
    }

    #[test]
    fn loads_empath_and_finance_terms() {
        assert!(Emotions::new().len() > 500);
    }

    #[test]
    fn vector_has_all_keys_and_neutral_default() {
        let r = run("Quarterly report filed on Tuesday");
        assert_eq!(r.primary, "neutral");
        assert_eq!(r.vector.len(), EMOTIONS.len());
        assert!(r.vector.values().all(|v| *v == 0.0));
    }

    #[test]
    fn finance_fear_and_greed() {
        assert_eq!(
            run("Panic selling as the market crash deepens").primary,
            "fear"
        );
        assert_eq!(run("$GME to the moon 🚀🚀 short squeeze").primary, "greed");
        let r = run("investors are terrified");
        assert!(r.vector["fear"] > 0.0 && r.vector["fear"] <= 1.0);
    }

    #[test]
    fn negated_hits_are_dropped() {
        assert_eq!(run("no panic here").primary, "neutral");
    }
}
