//! The typed form of one table row, as produced by validation and consumed by the Arrow builder.
//!
//! Required columns of the seed's table are plain values here and optional ones `Option`s, so a row the
//! contract forbids (a null in a required column) cannot be built. Strings borrow from the event body where
//! validation left them as they came (see [`super::RawRecord`]).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

/// A map column's entries, ordered by key, each key once.
pub type FloatMap<'a> = Vec<(Cow<'a, str>, f32)>;

/// A named entity found in the message (`entity_recognition` element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity<'a> {
    pub text: Cow<'a, str>,
    pub entity_type: Cow<'a, str>,
}

/// One validated sentiment record. Invariants (enforced by validation): required strings are non-empty,
/// scores are finite and inside their documented ranges, timestamps are UTC microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentRecord<'a> {
    pub message_id: Cow<'a, str>,
    pub event_timestamp: DateTime<Utc>,
    pub ingestion_timestamp: DateTime<Utc>,
    pub source_system: Cow<'a, str>,
    pub text_content: Cow<'a, str>,
    pub sentiment_score: f32,
    pub sentiment_magnitude: f32,
    pub primary_emotion: Cow<'a, str>,
    pub emotion_intensity_vector: Option<FloatMap<'a>>,
    pub aspect_target_identification: Option<Vec<Cow<'a, str>>>,
    pub aspect_based_sentiment: Option<FloatMap<'a>>,
    pub sarcasm_detection: bool,
    pub subjectivity_score: f32,
    pub toxicity_score: f32,
    pub entity_recognition: Option<Vec<Entity<'a>>>,
    pub user_intent: Cow<'a, str>,
    pub influence_score: Option<f32>,
    pub processing_version: Cow<'a, str>,
    pub ticker: Option<Cow<'a, str>>,
    pub article_title: Option<Cow<'a, str>>,
    pub source_url: Option<Cow<'a, str>>,
    pub model_name: Option<Cow<'a, str>>,
}
