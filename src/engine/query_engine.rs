//! What an engine is asked and answers: the trait, its SQL with typed parameters, the dialect points where
//! engines differ, snapshots and time travel.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::lake::tail::{Receipt, Tail};

/// Time-series bucket width. Buckets start at UTC boundaries; weeks start on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Minute,
    Hour,
    Day,
    Week,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Minute => "minute",
            Interval::Hour => "hour",
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Interval::Minute => Duration::minutes(1),
            Interval::Hour => Duration::hours(1),
            Interval::Day => Duration::days(1),
            Interval::Week => Duration::weeks(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The catalog or storage could not be reached: worth retrying later.
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// The engine rejected or failed the query.
    #[error("query failed: {0}")]
    Query(String),
    /// The engine answered with columns of unexpected types.
    #[error("unexpected result shape: {0}")]
    Shape(String),
    /// `as_of` names no snapshot the table still has (unknown, expired, or before its first commit).
    #[error("{0}")]
    UnknownSnapshot(String),
    /// Staged rows the answer was reading were committed meanwhile: answer again from a newer snapshot.
    #[error("{0}")]
    Moved(String),
}

/// A past state of the table to answer from: a snapshot id, or the snapshot that was current at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Snapshot(i64),
    Time(DateTime<Utc>),
}

/// One entry of the table's history, as `/api/sentiment/snapshots` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub committed_at: DateTime<Utc>,
    /// `append`, `replace` (compaction), `overwrite`, `delete`; empty when the engine does not say.
    pub operation: String,
    /// Rows the commit added, and the table's rows after it, when the snapshot summary records them.
    pub added_rows: Option<i64>,
    pub total_rows: Option<i64>,
    /// Ingestion sources (Event Hubs partitions, migrated files) whose watermark the commit advanced.
    pub sources: Vec<String>,
    /// Whether it is the table's current snapshot.
    pub current: bool,
}

/// The snapshot `as_of` names in `metadata`: the id itself if the table still has it, or for an instant the
/// snapshot the main branch pointed at then (its snapshot log, which records rollbacks too). An instant the
/// log cannot vouch for is unknown, never answered from a neighbour: one before the log's first entry, one
/// whose entry names an expired snapshot, and one followed by an entry whose parent expired (a log written
/// by an expiry that took entries out of its middle: the expired snapshot may have been current then).
pub fn resolve_as_of(metadata: &iceberg::spec::TableMetadata, as_of: AsOf) -> Result<i64, EngineError> {
    match as_of {
        AsOf::Snapshot(id) if metadata.snapshot_by_id(id).is_some() => Ok(id),
        AsOf::Snapshot(id) => Err(EngineError::UnknownSnapshot(format!("the table has no snapshot {id} (unknown or expired)"))),
        AsOf::Time(at) => {
            let log = metadata.history();
            let at_ms = at.timestamp_millis();
            let begins = log.first().and_then(|e| DateTime::from_timestamp_millis(e.timestamp_ms));
            let unknown = |why: String| EngineError::UnknownSnapshot(why);
            let Some(index) = log.iter().rposition(|entry| entry.timestamp_ms <= at_ms) else {
                return Err(unknown(match begins {
                    Some(begins) => format!("the table's history begins at {begins}; it cannot say what it held at {at}"),
                    None => format!("the table had no snapshot at {at} (before its first commit)"),
                }));
            };
            let entry = &log[index];
            if metadata.snapshot_by_id(entry.snapshot_id).is_none() {
                return Err(unknown(format!("snapshot {} was current at {at} and has expired", entry.snapshot_id)));
            }
            // A newer commit follows whose parent is neither this snapshot nor still known: that parent was
            // committed in between and was current for part of the time (a move back by a rollback is not a
            // new commit and says nothing of the kind).
            let next_parent_expired = log
                .get(index + 1)
                .and_then(|next| metadata.snapshot_by_id(next.snapshot_id))
                .filter(|next| next.timestamp_ms() > entry.timestamp_ms)
                .and_then(|next| next.parent_snapshot_id())
                .is_some_and(|parent| parent != entry.snapshot_id && metadata.snapshot_by_id(parent).is_none());
            if next_parent_expired {
                return Err(unknown(format!("a snapshot current around {at} has expired; the table's history cannot say which it was")));
            }
            Ok(entry.snapshot_id)
        }
    }
}

/// The table's snapshots, newest first.
pub fn history_of(metadata: &iceberg::spec::TableMetadata) -> Vec<SnapshotInfo> {
    let current = metadata.current_snapshot_id();
    let mut snapshots: Vec<SnapshotInfo> = metadata
        .snapshots()
        .map(|s| {
            let summary = s.summary();
            let number = |key: &str| summary.additional_properties.get(key).and_then(|v| v.parse().ok());
            let sources = crate::lake::summary_watermarks(s).map(|w| w.iter().map(|(source, _)| source.to_string()).collect()).unwrap_or_default();
            SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                committed_at: DateTime::from_timestamp_millis(s.timestamp_ms()).unwrap_or_default(),
                operation: summary.operation.as_str().to_string(),
                added_rows: number("added-records"),
                total_rows: number("total-records"),
                sources,
                current: Some(s.snapshot_id()) == current,
            }
        })
        .collect();
    snapshots.sort_by(|a, b| b.committed_at.cmp(&a.committed_at).then(b.snapshot_id.cmp(&a.snapshot_id)));
    snapshots
}

/// A value bound to a placeholder. Only these types ever reach an engine.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Text(String),
    Float(f64),
    Timestamp(DateTime<Utc>),
}

/// SQL text whose values are all placeholders, plus the values.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlQuery {
    pub text: String,
    pub params: Vec<SqlParam>,
}

/// The snapshot a set of queries reads (`snapshot_id` is `None` for a table with no commits yet), with the
/// staged rows above it when the answer includes them ([`crate::lake::tail`]), and what it includes.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub table: String,
    pub snapshot_id: Option<i64>,
    pub tail: Option<Arc<Tail>>,
    pub receipt: Option<Arc<Receipt>>,
}

impl TableSnapshot {
    /// A committed snapshot alone.
    pub fn committed(table: impl Into<String>, snapshot_id: Option<i64>) -> Self {
        Self { table: table.into(), snapshot_id, tail: None, receipt: None }
    }

    /// What names exactly the data read: the snapshot, and the tail's entries when there is one.
    pub fn state_key(&self) -> String {
        let snapshot = self.snapshot_id.map_or_else(|| "empty".to_string(), |id| id.to_string());
        match &self.tail {
            Some(tail) => format!("{snapshot}+{}", tail.key),
            None => snapshot,
        }
    }
}

impl PartialEq for TableSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table && self.state_key() == other.state_key()
    }
}

impl Eq for TableSnapshot {}

/// Partial aggregates of a window, and which path produced them (`meta.path`: `rollup`, or
/// `rollup+delta` when appends not yet rolled up were read from their files).
#[derive(Debug, Clone)]
pub struct Folded {
    pub partials: crate::rollup::Partials,
    pub path: String,
}

/// Where engines' SQL differs.
pub trait Dialect: Send + Sync {
    /// The placeholder for the `index`-th parameter (1-based).
    fn placeholder(&self, index: usize) -> String;
    /// An expression truncating `column` (a UTC timestamp) to the start of its bucket.
    fn time_bucket(&self, interval: Interval, column: &str) -> String;
    /// A parenthesized subquery (no alias) with one row per map entry of `column` in the rows of `table`
    /// matching `filter`, as columns `key_alias` and `value_alias` (rows with empty or null maps give none).
    fn map_entries(&self, column: &str, key_alias: &str, value_alias: &str, table: &str, filter: &str) -> String;
    /// A select-list item that turns each row into one row per list element, named `alias`.
    fn list_elements(&self, column: &str, alias: &str) -> String;
    /// A struct member of `expr`.
    fn struct_field(&self, expr: &str, field: &str) -> String;
}

/// A query engine over the sentiment table.
#[async_trait]
pub trait QueryEngine: Send + Sync {
    /// Short name for logs, metrics and cache keys (`embedded`, `dremio`).
    fn name(&self) -> &'static str;
    fn dialect(&self) -> &dyn Dialect;
    /// The table name to use in `FROM` for queries at `snapshot`.
    fn table_expr(&self, snapshot: &TableSnapshot) -> String;
    /// The table's current snapshot.
    async fn current_snapshot(&self) -> Result<TableSnapshot, EngineError>;
    /// The current snapshot and what is staged above it, for answers that include staged rows; engines
    /// that cannot read staged rows answer from the snapshot alone (its receipt says so).
    async fn fresh_snapshot(&self) -> Result<TableSnapshot, EngineError> {
        self.current_snapshot().await
    }
    /// The snapshot `as_of` names (time travel).
    async fn snapshot_as_of(&self, as_of: AsOf) -> Result<TableSnapshot, EngineError>;
    /// The table's snapshots, newest first.
    async fn history(&self) -> Result<Vec<SnapshotInfo>, EngineError>;
    /// Runs `query` against exactly `snapshot`.
    async fn execute(&self, snapshot: &TableSnapshot, query: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError>;
    /// The partial aggregates answering `scope` at exactly `snapshot`, from the rollup table and the
    /// raw rows it lacks; `None` when this engine has no rollups for that snapshot (the SQL answers then).
    async fn partials(&self, _snapshot: &TableSnapshot, _scope: &crate::rollup::Scope) -> Result<Option<Folded>, EngineError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_stay_object_safe() {
        fn _takes(_: &dyn QueryEngine, _: &dyn Dialect) {}
    }
}
