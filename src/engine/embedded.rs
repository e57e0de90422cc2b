//! The embedded engine: DataFusion over the Iceberg table ([`super::scan`]).
//!
//! Filters on `event_timestamp`, `ticker` and `source_system` are pushed into the Iceberg scan, which prunes
//! manifests and data files by partition (day, ticker, source) and column statistics before any Parquet is
//! read. Parameters are bound through DataFusion's placeholders; the SQL text never contains caller data.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::scalar::ScalarValue;
use iceberg::table::Table;
use iceberg::{Catalog, TableIdent};
use metrics::counter;
use tokio::sync::Mutex;

use crate::lake::tail::{Receipt, Tail, TailReader};
use crate::lake::{LakeError, MetadataPointer};

use super::query_engine::{
    history_of, resolve_as_of, AsOf, Dialect, EngineError, Folded, Interval, QueryEngine, SnapshotInfo, SqlParam, SqlQuery, TableSnapshot,
};
use super::scan::SnapshotTable;

/// The name the table is registered under inside each DataFusion session.
const TABLE_NAME: &str = "sentiment_records";
/// With a tail, the snapshot's rows and the staged rows, of which [`TABLE_NAME`] is the union.
const COMMITTED_NAME: &str = "committed_records";
const STAGED_NAME: &str = "staged_records";
/// Iceberg `timestamptz` columns surface in Arrow with this zone; parameters must carry the same one.
const UTC_ZONE: &str = "+00:00";
/// What all queries of a process may hold at once in DataFusion's memory pool (hash tables of group-bys,
/// sorts). A Functions instance has 2 GB; ingestion and the committer need the rest.
pub const DEFAULT_MEMORY_LIMIT: usize = 512 * 1024 * 1024;

pub struct EmbeddedEngine {
    catalog: Arc<dyn Catalog>,
    ident: TableIdent,
    /// One pool for every session, so the limit holds for the process, not per snapshot.
    runtime: Arc<RuntimeEnv>,
    memory_limit: usize,
    /// The session for the most recently read snapshot (and tail). Sessions are cheap, but building the
    /// provider reads table metadata; consecutive queries at one snapshot (the common case) share it.
    session: Mutex<Option<(String, SessionContext)>>,
    /// The table as last loaded by [`QueryEngine::current_snapshot`], so `execute` need not load it again.
    latest: Mutex<Option<Table>>,
    /// Tells whether the table moved since `latest` was loaded, without loading it again; `None`: every
    /// lookup of the current snapshot loads the table.
    pointer: Option<Arc<dyn MetadataPointer>>,
    /// The rollup table answers aggregates when set ([`EmbeddedEngine::with_rollups`]), and the rollup
    /// table as last loaded.
    rollup: Option<TableIdent>,
    rollup_latest: Mutex<Option<Table>>,
    /// Reads what is staged above the snapshot ([`EmbeddedEngine::with_tail`]).
    tail: Option<TailState>,
}

/// The tail as last planned, shared by every request of the instance for [`TAIL_MAX_AGE`].
struct TailState {
    reader: TailReader,
    /// The last plan: when, after how many of this process's own staging changes, and the snapshot.
    latest: Mutex<Option<(std::time::Instant, u64, TableSnapshot)>>,
}

/// How long one listing of the staged entries serves every request of an instance: what bounds the storage
/// calls of answers (one listing a second), and the most an acknowledged event waits beyond it.
pub const TAIL_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(1000);

/// How many times the tail is planned again when a summary it listed is gone (committed meanwhile).
const TAIL_ATTEMPTS: usize = 3;

/// Answers read at most this many data files not yet rolled up; beyond it (the rollup far behind) the
/// SQL answers instead.
pub const MAX_DELTA_FILES: usize = 512;

impl EmbeddedEngine {
    /// An engine whose queries together hold at most `memory_limit` bytes in DataFusion's pool; a query
    /// that would need more fails (answered 503) instead of exhausting the instance.
    pub fn new(catalog: Arc<dyn Catalog>, ident: TableIdent, memory_limit: usize) -> Result<Self, EngineError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(memory_limit, 1.0)
            .build_arc()
            .map_err(|e| EngineError::Query(format!("building the engine's runtime: {e}")))?;
        Ok(Self {
            catalog,
            ident,
            runtime,
            memory_limit,
            session: Mutex::new(None),
            latest: Mutex::new(None),
            pointer: None,
            rollup: None,
            rollup_latest: Mutex::new(None),
            tail: None,
        })
    }

    /// Answers that ask for it include what is staged above the snapshot, read by `reader`.
    pub fn with_tail(mut self, reader: TailReader) -> Self {
        self.tail = Some(TailState { reader, latest: Mutex::new(None) });
        self
    }

    /// The current snapshot with its tail, planned again once the last plan is [`TAIL_MAX_AGE`] old, the
    /// table has moved, this process has staged or committed since, or after a failure; one plan at a time
    /// (concurrent requests wait for it and share it). So an instance's own writes are in its next answer,
    /// and other instances' within a second.
    async fn snapshot_with_tail(&self, state: &TailState) -> Result<TableSnapshot, EngineError> {
        let current = self.current_snapshot().await?;
        let changes = state.reader.staged_changes();
        let mut latest = state.latest.lock().await;
        if let Some((at, planned_after, snapshot)) = latest.as_ref() {
            if at.elapsed() < TAIL_MAX_AGE && *planned_after == changes && snapshot.snapshot_id == current.snapshot_id {
                return Ok(snapshot.clone());
            }
        }
        let mut attempt = 0;
        let snapshot = loop {
            attempt += 1;
            // Listed first, then the metadata the snapshot is taken from (its watermarks say which staged
            // rows the snapshot lacks): see `TailReader::list`.
            let listing = state.reader.list().await.map_err(tail_error)?;
            let table = self.table_now().await?;
            let base = self.current_of(&table);
            let tail = match state.reader.plan(&listing, table.metadata()).await {
                Ok(tail) => tail,
                // The next listing and pointer read find the commit that took it.
                Err(LakeError::TailMoved(why)) if attempt < TAIL_ATTEMPTS => {
                    tracing::debug!(why, "The tail moved while it was planned; planning again.");
                    continue;
                }
                Err(e) => return Err(tail_error(e)),
            };
            let omitted = (tail.bytes() > state.reader.max_bytes()).then(|| {
                format!("{} bytes are staged above the snapshot, more than this instance reads ({})", tail.bytes(), state.reader.max_bytes())
            });
            let receipt = Receipt::of(table.metadata(), Some(tail.as_ref()), omitted.clone());
            let tail = (omitted.is_none() && !tail.entries.is_empty()).then_some(tail);
            counter!("sentiment_lake_query_tail_plans_total", "tail" => if tail.is_some() { "yes" } else { "no" }).increment(1);
            metrics::gauge!("sentiment_lake_query_tail_entries").set(receipt.tail.as_ref().map_or(0, |t| t.entries) as f64);
            metrics::gauge!("sentiment_lake_query_tail_bytes").set(receipt.tail.as_ref().map_or(0, |t| t.bytes) as f64);
            break TableSnapshot { tail, receipt: Some(Arc::new(receipt)), ..base };
        };
        *latest = Some((std::time::Instant::now(), changes, snapshot.clone()));
        Ok(snapshot)
    }

    /// The table the catalog points at now: the one last loaded while the catalog's pointer still names its
    /// metadata file (a cached answer then costs one catalog row and one cache lookup), loaded otherwise.
    async fn table_now(&self) -> Result<Table, EngineError> {
        if let Some(pointer) = &self.pointer {
            let location = pointer
                .metadata_location(&self.ident)
                .await
                .map_err(|e| EngineError::Unavailable(format!("reading {}'s metadata location: {e}", self.ident)))?;
            let latest = self.latest.lock().await.clone();
            let unchanged = match (location, latest) {
                (Some(location), Some(table)) if table.metadata_location() == Some(location.as_str()) => Some(table),
                _ => None,
            };
            counter!("sentiment_lake_query_snapshot_lookups_total", "outcome" => if unchanged.is_some() { "unchanged" } else { "reloaded" })
                .increment(1);
            if let Some(table) = unchanged {
                return Ok(table);
            }
        }
        let table = self.load_table().await?;
        *self.latest.lock().await = Some(table.clone());
        Ok(table)
    }

    /// A failure reading the tail as the engine says it; when its entries moved (committed meanwhile), the
    /// planned tail is forgotten first, so the answer asked again plans anew.
    async fn tail_failed(&self, e: LakeError) -> EngineError {
        if let (LakeError::TailMoved(_), Some(state)) = (&e, &self.tail) {
            *state.latest.lock().await = None;
        }
        tail_error(e)
    }

    /// The tail's rows as a table of the snapshot's schema.
    async fn tail_table(&self, tail: &Tail, schema: datafusion::arrow::datatypes::SchemaRef) -> Result<Arc<dyn TableProvider>, EngineError> {
        let Some(state) = &self.tail else {
            return Err(EngineError::Query("a tail was planned without a tail reader".into()));
        };
        let rows = match state.reader.rows(tail).await {
            Ok(rows) => rows,
            Err(e) => return Err(self.tail_failed(e).await),
        };
        let conformed = rows
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| crate::lake::table::compat::conform(b, &schema))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Query(format!("staged rows in another shape than the table's: {e}")))?;
        Ok(Arc::new(MemTable::try_new(schema, vec![conformed]).map_err(|e| EngineError::Query(e.to_string()))?))
    }

    /// Answer aggregates from the rollup table `rollup` (kept by the lake beside the records table) where
    /// it covers the snapshot asked, plus the raw rows it lacks.
    pub fn with_rollups(mut self, rollup: TableIdent) -> Self {
        self.rollup = Some(rollup);
        self
    }

    /// The rollup table, loaded again only when the catalog points at a newer metadata file.
    async fn rollup_table(&self, ident: &TableIdent) -> Result<Table, EngineError> {
        let location = match &self.pointer {
            Some(pointer) => {
                pointer.metadata_location(ident).await.map_err(|e| EngineError::Unavailable(format!("reading {ident}'s metadata location: {e}")))?
            }
            None => None,
        };
        let mut latest = self.rollup_latest.lock().await;
        if let (Some(location), Some(table)) = (location, latest.as_ref()) {
            if table.metadata_location() == Some(location.as_str()) {
                return Ok(table.clone());
            }
        }
        let table = self.catalog.load_table(ident).await.map_err(|e| EngineError::Unavailable(format!("loading {ident}: {e}")))?;
        *latest = Some(table.clone());
        Ok(table)
    }

    /// The records table holding `snapshot_id`: the one last loaded if it does.
    async fn records_table(&self, snapshot_id: i64) -> Result<Table, EngineError> {
        let cached = self.latest.lock().await.clone();
        match cached {
            Some(table) if table.metadata().snapshot_by_id(snapshot_id).is_some() => Ok(table),
            _ => self.load_table().await,
        }
    }

    /// Learn of commits from the catalog's metadata pointer: while it still names the metadata file last
    /// loaded, the current snapshot is known without reading or parsing that file (a cached answer then
    /// costs one catalog row and one cache lookup).
    pub fn with_pointer(mut self, pointer: Arc<dyn MetadataPointer>) -> Self {
        self.pointer = Some(pointer);
        self
    }

    fn current_of(&self, table: &Table) -> TableSnapshot {
        let receipt = Receipt::of(table.metadata(), None, None);
        TableSnapshot { receipt: Some(Arc::new(receipt)), ..TableSnapshot::committed(self.ident.to_string(), table.metadata().current_snapshot_id()) }
    }

    fn query_error(&self, e: DataFusionError) -> EngineError {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(detail) => EngineError::Unavailable(format!(
                "the query needs more memory than the engine's pool of {} MiB allows ({detail}); narrow the window or raise --query-memory-mb",
                self.memory_limit / (1024 * 1024)
            )),
            _ => EngineError::Query(e.to_string()),
        }
    }

    async fn load_table(&self) -> Result<Table, EngineError> {
        self.catalog.load_table(&self.ident).await.map_err(|e| EngineError::Unavailable(format!("loading {}: {e}", self.ident)))
    }

    async fn session_for(&self, snapshot: &TableSnapshot) -> Result<SessionContext, EngineError> {
        let snapshot_id = snapshot.snapshot_id;
        let state = snapshot.state_key();
        // Not held while a session is built (reading staged rows can take a while): concurrent requests for
        // other states go on, and two for the same new state may each build one.
        if let Some((key, ctx)) = self.session.lock().await.as_ref() {
            if *key == state {
                return Ok(ctx.clone());
            }
        }
        let cached = self.latest.lock().await.clone();
        let table = match cached {
            Some(table) if snapshot_id.is_none_or(|id| table.metadata().snapshot_by_id(id).is_some()) => table,
            _ => self.load_table().await?,
        };
        let opened = |e: iceberg::Error| EngineError::Unavailable(format!("opening snapshot {snapshot_id:?}: {e}"));
        let provider: Arc<dyn TableProvider> = match snapshot_id {
            Some(id) => Arc::new(SnapshotTable::new(table, Some(id)).map_err(opened)?),
            // The table had no commits when the snapshot was taken: empty, even if rows have landed since.
            None => {
                let schema = SnapshotTable::new(table, None).map_err(opened)?.schema();
                Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(|e| EngineError::Query(e.to_string()))?)
            }
        };
        let config = SessionConfig::new().with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        let query_error = |e: DataFusionError| EngineError::Query(e.to_string());
        match &snapshot.tail {
            None => {
                ctx.register_table(TABLE_NAME, provider).map_err(query_error)?;
            }
            // The committed rows and the staged ones as one table: filters reach the snapshot's scan
            // through the union, so its pruning is kept.
            Some(tail) => {
                let staged = self.tail_table(tail, provider.schema()).await?;
                ctx.register_table(COMMITTED_NAME, provider).map_err(query_error)?;
                ctx.register_table(STAGED_NAME, staged).map_err(query_error)?;
                let union = ctx.sql(&format!("SELECT * FROM {COMMITTED_NAME} UNION ALL SELECT * FROM {STAGED_NAME}")).await.map_err(query_error)?;
                ctx.register_table(TABLE_NAME, union.into_view()).map_err(query_error)?;
            }
        }
        *self.session.lock().await = Some((state, ctx.clone()));
        Ok(ctx)
    }
}

/// The table at its current snapshot as the embedded engine reads it ([`SnapshotTable`]), for serving it
/// from another DataFusion session, such as a Flight SQL server.
pub async fn table_provider(table: Table) -> Result<Arc<dyn TableProvider>, EngineError> {
    let provider = SnapshotTable::new(table, None).map_err(|e| EngineError::Unavailable(format!("opening the table: {e}")))?;
    Ok(Arc::new(provider))
}

fn scalar(param: &SqlParam) -> ScalarValue {
    match param {
        SqlParam::Text(s) => ScalarValue::Utf8(Some(s.clone())),
        SqlParam::Float(x) => ScalarValue::Float64(Some(*x)),
        SqlParam::Timestamp(t) => ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some(Arc::from(UTC_ZONE))),
    }
}

#[async_trait]
impl QueryEngine for EmbeddedEngine {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn dialect(&self) -> &dyn Dialect {
        &DataFusionDialect
    }

    fn table_expr(&self, _snapshot: &TableSnapshot) -> String {
        TABLE_NAME.to_string()
    }

    async fn current_snapshot(&self) -> Result<TableSnapshot, EngineError> {
        Ok(self.current_of(&self.table_now().await?))
    }

    async fn fresh_snapshot(&self) -> Result<TableSnapshot, EngineError> {
        match &self.tail {
            Some(state) => self.snapshot_with_tail(state).await,
            None => self.current_snapshot().await,
        }
    }

    async fn snapshot_as_of(&self, as_of: AsOf) -> Result<TableSnapshot, EngineError> {
        let table = self.load_table().await?;
        let snapshot_id = resolve_as_of(table.metadata(), as_of)?;
        let receipt = Receipt::past(table.metadata(), snapshot_id);
        Ok(TableSnapshot { receipt: Some(Arc::new(receipt)), ..TableSnapshot::committed(self.ident.to_string(), Some(snapshot_id)) })
    }

    async fn history(&self) -> Result<Vec<SnapshotInfo>, EngineError> {
        Ok(history_of(self.load_table().await?.metadata()))
    }

    async fn execute(&self, snapshot: &TableSnapshot, query: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError> {
        let ctx = self.session_for(snapshot).await?;
        // Read-only by construction: no DDL, DML or SET statements even if a query were malformed.
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let frame = ctx.sql_with_options(&query.text, options).await.map_err(|e| self.query_error(e))?;
        let frame = if query.params.is_empty() {
            frame
        } else {
            let values: Vec<ScalarValue> = query.params.iter().map(scalar).collect();
            frame.with_param_values(ParamValues::from(values)).map_err(|e| self.query_error(e))?
        };
        frame.collect().await.map_err(|e| self.query_error(e))
    }

    async fn partials(&self, snapshot: &TableSnapshot, scope: &crate::rollup::Scope) -> Result<Option<Folded>, EngineError> {
        let (Some(rollup_ident), Some(at)) = (&self.rollup, snapshot.snapshot_id) else {
            return Ok(None);
        };
        let (records, rollup) = (self.records_table(at).await?, self.rollup_table(rollup_ident).await?);
        let answered = crate::lake::rollup::answer_partials(&records, &rollup, at, scope, MAX_DELTA_FILES).await.map_err(|e| {
            if e.is_retryable() {
                EngineError::Unavailable(e.to_string())
            } else {
                EngineError::Query(e.to_string())
            }
        })?;
        let Some((mut partials, from)) = answered else {
            return Ok(None);
        };
        counter!("sentiment_lake_query_rollup_answers_total", "delta" => if from.delta_files > 0 { "yes" } else { "no" }).increment(1);
        let mut path = if from.delta_files > 0 { "rollup+delta".to_string() } else { "rollup".to_string() };
        if let (Some(tail), Some(state)) = (&snapshot.tail, &self.tail) {
            match state.reader.partials(tail, scope).await {
                Ok(staged) => partials.merge(staged),
                Err(e) => return Err(self.tail_failed(e).await),
            }
            path.push_str("+tail");
        }
        Ok(Some(Folded { partials, path }))
    }
}

fn tail_error(e: LakeError) -> EngineError {
    match e {
        LakeError::TailMoved(why) => EngineError::Moved(why),
        e if e.is_retryable() => EngineError::Unavailable(e.to_string()),
        e => EngineError::Query(e.to_string()),
    }
}

/// DataFusion's SQL.
pub struct DataFusionDialect;

impl Dialect for DataFusionDialect {
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }

    fn time_bucket(&self, interval: Interval, column: &str) -> String {
        format!("date_trunc('{}', {column})", interval.as_str())
    }

    fn map_entries(&self, column: &str, key_alias: &str, value_alias: &str, table: &str, filter: &str) -> String {
        // Two unnests in one select list are zipped element by element, and a map's keys and values are
        // stored in the same order, so each key meets its own value.
        format!("(SELECT unnest(map_keys({column})) AS {key_alias}, unnest(map_values({column})) AS {value_alias} FROM {table} WHERE {filter})")
    }

    fn list_elements(&self, column: &str, alias: &str) -> String {
        format!("unnest({column}) AS {alias}")
    }

    fn struct_field(&self, expr: &str, field: &str) -> String {
        format!("get_field({expr}, '{field}')")
    }
}
