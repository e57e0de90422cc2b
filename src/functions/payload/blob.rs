//! Blob trigger (`"dataType": "binary"`, Event Grid source): the whole blob as base64 plus its path and
//! properties. Docs: <https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob-trigger>.
//!
//! The host drops the `BlobTrigger` path from Metadata (keys ending in "trigger" are skipped), so the path
//! comes from the `{name}` token and `Uri`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::lenient;
use super::{InvokeRequest, PayloadError};

#[derive(Debug, Clone, PartialEq)]
pub struct BlobTrigger {
    pub content: Bytes,
    /// The `{name}` path token: the blob's path inside the container.
    pub name: Option<String>,
    pub uri: Option<String>,
    pub etag: Option<String>,
    pub content_length: Option<i64>,
    pub last_modified: Option<DateTime<Utc>>,
    /// User metadata set on the blob.
    pub user_metadata: Map<String, Value>,
}

impl BlobTrigger {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Result<Self, PayloadError> {
        let raw = request.data.get(binding).ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
        let text = raw.as_str().ok_or_else(|| PayloadError::invalid(format!("Data.{binding}"), "expected a base64 string"))?;
        let content = lenient::base64_bytes(text)
            .ok_or_else(|| PayloadError::invalid(format!("Data.{binding}"), "not base64: set \"dataType\": \"binary\" on the binding"))?;
        let meta = &request.metadata;
        let properties = match meta.get("Properties").map(|v| lenient::unwrap_json(v.clone())) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let prop = |key: &str| properties.get(key);
        Ok(Self {
            content: Bytes::from(content),
            name: meta.get("name").and_then(lenient::string),
            uri: meta.get("Uri").and_then(lenient::string),
            etag: prop("ETag").and_then(lenient::string).map(|e| e.trim_matches('"').to_string()),
            content_length: prop("ContentLength").and_then(lenient::i64),
            last_modified: prop("LastModified").and_then(lenient::timestamp),
            user_metadata: match meta.get("Metadata").map(|v| lenient::unwrap_json(v.clone())) {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            },
        })
    }

    /// Idempotency key for a blob version: Event Grid delivers at least once and overwrites re-trigger.
    pub fn version_key(&self) -> Option<String> {
        Some(format!("{}@{}", self.uri.as_deref().or(self.name.as_deref())?, self.etag.as_deref()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::payload::fixtures;

    #[test]
    fn parses_the_blob_fixture() {
        let request = fixtures::load("blob-trigger.json");
        let blob = BlobTrigger::from_invocation(&request, "blob").unwrap();
        assert_eq!(&blob.content[..4], b"PAR1");
        assert_eq!(blob.name.as_deref(), Some("2019/legacy-0001.parquet"));
        assert_eq!(blob.etag.as_deref(), Some("0x8DC1A2B3C4D5E6F"));
        assert_eq!(blob.content_length, Some(blob.content.len() as i64));
        assert_eq!(
            blob.version_key().as_deref(),
            Some("https://acct.blob.core.windows.net/legacy-parquet/2019/legacy-0001.parquet@0x8DC1A2B3C4D5E6F")
        );
        assert_eq!(blob.user_metadata.get("source").and_then(Value::as_str), Some("etl-v1"));
    }

    #[test]
    fn text_blob_without_binary_data_type_is_refused() {
        let mut request = fixtures::load("blob-trigger.json");
        request.data.insert("blob".into(), Value::String("PAR1 not base64 !!".into()));
        assert!(matches!(BlobTrigger::from_invocation(&request, "blob"), Err(PayloadError::Invalid { .. })));
    }
}
