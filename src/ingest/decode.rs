//! Event body bytes -> [`RawRecord`]: the producer's JSON, typed but not yet checked against field rules.
//!
//! Unknown keys are ignored so producers can add fields ahead of the table. Type errors name the JSON path
//! (through `serde_path_to_error`), so a dead letter says which field was wrong, not just "invalid JSON".
//!
//! A body that is not JSON but is base64 of a JSON object is that object: how the host hands bodies over
//! depends on the binding's `dataType` (and on the producer), and a binding changed in function.json alone
//! must not turn good events into dead letters.

use base64::Engine as _;

use crate::schema::RawRecord;

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

/// Decodes `body`; the record's strings borrow from it, or from `scratch` when the body is base64 (the
/// decoded bytes are kept there).
pub fn decode<'a>(body: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<RawRecord<'a>, DecodeError> {
    match decode_json(body) {
        Err(e @ (DecodeError::NotUtf8 { .. } | DecodeError::NotAnObject { .. })) => match base64_object(body) {
            Some(decoded) => {
                *scratch = decoded;
                decode_json(scratch)
            }
            None => Err(e),
        },
        other => other,
    }
}

/// The bytes a base64 body stands for, when they look like a JSON object. Standard or URL-safe alphabet,
/// padding optional, surrounding whitespace ignored.
fn base64_object(body: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = std::str::from_utf8(body).ok()?.trim().trim_end_matches('=');
    if text.is_empty() {
        return None;
    }
    let decoded = STANDARD_NO_PAD.decode(text).or_else(|_| URL_SAFE_NO_PAD.decode(text)).ok()?;
    decoded.trim_ascii_start().starts_with(b"{").then_some(decoded)
}

fn decode_json(body: &[u8]) -> Result<RawRecord<'_>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    // serde would read a JSON array positionally into the struct; only objects are records.
    if !text.trim_start().starts_with('{') {
        let start: String = text.trim_start().chars().take(16).collect();
        return Err(DecodeError::NotAnObject { detail: format!("starts with {start:?}") });
    }
    // Most bodies are valid: decode them without tracking the path (a third of the decoding time), and
    // decode again with it only to say where a bad one went wrong.
    if let Ok(record) = serde_json::from_str::<RawRecord<'_>>(text) {
        return Ok(record);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let record: RawRecord<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => DecodeError::Malformed { detail: inner.to_string() },
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

    /// The decoded record's message id, or the error.
    fn message_id(body: &[u8]) -> Result<Option<String>, DecodeError> {
        let mut scratch = Vec::new();
        Ok(decode(body, &mut scratch)?.message_id.map(|id| id.to_string()))
    }

    #[test]
    fn decodes_nested_fields_and_ignores_unknown_keys() {
        let body = br#"{"message_id":"a","entity_recognition":[{"text":"Apple","type":"ORG"}],"x":1}"#;
        let mut scratch = Vec::new();
        let raw = decode(body, &mut scratch).unwrap();
        assert_eq!(raw.message_id.as_deref(), Some("a"));
        assert_eq!(&*raw.entity_recognition.unwrap()[0].entity_type, "ORG");
    }

    #[test]
    fn type_errors_name_the_path() {
        let err = message_id(br#"{"sentiment_score":"high"}"#).unwrap_err();
        assert_eq!(err.field(), Some("sentiment_score"));
        let err = message_id(br#"{"entity_recognition":[{"text":"A","type":3}]}"#).unwrap_err();
        assert_eq!(err.field(), Some("entity_recognition[0].type"));
    }

    #[test]
    fn base64_of_a_json_object_is_that_object() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let json = br#"{"message_id":"b64","text_content":"hi ~~~ ???"}"#;
        for encoded in [STANDARD.encode(json), URL_SAFE_NO_PAD.encode(json), format!(" {}\n", STANDARD.encode(json))] {
            assert_eq!(message_id(encoded.as_bytes()).unwrap().as_deref(), Some("b64"), "{encoded}");
        }
        // Base64 of something that is not an object keeps the original error.
        assert!(matches!(message_id(STANDARD.encode(b"[1]").as_bytes()), Err(DecodeError::NotAnObject { .. })));
        assert!(matches!(message_id(b"aGVsbG8"), Err(DecodeError::NotAnObject { .. })));
        // A base64 body whose object is malformed reports the object's problem.
        assert!(matches!(message_id(STANDARD.encode(br#"{"message_id":"#).as_bytes()), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn non_objects_and_bad_bytes_are_decode_errors() {
        assert!(matches!(message_id(b"[1,2]"), Err(DecodeError::NotAnObject { .. })));
        assert!(matches!(message_id(b"{} {}"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(message_id(b"{this is not json"), Err(DecodeError::Malformed { .. })));
        assert!(matches!(message_id(&[0xff, 0xfe]), Err(DecodeError::NotUtf8 { .. })));
    }
}
