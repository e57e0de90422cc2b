//! The typed form of one table row, as produced by validation and consumed by the Arrow builder.
//!
//! Required columns of the seed's table are plain values here and optional ones `Option`s, so a row the
//! contract forbids (a null in a required column) cannot be built.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A named entity found in the message (`entity_recognition` element).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entity {
    pub text: String,
    #[serde(rename = "type")]
    pub entity_type: String,
}

/// One validated sentiment record. Invariants (enforced by validation): required strings are non-empty,
/// scores are finite and inside their documented ranges, timestamps are UTC microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentRecord {
    pub message_id: String,
    pub event_timestamp: DateTime<Utc>,
    pub ingestion_timestamp: DateTime<Utc>,
    pub source_system: String,
    pub text_content: String,
    pub sentiment_score: f32,
    pub sentiment_magnitude: f32,
    pub primary_emotion: String,
    pub emotion_intensity_vector: Option<BTreeMap<String, f32>>,
    pub aspect_target_identification: Option<Vec<String>>,
    pub aspect_based_sentiment: Option<BTreeMap<String, f32>>,
    pub sarcasm_detection: bool,
    pub subjectivity_score: f32,
    pub toxicity_score: f32,
    pub entity_recognition: Option<Vec<Entity>>,
    pub user_intent: String,
    pub influence_score: Option<f32>,
    pub processing_version: String,
    pub ticker: Option<String>,
    pub article_title: Option<String>,
    pub source_url: Option<String>,
    pub model_name: Option<String>,
}
