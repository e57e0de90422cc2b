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
    /// Sources left out of `sources` beyond [`MAX_SOURCES`] (those enqueued longest ago): a migration of
    /// many files in flight must not make every answer large.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sources_omitted: usize,
}

/// Sources a receipt lists at most.
pub const MAX_SOURCES: usize = 64;

fn is_zero(n: &usize) -> bool {
    *n == 0
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
        if receipt.sources.len() > MAX_SOURCES {
            let mut by_age: Vec<(Option<DateTime<Utc>>, String)> = receipt.sources.iter().map(|(s, r)| (r.enqueued_at, s.clone())).collect();
            by_age.sort_by(|a, b| b.cmp(a));
            for (_, source) in by_age.split_off(MAX_SOURCES) {
                receipt.sources.remove(&source);
                receipt.sources_omitted += 1;
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use iceberg::spec::{FormatVersion, PartitionSpec, Schema, SortOrder, TableMetadataBuilder};

    use super::*;
    use crate::lake::stage::ENQUEUED_PROPERTY;

    fn table_with(properties: HashMap<String, String>) -> TableMetadata {
        let schema = Schema::builder().build().unwrap();
        let built = TableMetadataBuilder::new(
            schema,
            PartitionSpec::unpartition_spec(),
            SortOrder::unsorted_order(),
            "file:///t".into(),
            FormatVersion::V2,
            properties,
        );
        built.unwrap().build().unwrap().metadata
    }

    #[test]
    fn a_receipt_names_each_committed_source_and_keeps_to_the_newest_sixty_four() {
        let sources = 70i64;
        let watermarks: BTreeMap<String, i64> = (0..sources).map(|i| (format!("s{i:02}"), i * 10)).collect();
        let enqueued: BTreeMap<String, i64> = (0..sources).map(|i| (format!("s{i:02}"), 1_700_000_000_000 + i * 1000)).collect();
        let metadata = table_with(HashMap::from([
            (WATERMARKS_PROPERTY.to_string(), serde_json::to_string(&watermarks).unwrap()),
            (ENQUEUED_PROPERTY.to_string(), serde_json::to_string(&enqueued).unwrap()),
        ]));
        let receipt = Receipt::of(&metadata, None, None);
        assert_eq!((receipt.sources.len(), receipt.sources_omitted), (MAX_SOURCES, 6));
        assert!(!receipt.sources.contains_key("s05") && receipt.sources.contains_key("s06"), "the oldest are left out");
        assert_eq!(
            receipt.sources["s69"],
            SourceReceipt { last_sequence: 690, enqueued_at: DateTime::from_timestamp_millis(1_700_000_069_000), staged: false }
        );
        assert_eq!(receipt.newest_enqueued_at, DateTime::from_timestamp_millis(1_700_000_069_000));
        assert_eq!(receipt.freshness_s(DateTime::from_timestamp_millis(1_700_000_070_500).unwrap()), Some(1.5));
        assert!(receipt.tail.is_none() && receipt.snapshot_id.is_none());
    }
}
