//! The exactly-once ledger: per-source watermarks and the ids of recent commits, kept in the table itself.
//!
//! Every commit this crate makes sets, in the same atomic metadata swap as its append:
//! - table properties `sentiment-lake.watermarks` (JSON map `source -> highest sequence number accounted
//!   for`) and `sentiment-lake.recent-commits` (JSON list of the last [`RECENT_COMMITS`] commit ids);
//! - in the snapshot summary, its own commit id and the watermarks of the sources *it* advanced, as Kafka
//!   Connect's `kafka.connect.offsets` or Redpanda's `redpanda.commit-metadata`, for readers that look
//!   there. Only those: a summary carrying every source would grow every snapshot with each legacy file a
//!   migration ever read. [`LEDGER_FORMAT_PROPERTY`] in the summary says so.
//!
//! Table properties are what the committer trusts: snapshot expiry and other engines' commits (Dremio's
//! `OPTIMIZE`, compaction) replace or drop snapshots and their summaries but carry the properties over, so
//! committed data never looks uncommitted. Tables written by versions that kept the whole ledger only in
//! summaries are read by walking the lineage, and that walk fails closed: a missing parent snapshot
//! (expired), or a summary holding only this format's partial watermarks, means the watermarks cannot be
//! known, and committing anyway could duplicate rows.
//!
//! A rollback also records, per source it moved back, the range it took out of the table and awaits from a
//! replay ([`AWAITING_PROPERTY`], [`Awaiting`]): the planner never bridges a gap inside it, whatever its age,
//! and entries staged before the rollback count for nothing inside it. The range is released when the replay
//! has been committed through it, or by an operator (`rollback --release <source>`).
//!
//! A legacy file fully migrated leaves the watermarks (the migration ledger, `crate::lake::commit::retired`, keeps it instead), so
//! the property holds the live sources and the files in flight, not every file ever migrated.

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

use crate::lake::error::LakeError;

pub const WATERMARKS_PROPERTY: &str = "sentiment-lake.watermarks";
pub const RECENT_COMMITS_PROPERTY: &str = "sentiment-lake.recent-commits";
/// Table property: the ranges rollbacks took out and a replay must bring back (JSON map source -> [`Awaited`]).
pub const AWAITING_PROPERTY: &str = "sentiment-lake.awaiting-replay";
pub const COMMIT_ID_PROPERTY: &str = "sentiment-lake.commit-id";
/// Snapshot summary: the rows a commit added per source (JSON map source -> rows), so that figures about one
/// kind of source (the data signals' dead-letter rate of Event Hubs traffic) need not read rows.
pub const ADDED_BY_SOURCE_SUMMARY: &str = "sentiment-lake.added-by-source";
/// Table property: per source, the newest enqueued time (milliseconds since the epoch) of what has been
/// committed (JSON map source -> ms). Informational, for freshness receipts: never trusted for exactly-once.
pub const ENQUEUED_PROPERTY: &str = "sentiment-lake.enqueued";

/// `source -> newest enqueued time committed`, as [`ENQUEUED_PROPERTY`] holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Enqueued(BTreeMap<String, i64>);

impl Enqueued {
    /// The table's property; an unreadable one reads as empty (it only ever informs a receipt).
    pub fn of(metadata: &TableMetadata) -> Self {
        metadata.properties().get(ENQUEUED_PROPERTY).and_then(|raw| serde_json::from_str(raw).ok()).unwrap_or_default()
    }

    pub fn get(&self, source: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.get(source).copied().and_then(chrono::DateTime::from_timestamp_millis)
    }

    /// Raises `source`'s time to `at`; never lowers it.
    pub fn advance(&mut self, source: &str, at: chrono::DateTime<chrono::Utc>) {
        let entry = self.0.entry(source.to_string()).or_insert(i64::MIN);
        *entry = (*entry).max(at.timestamp_millis());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, chrono::DateTime<chrono::Utc>)> {
        self.0.iter().filter_map(|(source, ms)| Some((source.as_str(), chrono::DateTime::from_timestamp_millis(*ms)?)))
    }

    /// Only the sources `watermarks` still has (a retired file leaves both).
    pub fn retain_in(&mut self, watermarks: &Watermarks) {
        self.0.retain(|source, _| watermarks.get(source).is_some());
    }

    pub fn to_property(&self) -> String {
        serde_json::to_string(&self.0).expect("a string->i64 map always serialises")
    }
}

/// Whether a snapshot of `metadata` carries `commit_id`: how a commit whose reply was lost is told from
/// one that never landed, before anything is retried or its files deleted.
pub fn commit_landed(metadata: &TableMetadata, commit_id: &str) -> bool {
    metadata.snapshots().any(|s| s.summary().additional_properties.get(COMMIT_ID_PROPERTY).is_some_and(|c| c == commit_id))
}
/// In a snapshot summary: its watermarks are only the sources that snapshot advanced (value `partial`).
pub const LEDGER_FORMAT_PROPERTY: &str = "sentiment-lake.ledger-format";
pub const PARTIAL_SUMMARY: &str = "partial";
/// Commit ids remembered in table properties: enough to recognise a commit whose reply was lost, since the
/// committer looks again within seconds.
pub const RECENT_COMMITS: usize = 100;

/// The watermarks a snapshot's summary records (partial or whole), if it records readable ones. For readers
/// that tolerate their absence (history listings, rollback planning); the committer's own read fails closed.
pub fn summary_watermarks(snapshot: &iceberg::spec::Snapshot) -> Option<Watermarks> {
    serde_json::from_str(snapshot.summary().additional_properties.get(WATERMARKS_PROPERTY)?).ok()
}

/// `source id -> highest sequence number accounted for`. A source is one ordered stream, for example one
/// Event Hubs partition of one consumer group (`eventhubs://ns/hub/cg/3`).
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

    /// Sets `source`'s watermark, lower or higher (a rollback restoring an earlier ledger).
    pub fn set(&mut self, source: &str, sequence_number: i64) {
        self.0.insert(source.to_string(), sequence_number);
    }

    /// Forgets `source` (a retired legacy file, whose record moved to the migration ledger).
    pub fn remove(&mut self, source: &str) -> Option<i64> {
        self.0.remove(source)
    }

    /// The watermarks of `sources` only.
    pub fn only<'a>(&self, sources: impl IntoIterator<Item = &'a str>) -> Watermarks {
        Watermarks(sources.into_iter().filter_map(|s| self.get(s).map(|w| (s.to_string(), w))).collect())
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

/// Sequence numbers of one source a rollback took out of the table: those above `after` (all of them when
/// `after` is `None`, a source the target snapshot had never seen) through `through`, the watermark before
/// the rollback. Only what was staged after `rolled_back_at` can bring them back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Awaited {
    pub after: Option<i64>,
    pub through: i64,
    /// A UUIDv7 made at the rollback: staged entries are named with UUIDv7s, so those that sort before it
    /// were staged before the rollback (clocks of the machines staging and rolling back compared; they are
    /// kept in sync by the platform).
    pub rolled_back_at: String,
    /// The snapshot rolled back to, and when, for people reading it.
    pub to_snapshot: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Awaited {
    /// Whether sequence number `seq` is inside the awaited range.
    pub fn covers(&self, seq: i64) -> bool {
        self.after.is_none_or(|after| seq > after) && seq <= self.through
    }

    /// Whether the entry named with `id` was staged before the rollback.
    pub fn staged_before(&self, id: &uuid::Uuid) -> bool {
        uuid::Uuid::parse_str(&self.rolled_back_at).is_ok_and(|at| *id < at)
    }

    /// Sequence numbers awaited (for metrics; an unknown start counts from `through` alone).
    pub fn events(&self) -> u64 {
        self.after.map_or(1, |after| (self.through - after).max(0) as u64)
    }
}

/// `source -> Awaited`: what rollbacks took out and replays have not yet brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Awaiting(BTreeMap<String, Awaited>);

impl Awaiting {
    pub fn get(&self, source: &str) -> Option<&Awaited> {
        self.0.get(source)
    }

    /// Adds what a rollback of `source` from watermark `through` back to `after` takes out, merged with a
    /// range an earlier rollback still awaits (the union: everything either took out).
    pub fn record(&mut self, source: &str, awaited: Awaited) {
        let merged = match self.0.remove(source) {
            Some(earlier) => Awaited {
                after: match (earlier.after, awaited.after) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                },
                through: earlier.through.max(awaited.through),
                ..awaited
            },
            None => awaited,
        };
        self.0.insert(source.to_string(), merged);
    }

    /// Drops what `watermarks` show has been committed again through its end; returns the sources released.
    pub fn settle(&mut self, watermarks: &Watermarks) -> Vec<String> {
        let done: Vec<String> = self.0.iter().filter(|(s, a)| watermarks.get(s).is_some_and(|w| w >= a.through)).map(|(s, _)| s.clone()).collect();
        for source in &done {
            self.0.remove(source);
        }
        done
    }

    pub fn remove(&mut self, source: &str) -> Option<Awaited> {
        self.0.remove(source)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Awaited)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_property(&self) -> String {
        serde_json::to_string(&self.0).expect("awaited ranges always serialise")
    }
}

/// What the table says has been committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedState {
    pub watermarks: Watermarks,
    /// Ids of recent commits (table properties) and of those whose snapshots are still in the lineage.
    pub commit_ids: Vec<String>,
    /// Ranges rolled back and awaited from a replay.
    pub awaiting: Awaiting,
}

impl CommittedState {
    pub fn read(table: &str, metadata: &TableMetadata) -> Result<Self, LakeError> {
        let unreadable = |detail: String| LakeError::Ledger { table: table.to_string(), detail };
        let mut state = CommittedState::default();
        let properties = metadata.properties();
        if let Some(raw) = properties.get(AWAITING_PROPERTY) {
            // Failing closed: without it, a rolled-back range could be bridged as a gap and lost.
            state.awaiting = serde_json::from_str(raw).map_err(|e| unreadable(format!("{AWAITING_PROPERTY}: {e}")))?;
        }
        if let Some(raw) = properties.get(RECENT_COMMITS_PROPERTY) {
            state.commit_ids = serde_json::from_str(raw).map_err(|e| unreadable(format!("{RECENT_COMMITS_PROPERTY}: {e}")))?;
        }
        let from_properties = match properties.get(WATERMARKS_PROPERTY) {
            Some(raw) => Some(serde_json::from_str(raw).map_err(|e| unreadable(format!("{WATERMARKS_PROPERTY}: {e}")))?),
            None => None,
        };
        let mut from_lineage = None;
        let mut next = metadata.current_snapshot_id();
        while let Some(id) = next {
            let Some(snapshot) = metadata.snapshot_by_id(id) else {
                if from_properties.is_some() {
                    // The ledger does not depend on the lineage; commit ids are only a convenience.
                    break;
                }
                return Err(unreadable(format!(
                    "snapshot {id} of the lineage is gone (expired?) before any snapshot carrying `{WATERMARKS_PROPERTY}` was found, \
                     and the table has no `{WATERMARKS_PROPERTY}` property; set that property to the last known watermarks to resume"
                )));
            };
            let props = &snapshot.summary().additional_properties;
            if let Some(commit_id) = props.get(COMMIT_ID_PROPERTY) {
                state.commit_ids.push(commit_id.clone());
            }
            if from_properties.is_none() && from_lineage.is_none() {
                if props.get(LEDGER_FORMAT_PROPERTY).is_some_and(|f| f == PARTIAL_SUMMARY) {
                    return Err(unreadable(format!(
                        "the table has no `{WATERMARKS_PROPERTY}` property, and snapshot {id}'s summary holds only the sources it advanced; \
                         set that property to the last known watermarks to resume"
                    )));
                }
                if let Some(raw) = props.get(WATERMARKS_PROPERTY) {
                    from_lineage = Some(serde_json::from_str(raw).map_err(|e| unreadable(format!("snapshot {id}: {WATERMARKS_PROPERTY}: {e}")))?);
                }
            }
            next = snapshot.parent_snapshot_id();
        }
        state.watermarks = from_properties.or(from_lineage).unwrap_or_default();
        Ok(state)
    }

    pub fn contains_commit(&self, commit_id: &str) -> bool {
        self.commit_ids.iter().any(|c| c == commit_id)
    }

    /// The `recent-commits` property after `commit_id` lands: newest last, bounded.
    pub fn recent_commits_with(&self, properties: &std::collections::HashMap<String, String>, commit_id: &str) -> String {
        let mut recent: Vec<String> = properties.get(RECENT_COMMITS_PROPERTY).and_then(|raw| serde_json::from_str(raw).ok()).unwrap_or_default();
        recent.push(commit_id.to_string());
        let excess = recent.len().saturating_sub(RECENT_COMMITS);
        recent.drain(..excess);
        serde_json::to_string(&recent).expect("strings serialise")
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

    #[test]
    fn recent_commits_stay_bounded() {
        let state = CommittedState::default();
        let mut props = std::collections::HashMap::new();
        for i in 0..(RECENT_COMMITS + 5) {
            let next = state.recent_commits_with(&props, &format!("c{i}"));
            props.insert(RECENT_COMMITS_PROPERTY.to_string(), next);
        }
        let recent: Vec<String> = serde_json::from_str(&props[RECENT_COMMITS_PROPERTY]).unwrap();
        assert_eq!(recent.len(), RECENT_COMMITS);
        assert_eq!(recent.last().map(String::as_str), Some("c104"));
        assert_eq!(recent.first().map(String::as_str), Some("c5"));
    }
}
