//! What ingestion takes in: raw events of one ordered source, with their coordinates in it.

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// One raw event with its coordinates in the source stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceEvent {
    pub sequence_number: i64,
    pub offset: Option<String>,
    /// When the event entered the stream; time-window rules are judged against it (the wall clock when
    /// absent).
    pub enqueued_time: Option<DateTime<Utc>>,
    pub partition_key: Option<String>,
    pub body: Bytes,
    /// Why the trigger could not hand over a usable body (a `null` event, say): the event is dead-lettered
    /// with this reason instead of being decoded.
    pub defect: Option<String>,
}

impl SourceEvent {
    /// An event with a body and no defect.
    pub fn new(sequence_number: i64, body: Bytes) -> Self {
        Self { sequence_number, offset: None, enqueued_time: None, partition_key: None, body, defect: None }
    }
}

/// Events of one ordered source (one Event Hubs partition, one file), in sequence order.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceBatch {
    /// Stable id of the ordered stream, e.g. `eventhubs://ns/hub/$Default/3`.
    pub source: String,
    pub invocation_id: Option<String>,
    pub events: Vec<SourceEvent>,
}

impl SourceBatch {
    /// The batch as JSON lines (one event per line, bodies base64), for the quarantine: complete enough to
    /// replay, whatever the bodies contain.
    pub fn to_ndjson(&self) -> Bytes {
        use base64::Engine as _;
        let mut out = Vec::new();
        for event in &self.events {
            let line = serde_json::json!({
                "source": self.source,
                "sequence_number": event.sequence_number,
                "offset": event.offset,
                "enqueued_time": event.enqueued_time,
                "partition_key": event.partition_key,
                "defect": event.defect,
                "body_base64": base64::engine::general_purpose::STANDARD.encode(&event.body),
            });
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        Bytes::from(out)
    }

    /// The sequence range the batch covers, `None` for an empty batch.
    pub fn sequence_range(&self) -> Option<(i64, i64)> {
        let first = self.events.iter().map(|e| e.sequence_number).min()?;
        let last = self.events.iter().map(|e| e.sequence_number).max()?;
        Some((first, last))
    }
}
