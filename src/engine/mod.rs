//! Query engines behind one narrow trait. The query service ([`crate::query`]) writes each query once, in
//! SQL with typed parameters; the places where engines' SQL differs (time buckets, map and list flattening,
//! struct fields, how the table is named at a snapshot) go through the engine's [`Dialect`].
//!
//! Every answer is computed at an explicit snapshot: [`QueryEngine::current_snapshot`] says which snapshot is
//! current, and [`QueryEngine::execute`] reads exactly that one. The cache keys answers by that id, so an
//! answer is never served for a table state it was not computed from.

mod dremio;
mod embedded;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

pub use self::dremio::{DremioDialect, DremioEngine, SnapshotSource};
pub use self::embedded::{table_provider, EmbeddedEngine, DEFAULT_MEMORY_LIMIT};

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

/// The snapshot a set of queries reads. `snapshot_id` is `None` for a table with no commits yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSnapshot {
    pub table: String,
    pub snapshot_id: Option<i64>,
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
    /// Runs `query` against exactly `snapshot`.
    async fn execute(&self, snapshot: &TableSnapshot, query: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_stay_object_safe() {
        fn _takes(_: &dyn QueryEngine, _: &dyn Dialect) {}
    }
}
