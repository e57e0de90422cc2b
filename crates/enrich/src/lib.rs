//! Deterministic, rule- and lexicon-based enrichment of financial sentiment
//! records for sentiment-lake.
//!
//! One [`Analyzer`] (built once, shared via `Arc`, `Send + Sync`) turns a
//! record's text, optional title, ticker, source and engagement metadata into
//! every advanced field of the record ([`Analysis`]). Each field family has a
//! module whose docs state its rules and limits:
//!
//! | field | module | resource |
//! |---|---|---|
//! | `sentiment_score`, `sentiment_magnitude` | `sentiment`, `finance_lexicon` | VADER 3.3.2 (`vader` = vendored, speed-patched `vader-parity` 0.1.0; lexicon MIT) + project finance overlay |
//! | `subjectivity_score` | `subjectivity` | pattern `en-sentiment.xml` (PDDL) via TextBlob 0.20.1 |
//! | `primary_emotion`, `emotion_intensity_vector` | `emotion` | Empath 0.89 categories (MIT) + project fear/greed terms |
//! | `toxicity_score` | `toxicity` | alt-profanity-check 1.9.1 model (MIT), entities masked |
//! | `entity_recognition` | `entities` | pytickersymbols 1.17.10 (MIT) + regexes |
//! | `aspect_target_identification`, `aspect_based_sentiment` | `aspects` | project taxonomy |
//! | `sarcasm_detection` | `sarcasm` | project rules |
//! | `user_intent` | `intent` | project rules |
//! | `influence_score` | `influence` | project source priors + metadata |
//!
//! All resources are embedded with `include_str!`; nothing is read from disk
//! or network at run time. Output is deterministic: ordered maps, fixed rule
//! order, floats rounded to 4 decimals. The analyzer never panics on any
//! `&str` (a property test feeds it arbitrary Unicode).
//!
//! Versioning: [`ANALYZER_VERSION`] changes whenever any rule, table or
//! resource changes output; [`Analyzer::model_name`] adds each resource's
//! version. Store the former in `processing_version` and the latter in
//! `model_name`.
//!
//! What this crate does not do: machine-learned classification, languages
//! other than English, or keeping a legacy score (callers decide whether to
//! overwrite an existing `sentiment_score`).
//!
//! ```
//! use sentiment_enrich::{Analyzer, AnalysisInput};
//!
//! let analyzer = Analyzer::new();
//! let a = analyzer.analyze(&AnalysisInput {
//!     text: "Apple beats earnings estimates, stock jumps 5%",
//!     title: None,
//!     ticker: Some("AAPL"),
//!     source_system: "reuters",
//!     source_metadata: None,
//! });
//! assert!(a.sentiment_score > 0.5);
//! assert_eq!(a.aspect_target_identification, vec!["earnings".to_string()]);
//! assert_eq!(a.user_intent, "news");
//! ```

mod aspects;
mod emotion;
mod entities;
mod finance_lexicon;
mod influence;
mod intent;
mod sarcasm;
mod sentiment;
mod subjectivity;
mod text;
mod toxicity;
mod vader;

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use finance_lexicon::FINANCE_LEXICON_VERSION;
pub use intent::INTENTS;

/// Test hook for `tests/vader_fork_parity.rs`: the vendored VADER fork's
/// (neg, neu, pos, compound) for `text`. Not part of the API.
#[doc(hidden)]
pub fn __vader_scores(text: &str) -> (f64, f64, f64, f64) {
    static VADER: std::sync::OnceLock<vader::SentimentIntensityAnalyzer> =
        std::sync::OnceLock::new();
    let s = VADER
        .get_or_init(vader::SentimentIntensityAnalyzer::new)
        .polarity_scores(text);
    (s.neg, s.neu, s.pos, s.compound)
}

/// Version of the analyzer's rules and tables; goes into `processing_version`
/// and prefixes [`Analyzer::model_name`].
pub const ANALYZER_VERSION: &str = "rules-1.0.0";

/// Engagement metadata of the record's source, when the source provides it.
/// Feeds only `influence_score`; all fields `None` is treated as no metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMetadata {
    /// Author's follower count.
    pub followers: Option<u64>,
    /// Likes / upvotes of the post.
    pub likes: Option<u64>,
    /// Reposts / retweets / shares (weighted twice: they spread the post).
    pub reposts: Option<u64>,
    /// Replies / comments.
    pub replies: Option<u64>,
    /// Whether the author account is verified.
    pub verified: Option<bool>,
}

/// One record to analyze.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisInput<'a> {
    /// `message_text`.
    pub text: &'a str,
    /// `article_title`; analyzed together with the text (title first).
    pub title: Option<&'a str>,
    /// The record's ticker if known; accepted as an entity even when it is a
    /// short or common word ("F", "ALL"), and marks the text as finance.
    pub ticker: Option<&'a str>,
    /// e.g. "twitter", "reuters", "stocktwits", "reddit", "news".
    pub source_system: &'a str,
    pub source_metadata: Option<&'a SourceMetadata>,
}

/// A recognised entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Surface text; for `TICKER` the upper-case symbol without `$`.
    pub text: String,
    /// "TICKER", "ORG", "MONEY" or "PERCENT".
    pub entity_type: String,
}

/// Every enriched field of one record. Floats are rounded to 4 decimals.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// [-1, 1]; VADER compound with the finance overlay.
    pub sentiment_score: f32,
    /// [0, 1]; share of sentiment-bearing content.
    pub sentiment_magnitude: f32,
    /// A key of `emotion_intensity_vector`, or "neutral".
    pub primary_emotion: String,
    /// Always the nine keys anger, anticipation, disgust, fear, greed, joy,
    /// sadness, surprise, trust; values in [0, 1].
    pub emotion_intensity_vector: BTreeMap<String, f32>,
    /// Aspect names in first-mention order, no duplicates.
    pub aspect_target_identification: Vec<String>,
    /// Aspect -> clause-level score in [-1, 1].
    pub aspect_based_sentiment: BTreeMap<String, f32>,
    pub sarcasm_detection: bool,
    /// [0, 1]; 0 when no pattern lexicon word occurs.
    pub subjectivity_score: f32,
    /// [0, 1]; profanity/insult probability (base rate about 0.036).
    pub toxicity_score: f32,
    pub entity_recognition: Vec<Entity>,
    /// One of [`INTENTS`].
    pub user_intent: String,
    /// [0, 1]; source prior alone when there is no metadata.
    pub influence_score: f32,
}

/// The analyzer: all lexicons and rule tables, parsed once.
pub struct Analyzer {
    model_name: String,
    sentiment: sentiment::SentimentModel,
    subjectivity: subjectivity::Subjectivity,
    emotions: emotion::Emotions,
    toxicity: toxicity::Toxicity,
    entities: entities::Entities,
    aspects: aspects::Aspects,
    intent: intent::IntentRules,
    sarcasm: sarcasm::SarcasmRules,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// Parses the embedded resources (about 20 ms). Never panics: malformed
    /// data lines are skipped, and unit tests assert every line loads.
    pub fn new() -> Analyzer {
        let toxicity = toxicity::Toxicity::new();
        let sentiment = sentiment::SentimentModel::new();
        let entities =
            entities::Entities::new(&|w: &str| toxicity.is_vocabulary_word(w), &|name: &str| {
                sentiment.vader.polarity_scores(name).compound != 0.0
            });
        Analyzer {
            model_name: format!(
                "{ANALYZER_VERSION}(vader-3.3.2,{FINANCE_LEXICON_VERSION},pattern-en-1.3,\
                 empath-0.89,profanity-check-1.9.1,pytickersymbols-1.17.10)"
            ),
            sentiment,
            subjectivity: subjectivity::Subjectivity::new(),
            emotions: emotion::Emotions::new(),
            toxicity,
            entities,
            aspects: aspects::Aspects::new(),
            intent: intent::IntentRules::new(),
            sarcasm: sarcasm::SarcasmRules::new(),
        }
    }

    /// Analyzer version plus every embedded resource's version, e.g.
    /// `rules-1.0.0(vader-3.3.2,finance-1,pattern-en-1.3,empath-0.89,profanity-check-1.9.1,pytickersymbols-1.17.10)`.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Analyzes one record. Deterministic and total.
    pub fn analyze(&self, input: &AnalysisInput<'_>) -> Analysis {
        let full: Cow<'_, str> = match input.title.map(str::trim).filter(|t| !t.is_empty()) {
            Some(title) if !input.text.trim_start().starts_with(title) => {
                Cow::Owned(format!("{title}\n{}", input.text))
            }
            _ => Cow::Borrowed(input.text),
        };
        let toks = text::Tokens::new(&full);
        let record_ticker = input.ticker.map(str::trim).filter(|t| !t.is_empty());
        let found = self.entities.find(&full, record_ticker);
        let finance_hint =
            record_ticker.is_some() || found.entities.iter().any(|e| e.entity_type == "TICKER");
        let overlay = self
            .sentiment
            .lexicon
            .matches(&toks, finance_hint, &found.org_spans);
        let masked;
        let vader_text: &str = if found.sentiment_mask.is_empty() {
            &full
        } else {
            masked = sentiment::mask(&full, &found.sentiment_mask);
            &masked
        };
        let polarity = self
            .sentiment
            .score_span(&toks, vader_text, 0..full.len(), &overlay);

        let mentions = self.aspects.mentions(&toks);
        // One clause is the whole text, already scored by full VADER.
        let clause_scores = if mentions.is_empty() || toks.clauses.len() == 1 {
            Vec::new()
        } else {
            self.sentiment.clause_scores(&toks, &overlay)
        };
        let aspect_scores = aspects::scores(&mentions, |c| {
            clause_scores.get(c).copied().unwrap_or(polarity.score)
        });

        let emotion = self.emotions.analyze(&toks);
        Analysis {
            sentiment_score: text::round4(polarity.score),
            sentiment_magnitude: text::round4(polarity.magnitude),
            primary_emotion: emotion.primary.to_string(),
            emotion_intensity_vector: emotion
                .vector
                .into_iter()
                .map(|(k, v)| (k, text::round4(v)))
                .collect(),
            aspect_target_identification: aspects::targets(&mentions),
            aspect_based_sentiment: aspect_scores
                .into_iter()
                .map(|(k, v)| (k, text::round4(v)))
                .collect(),
            sarcasm_detection: self.sarcasm.detect(&toks, &overlay),
            subjectivity_score: text::round4(self.subjectivity.score(&toks)),
            toxicity_score: text::round4(self.toxicity.score(&toks, &found.name_spans)),
            entity_recognition: found.entities,
            user_intent: self
                .intent
                .classify(
                    &toks,
                    input.source_system,
                    input.title.is_some(),
                    polarity.score,
                )
                .to_string(),
            influence_score: text::round4(influence::score(
                input.source_system,
                input.source_metadata,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> AnalysisInput<'_> {
        AnalysisInput {
            text,
            title: None,
            ticker: None,
            source_system: "twitter",
            source_metadata: None,
        }
    }

    #[test]
    fn analyzer_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Analyzer>();
    }

    #[test]
    fn model_name_records_versions() {
        let a = Analyzer::new();
        assert!(a.model_name().starts_with(ANALYZER_VERSION));
        for part in [
            "vader-3.3.2",
            "finance-1",
            "pattern-en",
            "empath-0.89",
            "profanity-check-1.9.1",
        ] {
            assert!(a.model_name().contains(part), "{part}");
        }
    }

    #[test]
    fn title_is_analyzed_with_text() {
        let a = Analyzer::new();
        let with_title = a.analyze(&AnalysisInput {
            title: Some("Netflix misses subscriber estimates"),
            source_system: "news",
            ..input("The company reported results on Tuesday.")
        });
        assert!(with_title.sentiment_score < -0.3, "{with_title:?}");
        assert!(with_title
            .entity_recognition
            .iter()
            .any(|e| e.text == "Netflix"));
        assert_eq!(with_title.user_intent, "news");
    }

    #[test]
    fn toxicity_masks_company_names() {
        let a = Analyzer::new();
        let r = a.analyze(&input("Hedge funds dumped shares of Dick's Sporting Goods"));
        assert!(r.toxicity_score < 0.2, "{r:?}");
    }

    #[test]
    fn all_ranges_hold() {
        let a = Analyzer::new();
        let r = a.analyze(&input(
            "WTF $GME to the moon!!! 🚀🚀 bears getting crushed, earnings next week?",
        ));
        assert!((-1.0..=1.0).contains(&r.sentiment_score));
        assert!((0.0..=1.0).contains(&r.sentiment_magnitude));
        assert!((0.0..=1.0).contains(&r.subjectivity_score));
        assert!((0.0..=1.0).contains(&r.toxicity_score));
        assert!((0.0..=1.0).contains(&r.influence_score));
        assert!(r
            .emotion_intensity_vector
            .values()
            .all(|v| (0.0..=1.0).contains(v)));
        assert!(
            r.emotion_intensity_vector.contains_key(&r.primary_emotion)
                || r.primary_emotion == "neutral"
        );
        assert!(INTENTS.contains(&r.user_intent.as_str()));
    }
}
