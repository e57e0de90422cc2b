//! A freshness receipt: what an answer includes, per source, committed or staged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use iceberg::spec::TableMetadata;

use super::reader::Tail;
use crate::lake::stage::{Enqueued, Watermarks, WATERMARKS_PROPERTY};

/// What an answer includes: `meta.freshness` of the API.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// The snapshot the answer reads, and when it was committed.
    pub snapshot_id: Option<i64>,
    pub committed_at: Option<DateTime<Utc>>,
    /// What is staged above the snapshot, when the answer was asked to include it.
    pub tail: Option<TailReceipt>,
    /// Per source (an Event Hubs partition, a migrated file in flight): the last sequence number included
    /// and when it was enqueued. Empty for past snapshots (`as_of`): the table keeps this for its current one.
    pub sources: BTreeMap<String, SourceReceipt>,
    /// The newest enqueued time among the sources: `meta.freshness_s` counts from it.
    pub newest_enqueued_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TailReceipt {
    /// Whether the staged rows are in the answer (not when it was refused: `omitted` says why).
    pub included: bool,
    /// Staged entries (segments and range markers) above the snapshot, and their rows as summarised.
    pub entries: usize,
    pub rows: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceReceipt {
    pub last_sequence: i64,
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Whether the last sequence number is staged (in the tail), not yet committed.
    pub staged: bool,
}

impl Receipt {
    /// The receipt of an answer from the current snapshot of `metadata`, plus `tail` when it is included, or
    /// the reason it was left out.
    pub fn of(metadata: &TableMetadata, tail: Option<&Tail>, omitted: Option<String>) -> Self {
        let snapshot = metadata.current_snapshot();
        let mut receipt = Receipt {
            snapshot_id: snapshot.map(|s| s.snapshot_id()),
            committed_at: snapshot.and_then(|s| DateTime::from_timestamp_millis(s.timestamp_ms())),
            ..Receipt::default()
        };
        // The property alone (no walk of the lineage, on every request); an unreadable one fails commits,
        // not receipts: the receipt then names the snapshot alone.
        let watermarks: Watermarks =
            metadata.properties().get(WATERMARKS_PROPERTY).and_then(|raw| serde_json::from_str(raw).ok()).unwrap_or_default();
        let enqueued = Enqueued::of(metadata);
        for (source, last) in watermarks.iter() {
            receipt.sources.insert(source.to_string(), SourceReceipt { last_sequence: last, enqueued_at: enqueued.get(source), staged: false });
        }
        if let Some(tail) = tail {
            let included = omitted.is_none();
            if included {
                for (source, &through) in &tail.through {
                    let committed = receipt.sources.get(source).and_then(|s| s.enqueued_at);
                    let enqueued_at = tail.enqueued(source).max(committed);
                    receipt.sources.insert(source.clone(), SourceReceipt { last_sequence: through, enqueued_at, staged: true });
                }
            }
            receipt.tail = Some(TailReceipt { included, entries: tail.entries.len(), rows: tail.summarised_rows(), bytes: tail.bytes(), omitted });
        }
        receipt.newest_enqueued_at = receipt.sources.values().filter_map(|s| s.enqueued_at).max();
        receipt
    }

    /// The receipt of an answer from a past snapshot: which one, nothing per source.
    pub fn past(metadata: &TableMetadata, snapshot_id: i64) -> Self {
        let snapshot = metadata.snapshot_by_id(snapshot_id);
        Receipt {
            snapshot_id: Some(snapshot_id),
            committed_at: snapshot.and_then(|s| DateTime::from_timestamp_millis(s.timestamp_ms())),
            ..Receipt::default()
        }
    }

    /// Seconds from the newest included enqueued time to `now` (`meta.freshness_s`).
    pub fn freshness_s(&self, now: DateTime<Utc>) -> Option<f64> {
        self.newest_enqueued_at.map(|at| ((now - at).num_milliseconds().max(0) as f64) / 1e3)
    }
}
