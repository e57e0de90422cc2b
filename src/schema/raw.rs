//! The producer's record: the JSON shape of a sentiment event, typed but not yet checked against any rule.
//!
//! It lives beside the schema because every path into the table starts from it: ingestion decodes event
//! bodies into it, enrichment fills its missing analysis fields, validation turns it into a
//! [`super::SentimentRecord`] or a list of violations.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::record::Entity;

/// Every field is optional here; validation decides which are required, so that a record missing three
/// fields reports all three. Field names are the table's (the seed's) column names.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RawRecord {
    pub message_id: Option<String>,
    pub event_timestamp: Option<String>,
    pub ingestion_timestamp: Option<String>,
    pub source_system: Option<String>,
    pub text_content: Option<String>,
    pub sentiment_score: Option<f64>,
    pub sentiment_magnitude: Option<f64>,
    pub primary_emotion: Option<String>,
    pub emotion_intensity_vector: Option<BTreeMap<String, f64>>,
    pub aspect_target_identification: Option<Vec<String>>,
    pub aspect_based_sentiment: Option<BTreeMap<String, f64>>,
    pub sarcasm_detection: Option<bool>,
    pub subjectivity_score: Option<f64>,
    pub toxicity_score: Option<f64>,
    pub entity_recognition: Option<Vec<Entity>>,
    pub user_intent: Option<String>,
    pub influence_score: Option<f64>,
    pub processing_version: Option<String>,
    pub ticker: Option<String>,
    pub article_title: Option<String>,
    pub source_url: Option<String>,
    pub model_name: Option<String>,
    /// Input only (not a column): engagement figures that inform `influence_score` when it is computed.
    pub source_metadata: Option<RawSourceMetadata>,
}

/// Optional author/engagement figures a producer may attach to an event.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RawSourceMetadata {
    pub followers: Option<u64>,
    pub likes: Option<u64>,
    pub reposts: Option<u64>,
    pub replies: Option<u64>,
    pub verified: Option<bool>,
}
