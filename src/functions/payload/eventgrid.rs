//! Event Grid trigger (`eventGridTrigger`): one event, as the Event Grid schema or as a CloudEvent, with no
//! content. For a legacy upload it is `Microsoft.Storage.BlobCreated`, whose `data` names the blob (`url`),
//! its version (`eTag`), its size and the storage operation that created it (`api`). Docs:
//! <https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage>.
//!
//! On a hierarchical-namespace account a file written through the Data Lake API fires BlobCreated twice:
//! on `CreateFile` (empty, still being written) and on `FlushWithClose` (complete). Only the operations
//! that leave a complete blob start a migration; the others are acknowledged and ignored.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::lenient;
use super::{InvokeRequest, PayloadError};

/// Storage operations after which the blob is whole: a single upload, a committed block list, a Data Lake
/// file flushed and closed, a server-side copy, an SFTP upload committed.
pub const COMPLETING_APIS: [&str; 5] = ["PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob", "SftpCommit"];

const BLOB_CREATED: &str = "Microsoft.Storage.BlobCreated";

/// A blob that now exists whole and may be migrated.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobCreated {
    pub event_id: Option<String>,
    /// The blob's URL (`https://<account>.blob.core.windows.net/...` or, through the Data Lake API,
    /// `https://<account>.dfs.core.windows.net/...`). The version migrated is the one the store holds when
    /// it is read, not the one the event describes (a newer version has its own event; identical content is
    /// migrated once), so the event's ETag and size are not kept.
    pub url: String,
    pub api: String,
    pub event_time: Option<DateTime<Utc>>,
}

/// What an Event Grid invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum GridEvent {
    Created(BlobCreated),
    /// Anything else: another event type, or a BlobCreated for an incomplete blob. The reason is logged.
    Ignored {
        event_type: String,
        reason: String,
    },
}

impl GridEvent {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Result<Self, PayloadError> {
        let raw = request.data.get(binding).ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
        let path = format!("Data.{binding}");
        let event = match lenient::unwrap_json(raw.clone()) {
            Value::Object(event) => event,
            // A batch delivery carries one event per invocation unless the binding asks for arrays.
            Value::Array(mut events) if events.len() == 1 => match lenient::unwrap_json(events.remove(0)) {
                Value::Object(event) => event,
                _ => return Err(PayloadError::invalid(path, "expected an Event Grid event object")),
            },
            _ => return Err(PayloadError::invalid(path, "expected an Event Grid event object")),
        };
        Self::from_event(&event).map_err(|detail| PayloadError::invalid(path, detail))
    }

    /// Reads either schema: Event Grid's (`eventType`, `eventTime`) or CloudEvents 1.0 (`type`, `time`).
    fn from_event(event: &Map<String, Value>) -> Result<Self, String> {
        let text = |key: &str| event.get(key).and_then(lenient::string);
        let event_type = text("eventType").or_else(|| text("type")).ok_or("the event has neither eventType (Event Grid) nor type (CloudEvents)")?;
        if event_type != BLOB_CREATED {
            return Ok(GridEvent::Ignored { event_type, reason: "not a BlobCreated event".into() });
        }
        let data = match event.get("data").map(|d| lenient::unwrap_json(d.clone())) {
            Some(Value::Object(data)) => data,
            _ => return Err("a BlobCreated event without its data object".into()),
        };
        let field = |key: &str| data.get(key);
        let api = field("api").and_then(lenient::string).unwrap_or_default();
        if !COMPLETING_APIS.contains(&api.as_str()) {
            let reason = match api.as_str() {
                "" => "the event does not say which operation created the blob".to_string(),
                "CreateFile" => "a Data Lake file was created and is still being written; FlushWithClose will announce it whole".to_string(),
                other => format!("{other} does not leave a complete blob"),
            };
            return Ok(GridEvent::Ignored { event_type, reason });
        }
        let url = field("url").and_then(lenient::string).ok_or("a BlobCreated event without data.url")?;
        Ok(GridEvent::Created(BlobCreated {
            event_id: text("id"),
            url,
            api,
            event_time: event.get("eventTime").or_else(|| event.get("time")).and_then(lenient::timestamp),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::payload::fixtures;

    #[test]
    fn parses_the_event_grid_fixture() {
        let request = fixtures::load("eventgrid-blob-created.json");
        let GridEvent::Created(blob) = GridEvent::from_invocation(&request, "event").unwrap() else { panic!("a complete upload") };
        assert_eq!(blob.url, "https://contosolake.dfs.core.windows.net/legacy/2019/legacy-0001.parquet");
        assert_eq!((blob.api.as_str(), blob.event_id.as_deref()), ("FlushWithClose", Some("831e1650-001e-001b-66ab-eeb76e069631")));
        assert!(blob.event_time.is_some());
    }

    fn invocation(event: Value) -> InvokeRequest {
        let mut request = InvokeRequest::default();
        request.data.insert("event".into(), event);
        request
    }

    #[test]
    fn cloud_events_and_native_objects_are_read_too() {
        let event = serde_json::json!({
            "specversion": "1.0", "type": "Microsoft.Storage.BlobCreated", "id": "9aeb0fdf", "time": "2026-12-06T10:00:00Z",
            "source": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
            "data": {"api": "PutBlockList", "url": "https://acct.blob.core.windows.net/legacy/a.parquet", "eTag": "\"0x1\"", "contentLength": 12}
        });
        let GridEvent::Created(blob) = GridEvent::from_invocation(&invocation(event), "event").unwrap() else { panic!() };
        assert_eq!((blob.url.as_str(), blob.event_id.as_deref()), ("https://acct.blob.core.windows.net/legacy/a.parquet", Some("9aeb0fdf")));
    }

    #[test]
    fn partial_uploads_and_other_events_are_ignored_with_a_reason() {
        let created = |api: &str| serde_json::json!({"eventType": "Microsoft.Storage.BlobCreated", "data": {"api": api, "url": "https://a.dfs.core.windows.net/c/f.parquet"}});
        let ignored = GridEvent::from_invocation(&invocation(Value::String(created("CreateFile").to_string())), "event").unwrap();
        assert!(matches!(&ignored, GridEvent::Ignored { reason, .. } if reason.contains("FlushWithClose")), "{ignored:?}");
        assert!(matches!(GridEvent::from_invocation(&invocation(created("PutBlockFromURL")), "event").unwrap(), GridEvent::Ignored { .. }));
        let deleted = serde_json::json!({"eventType": "Microsoft.Storage.BlobDeleted", "data": {}});
        assert!(matches!(GridEvent::from_invocation(&invocation(deleted), "event").unwrap(), GridEvent::Ignored { .. }));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for bad in [
            Value::Null,
            serde_json::json!(42),
            serde_json::json!({"data": {}}),
            serde_json::json!({"eventType": "Microsoft.Storage.BlobCreated"}),
            serde_json::json!({"eventType": "Microsoft.Storage.BlobCreated", "data": {"api": "PutBlob"}}),
            serde_json::json!([{"eventType": "x"}, {"eventType": "y"}]),
        ] {
            assert!(GridEvent::from_invocation(&invocation(bad.clone()), "event").is_err(), "{bad}");
        }
        assert!(matches!(GridEvent::from_invocation(&InvokeRequest::default(), "event"), Err(PayloadError::MissingBinding(_))));
    }
}
