//! A local NDJSON file or JSON array as a [`SourceBatch`], so `sentiment-lake ingest FILE` goes through
//! exactly the pipeline Event Hubs batches do.
//!
//! The source id is derived from the file's content and the sequence number is the record's 1-based
//! position, so ingesting the same file twice adds nothing (the committer sees the same watermark).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::batch::{SourceBatch, SourceEvent};

#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("the file starts with `[` but is not a JSON array: {0}")]
    NotAnArray(serde_json::Error),
}

/// Splits `content` into events: elements of a top-level JSON array, or non-blank NDJSON lines (a bad line
/// becomes a dead letter later, not an error here). `written_at` (the file's modification time) stands in
/// for Event Hubs' enqueued time, so ingesting the same file again judges its timestamps the same way.
pub fn batch_from_file(content: &[u8], label: &str, written_at: Option<DateTime<Utc>>) -> Result<SourceBatch, FileSourceError> {
    let digest = Sha256::digest(content);
    let source = format!("file://sha256:{}", hex(&digest[..16]));
    let trimmed = content.trim_ascii_start();
    let bodies: Vec<Bytes> = if trimmed.starts_with(b"[") {
        let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(trimmed).map_err(FileSourceError::NotAnArray)?;
        items.into_iter().map(|raw| Bytes::from(raw.get().to_string())).collect()
    } else {
        content.split(|&b| b == b'\n').map(|line| line.trim_ascii()).filter(|line| !line.is_empty()).map(Bytes::copy_from_slice).collect()
    };
    let events =
        bodies.into_iter().enumerate().map(|(i, body)| SourceEvent { enqueued_time: written_at, ..SourceEvent::new(i as i64 + 1, body) }).collect();
    Ok(SourceBatch { source, invocation_id: Some(label.to_string()), events })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_and_arrays_yield_the_same_bodies_in_order() {
        let ndjson = b"{\"a\":1}\n\n  {\"a\":2}\nnot json\n";
        let batch = batch_from_file(ndjson, "x", None).unwrap();
        let bodies: Vec<&[u8]> = batch.events.iter().map(|e| &e.body[..]).collect();
        assert_eq!(bodies, vec![&b"{\"a\":1}"[..], b"{\"a\":2}", b"not json"]);
        assert_eq!(batch.events[2].sequence_number, 3);
        let array = batch_from_file(b" [{\"a\":1}, {\"a\":2}]", "y", None).unwrap();
        assert_eq!(array.events.len(), 2);
        assert_eq!(&array.events[1].body[..], b"{\"a\":2}");
        assert!(batch_from_file(b"[{\"a\":1},", "z", None).is_err());
        assert_eq!(batch_from_file(ndjson, "again", None).unwrap().source, batch.source);
    }
}
