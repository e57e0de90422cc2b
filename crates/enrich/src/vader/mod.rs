//! VADER 3.3.2 scoring: a vendored fork of the `vader-parity` 0.1.0 crate
//! (MIT OR Apache-2.0, exact parity with Python vaderSentiment 3.3.2; the
//! VADER lexicons are MIT © C.J. Hutto), patched only for speed.
//!
//! Why a fork: `vader-parity` answers every character's casing and emoji
//! look-up from binary-searched Unicode tables and builds every idiom n-gram
//! as a new string, which made VADER about two thirds of this crate's run
//! time (≈31 µs of a 300-byte text; the fork takes ≈7 µs). The patches
//! change speed only, never a result:
//!
//! * `casing::py_lower` / `py_isupper`: ASCII strings use
//!   `to_ascii_lowercase` / an ASCII scan (CPython's `str.lower` and
//!   `str.isupper` agree with these on ASCII).
//! * `text::translate_emojis`: ASCII chars skip the emoji map (the emoji
//!   lexicon has no single-character ASCII key; `tests/vader_fork_parity.rs`
//!   checks that).
//! * The lexicon, emoji, idiom and booster maps use the crate's FxHash
//!   `FastMap` instead of SipHash (`data.rs`, `text.rs`); only look-ups are
//!   made, never iteration, so the hasher cannot change a score.
//! * `rules::joined_lower` skips building an n-gram whose first word starts
//!   no multi-word idiom/booster key (it could not match), and
//!   `rules::negated` looks the NEGATE list up in a set.
//! * `text::words_and_emoticons` borrows a token's lower-case form from the
//!   text when the token is ASCII without upper-case letters (`lower()` is
//!   then the identity) instead of allocating it, and sizes its token list
//!   up front; `text::translate_emojis` borrows an ASCII text instead of
//!   copying it; the punctuation strip and the `!`/`?` counts run on bytes
//!   (every character they look for is ASCII, and no byte of a multi-byte
//!   character is). `rules::negated` finds "n't" with a byte-window scan and
//!   `rules::joined_lower` sizes its string once.
//! * `round::python_round` rounds directly when the value is not within 1e-6
//!   of a decimal tie (same result, checked on 900,000 values by a unit test)
//!   and keeps the formatting path for ties.
//!
//! Parity is enforced by `tests/vader_fork_parity.rs`, which compares this
//! fork with the `vader-parity` crate (a dev-dependency used as the oracle) on
//! every row of the project's evaluation sets, on property-generated
//! strings, and on all 23,703 VADER ground-truth sentences when
//! `VADER_GROUND_TRUTH_DIR` is set. The unit tests of the original crate
//! came along unchanged. Everything else (rules, rounding, data files in
//! `data/vader/`) is byte-identical to `vader-parity` 0.1.0; see
//! `data/PROVENANCE.md`.

mod casing;
mod data;
mod round;
mod rules;
mod text;

/// The four VADER scores for one text (same fields and precision as
/// `vader_parity::SentimentScores`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SentimentScores {
    /// Negative proportion, rounded to 3 decimals. In [0, 1].
    pub neg: f64,
    /// Neutral proportion, rounded to 3 decimals. In [0, 1].
    pub neu: f64,
    /// Positive proportion, rounded to 3 decimals. In [0, 1].
    pub pos: f64,
    /// Normalized compound score, rounded to 4 decimals. In [-1, 1].
    pub compound: f64,
}

/// The analyzer, holding the loaded VADER lexicons.
pub struct SentimentIntensityAnalyzer {
    tables: data::Tables,
}

impl SentimentIntensityAnalyzer {
    /// Parses the vendored VADER 3.3.2 data once.
    pub fn new() -> SentimentIntensityAnalyzer {
        SentimentIntensityAnalyzer {
            tables: data::Tables::load(),
        }
    }

    /// VADER's lexicon valence of one lower-cased token (-4..4), if listed.
    /// Added for the analyzer's clause-level aspect scores.
    pub fn word_valence(&self, lower: &str) -> Option<f64> {
        self.tables.lexicon.get(lower).copied()
    }

    /// Scores one text; total over every `&str`.
    pub fn polarity_scores(&self, text: &str) -> SentimentScores {
        rules::polarity_scores(&self.tables, text).0
    }
}

impl Default for SentimentIntensityAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}
