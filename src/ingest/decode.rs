//! Event body bytes -> [`RawRecord`]: the producer's JSON, typed but not yet checked against field rules.
//!
//! Unknown keys are ignored so producers can add fields ahead of the table. Type errors name the JSON path
//! (through `serde_path_to_error`), so a dead letter says which field was wrong, not just "invalid JSON".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::schema::Entity;

/// The wire shape of a sentiment event. Every field is optional here; [`super::validate`] decides which are
/// required, so that a record missing three fields reports all three.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RawRecord {
    pub message_id: Option<String>,
    pub event_timestamp: Option<String>,
    pub ingestion_timestamp: Option<String>,
    pub source_system: Option<String>,
    pub message_text: Option<String>,
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

/// Why a body could not be read as a [`RawRecord`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event body is not valid UTF-8 (first bad byte at {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("event body is not a JSON object: {detail}")]
    NotAnObject { detail: String },
    #[error("event body is malformed JSON: {detail}")]
    Malformed { detail: String },
    #[error("field `{path}`: {detail}")]
    Field { path: String, detail: String },
}

impl DecodeError {
    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            DecodeError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

pub fn decode(body: &[u8]) -> Result<RawRecord, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    // serde would read a JSON array positionally into the struct; only objects are records.
    if !text.trim_start().starts_with('{') {
        let start: String = text.trim_start().chars().take(16).collect();
        return Err(DecodeError::NotAnObject { detail: format!("starts with {start:?}") });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let record: RawRecord = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                DecodeError::Malformed { detail: inner.to_string() }
            }
            _ if path == "." || path.is_empty() => DecodeError::NotAnObject { detail: inner.to_string() },
            _ => DecodeError::Field { path, detail: strip_position(&inner) },
        }
    })?;
    de.end().map_err(|e| DecodeError::Malformed { detail: format!("trailing data: {e}") })?;
    Ok(record)
}

/// serde_json appends " at line L column C", which is noise for one-line event bodies.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nested_fields_and_ignores_unknown_keys() {
        let body = br#"{"message_id":"a","entity_recognition":[{"text":"Apple","type":"ORG"}],"x":1}"#;
        let raw = decode(body).unwrap();
        assert_eq!(raw.message_id.as_deref(), Some("a"));
        assert_eq!(raw.entity_recognition.unwrap()[0].entity_type, "ORG");
    }

    #[test]
    fn type_errors_name_the_path() {
        let err = decode(br#"{"sentiment_score":"high"}"#).unwrap_err();
        assert_eq!(err.field(), Some("sentiment_score"));
        let err = decode(br#"{"entity_recognition":[{"text":"A","type":3}]}"#).unwrap_err();
        assert_eq!(err.field(), Some("entity_recognition[0].type"));
    }

    #[test]
    fn non_objects_and_bad_bytes_are_decode_errors() {
        assert!(matches!(decode(b"[1,2]"), Err(DecodeError::NotAnObject { .. })));
        assert!(matches!(decode(b"{} {}"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(decode(b"{this is not json"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(decode(&[0xff, 0xfe]), Err(DecodeError::NotUtf8 { .. })));
    }
}
