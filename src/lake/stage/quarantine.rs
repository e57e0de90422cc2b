//! Where input that can never be processed goes, whole, with its reason: staged entries the committer cannot
//! read, and invocation envelopes the handler cannot parse or that exceed the size limit. Quarantined items
//! never block other data, are counted in metrics and health, and can be inspected or replayed by hand.
//!
//! Layout: `_quarantine/<table>/<source key>/<entry>` (a staged entry moved as it was) and
//! `_quarantine/invocations/<yyyy-mm-dd>/<uuid>.json` (an envelope), each next to `<name>.reason.json`.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::staging::StagedEntry;
use crate::lake::error::LakeError;

const QUARANTINE_DIR: &str = "_quarantine";
const STAGING_PREFIX: &str = "_staging/";
const REASON_SUFFIX: &str = ".reason.json";

/// The record kept beside a quarantined item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuarantineRecord {
    pub reason: String,
    pub quarantined_at: DateTime<Utc>,
    /// Where the item was (staged entries) or which invocation carried it (envelopes).
    pub origin: String,
    pub bytes: u64,
}

/// An envelope stored whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    pub path: String,
    pub bytes: u64,
}

#[derive(Clone)]
pub struct Quarantine {
    store: Arc<dyn ObjectStore>,
}

impl Quarantine {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    async fn write_reason(&self, path: &str, record: &QuarantineRecord) -> Result<(), LakeError> {
        let reason_path = format!("{path}{REASON_SUFFIX}");
        let body = serde_json::to_vec_pretty(record).map_err(|e| LakeError::Config(e.to_string()))?;
        self.store.put(&Path::from(reason_path.as_str()), PutPayload::from(body)).await.map_err(|e| LakeError::storage("put", reason_path, e))?;
        Ok(())
    }

    /// Moves a staged entry out of staging, keeping its relative path. Returns the new path. An entry that
    /// is already gone (another committer moved it) is not an error.
    pub async fn move_staged(&self, entry: &StagedEntry, reason: &str) -> Result<Option<String>, LakeError> {
        let relative = entry.path.strip_prefix(STAGING_PREFIX).unwrap_or(&entry.path);
        let target = format!("{QUARANTINE_DIR}/{relative}");
        let record = QuarantineRecord { reason: reason.to_string(), quarantined_at: Utc::now(), origin: entry.path.clone(), bytes: entry.size };
        // The reason first: a crash in between leaves a reason without its item, never an item without one.
        self.write_reason(&target, &record).await?;
        match self.store.rename(&Path::from(entry.path.as_str()), &Path::from(target.as_str())).await {
            Ok(()) => Ok(Some(target)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(LakeError::storage("rename", entry.path.as_str(), e)),
        }
    }

    /// Streams an envelope into the quarantine: `head` (what was already read) then the rest of the body,
    /// without holding it in memory.
    pub async fn store_envelope<S, E>(&self, reason: &str, origin: &str, head: Bytes, rest: S) -> Result<StoredEnvelope, LakeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let now = Utc::now();
        let path = format!("{QUARANTINE_DIR}/invocations/{}/{}.json", now.format("%Y-%m-%d"), uuid::Uuid::now_v7());
        let location = Path::from(path.as_str());
        let upload = self.store.put_multipart(&location).await.map_err(|e| LakeError::storage("put", path.as_str(), e))?;
        let mut writer = WriteMultipart::new(upload);
        let mut bytes = head.len() as u64;
        writer.put(head);
        let mut rest = rest;
        while let Some(chunk) = rest.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(LakeError::Config(format!("the invocation body broke off after {bytes} bytes: {e}")));
                }
            };
            writer.wait_for_capacity(4).await.map_err(|e| LakeError::storage("put", path.as_str(), e))?;
            bytes += chunk.len() as u64;
            writer.put(chunk);
        }
        writer.finish().await.map_err(|e| LakeError::storage("put", path.as_str(), e))?;
        self.write_reason(&path, &QuarantineRecord { reason: reason.to_string(), quarantined_at: now, origin: origin.to_string(), bytes }).await?;
        Ok(StoredEnvelope { path, bytes })
    }

    /// Every quarantined item with its record, for health, `doctor` and tests.
    pub async fn list(&self) -> Result<Vec<(String, QuarantineRecord)>, LakeError> {
        let prefix = Path::from(QUARANTINE_DIR);
        let objects: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&prefix)).try_collect().await.map_err(|e| LakeError::storage("list", QUARANTINE_DIR, e))?;
        let mut out = Vec::new();
        for object in objects {
            let path = object.location.to_string();
            let Some(item) = path.strip_suffix(REASON_SUFFIX) else {
                continue;
            };
            let bytes = self.store.get(&object.location).await.map_err(|e| LakeError::storage("get", path.as_str(), e))?;
            let bytes = bytes.bytes().await.map_err(|e| LakeError::storage("get", path.as_str(), e))?;
            if let Ok(record) = serde_json::from_slice::<QuarantineRecord>(&bytes) {
                out.push((item.to_string(), record));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
