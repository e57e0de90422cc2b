//! Per-source watermarks kept in Iceberg snapshot summaries: the exactly-once ledger.
//!
//! Every commit this crate makes carries the full map `source -> highest committed sequence number` and a
//! commit id. The table itself is therefore the source of truth for what has been committed (as Kafka
//! Connect's `kafka.connect.offsets` or Redpanda's `redpanda.commit-metadata`): no side database can drift
//! from it. Snapshots written by other tools lack the keys, so readers walk back through ancestors until
//! they find one that has them.

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

use super::LakeError;

pub const WATERMARKS_PROPERTY: &str = "sentiment-lake.watermarks";
pub const COMMIT_ID_PROPERTY: &str = "sentiment-lake.commit-id";

/// `source id -> highest sequence number committed`. A source is one ordered stream, for example one Event
/// Hubs partition of one consumer group (`eventhubs://ns/hub/cg/3`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Watermarks(BTreeMap<String, i64>);

impl Watermarks {
    pub fn get(&self, source: &str) -> Option<i64> {
        self.0.get(source).copied()
    }

    /// True when `sequence_number` of `source` is already in the table.
    pub fn covers(&self, source: &str, sequence_number: i64) -> bool {
        self.get(source).is_some_and(|w| sequence_number <= w)
    }

    /// Raises the watermark of `source`; never lowers it.
    pub fn advance(&mut self, source: &str, sequence_number: i64) {
        let entry = self.0.entry(source.to_string()).or_insert(sequence_number);
        *entry = (*entry).max(sequence_number);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_property(&self) -> String {
        serde_json::to_string(&self.0).expect("a string->i64 map always serialises")
    }
}

/// What the table says has been committed: the watermarks and the ids of the commits that carried them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedState {
    pub watermarks: Watermarks,
    /// Commit ids of the ledger-carrying snapshots reachable from the current one, newest first.
    pub commit_ids: Vec<String>,
}

impl CommittedState {
    /// Reads the ledger from the current snapshot's lineage.
    ///
    /// The newest snapshot with the watermark key wins (it carries the full map). Commit ids are collected
    /// from the whole lineage so a commit whose reply was lost can be recognised later.
    pub fn read(metadata: &TableMetadata) -> Result<Self, LakeError> {
        let mut state = CommittedState::default();
        let mut found_watermarks = false;
        let mut next = metadata.current_snapshot_id();
        while let Some(id) = next {
            let Some(snapshot) = metadata.snapshot_by_id(id) else { break };
            let props = &snapshot.summary().additional_properties;
            if let Some(commit_id) = props.get(COMMIT_ID_PROPERTY) {
                state.commit_ids.push(commit_id.clone());
            }
            if !found_watermarks {
                if let Some(raw) = props.get(WATERMARKS_PROPERTY) {
                    state.watermarks = serde_json::from_str(raw).map_err(|e| {
                        LakeError::Corrupt(format!("snapshot {id}: unreadable {WATERMARKS_PROPERTY}: {e}"))
                    })?;
                    found_watermarks = true;
                }
            }
            next = snapshot.parent_snapshot_id();
        }
        Ok(state)
    }

    pub fn contains_commit(&self, commit_id: &str) -> bool {
        self.commit_ids.iter().any(|c| c == commit_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_never_lowers() {
        let mut w = Watermarks::default();
        w.advance("a", 10);
        w.advance("a", 5);
        assert_eq!(w.get("a"), Some(10));
        assert!(w.covers("a", 10) && !w.covers("a", 11) && !w.covers("b", 0));
        let parsed: Watermarks = serde_json::from_str(&w.to_property()).unwrap();
        assert_eq!(parsed, w);
    }
}
