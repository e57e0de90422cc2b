//! Query engines behind one narrow trait. The query service ([`crate::query`]) writes each query once, in
//! SQL with typed parameters; the places where engines' SQL differs (time buckets, map and list flattening,
//! struct fields, how the table is named at a snapshot) go through the engine's [`Dialect`].
//!
//! Every answer is computed at an explicit snapshot: [`QueryEngine::current_snapshot`] says which snapshot is
//! current, and [`QueryEngine::execute`] reads exactly that one. The cache keys answers by that id, so an
//! answer is never served for a table state it was not computed from. Aggregates may instead come as partials
//! ([`QueryEngine::partials`]) from the rollup table where it covers the snapshot asked. A snapshot may carry
//! the staged rows above it ([`QueryEngine::fresh_snapshot`], [`crate::lake::tail`]): the embedded engine
//! adds their summaries to partials and their rows to its SQL's table, and the cache key names both.

mod dremio;
mod embedded;
mod query_engine;
mod scan;

pub use self::dremio::{DremioDialect, DremioEngine, SnapshotSource};
pub use self::embedded::{table_provider, EmbeddedEngine, DEFAULT_MEMORY_LIMIT, MAX_DELTA_FILES};
pub use self::query_engine::{
    history_of, resolve_as_of, AsOf, Dialect, EngineError, Folded, Interval, QueryEngine, SnapshotInfo, SqlParam, SqlQuery, TableSnapshot,
};
