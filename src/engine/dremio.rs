//! The Dremio engine: the same queries as the embedded engine, in Dremio's SQL, over Flight SQL.
//!
//! Dremio binds no parameters, so each query's placeholders are replaced by escaped literals
//! ([`crate::dremio::sql::inline`]) just before it is sent. Answers are read from the same Arrow columns as
//! the embedded engine's; Dremio's TIMESTAMP is milliseconds (the embedded engine's microseconds are
//! truncated in its answers), everything else reads identically.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use async_trait::async_trait;
use iceberg::{Catalog, TableIdent};

use super::query_engine::{
    history_of, resolve_as_of, AsOf, Dialect, EngineError, Folded, Interval, QueryEngine, SnapshotInfo, SqlParam, SqlQuery, TableSnapshot,
};
use crate::dremio::sql::{self, Literal, TablePath};
use crate::dremio::{DremioError, FlightSqlClient, StatementKind};

/// Where the current snapshot id comes from.
pub enum SnapshotSource {
    /// Dremio's `table_history` (one small Dremio job per request that is not answered from memory).
    Dremio,
    /// The catalog this process also writes through (Nessie's REST API, or any shared catalog): no Dremio
    /// job, and the id is the catalog's own.
    Catalog { catalog: Arc<dyn Catalog>, ident: TableIdent },
}

pub struct DremioEngine {
    client: Arc<FlightSqlClient>,
    table: TablePath,
    snapshots: SnapshotSource,
    /// Read each answer `AT SNAPSHOT` the id its cache key names (off only for servers without Dremio's
    /// time travel, such as the tests' Flight SQL stand-in).
    pin_snapshots: bool,
}

impl DremioEngine {
    pub fn new(client: Arc<FlightSqlClient>, table: TablePath, snapshots: SnapshotSource, pin_snapshots: bool) -> Self {
        Self { client, table, snapshots, pin_snapshots }
    }
}

/// The table from the shared catalog (where snapshot ids come from with [`SnapshotSource::Catalog`]).
async fn load(catalog: &dyn Catalog, ident: &TableIdent) -> Result<iceberg::table::Table, EngineError> {
    catalog.load_table(ident).await.map_err(|e| EngineError::Unavailable(format!("loading {ident}: {e}")))
}

fn engine_error(e: DremioError) -> EngineError {
    if e.is_retryable() {
        EngineError::Unavailable(e.to_string())
    } else {
        EngineError::Query(e.to_string())
    }
}

fn literal(param: &SqlParam) -> Literal<'_> {
    match param {
        SqlParam::Text(s) => Literal::Text(s),
        SqlParam::Float(x) => Literal::Double(*x),
        SqlParam::Timestamp(t) => Literal::Timestamp(*t),
    }
}

/// The one BIGINT of a one-row answer (`None` for no row).
fn single_id(batches: &[RecordBatch]) -> Result<Option<i64>, EngineError> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(None) };
    let column = batch.column(0);
    let column = arrow_cast::cast(column, &arrow_schema::DataType::Int64).map_err(|e| EngineError::Shape(format!("snapshot id: {e}")))?;
    let ids = column.as_primitive::<Int64Type>();
    Ok(ids.is_valid(0).then(|| ids.value(0)))
}

fn as_of_literal(as_of: AsOf) -> sql::SnapshotRef {
    match as_of {
        AsOf::Snapshot(id) => sql::SnapshotRef::Id(id),
        AsOf::Time(at) => sql::SnapshotRef::CurrentAt(at),
    }
}

/// `table_history` rows (snapshot_id, parent_id, made_current_at) as history entries, newest first; Dremio's
/// history says nothing of operations, rows or sources.
fn history_rows(batches: &[RecordBatch]) -> Result<Vec<SnapshotInfo>, EngineError> {
    let column = |batch: &RecordBatch, name: &str, to: &arrow_schema::DataType| {
        let found = batch.column_by_name(name).ok_or_else(|| EngineError::Shape(format!("table_history has no {name}")))?;
        arrow_cast::cast(found, to).map_err(|e| EngineError::Shape(format!("table_history {name}: {e}")))
    };
    let mut out = Vec::new();
    for batch in batches {
        let millis = arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None);
        let (ids, parents, times) = (
            column(batch, "snapshot_id", &arrow_schema::DataType::Int64)?,
            column(batch, "parent_id", &arrow_schema::DataType::Int64)?,
            column(batch, "made_current_at", &millis)?,
        );
        let (ids, parents) = (ids.as_primitive::<Int64Type>(), parents.as_primitive::<Int64Type>());
        let times = times.as_primitive::<arrow_array::types::TimestampMillisecondType>();
        for row in 0..batch.num_rows() {
            out.push(SnapshotInfo {
                snapshot_id: ids.value(row),
                parent_id: parents.is_valid(row).then(|| parents.value(row)),
                committed_at: chrono::DateTime::from_timestamp_millis(times.value(row)).unwrap_or_default(),
                operation: String::new(),
                added_rows: None,
                total_rows: None,
                sources: Vec::new(),
                current: out.is_empty(),
            });
        }
    }
    Ok(out)
}

#[async_trait]
impl QueryEngine for DremioEngine {
    fn name(&self) -> &'static str {
        "dremio"
    }

    fn dialect(&self) -> &dyn Dialect {
        &DremioDialect
    }

    fn table_expr(&self, snapshot: &TableSnapshot) -> String {
        sql::table_at(&self.table, if self.pin_snapshots { snapshot.snapshot_id } else { None })
    }

    async fn current_snapshot(&self) -> Result<TableSnapshot, EngineError> {
        let snapshot_id = match &self.snapshots {
            SnapshotSource::Catalog { catalog, ident } => load(catalog.as_ref(), ident).await?.metadata().current_snapshot_id(),
            SnapshotSource::Dremio => {
                let batches = self.client.execute(&sql::current_snapshot(&self.table), StatementKind::Read).await.map_err(engine_error)?;
                single_id(&batches)?
            }
        };
        Ok(TableSnapshot::committed(self.table.parts().join("."), snapshot_id))
    }

    async fn snapshot_as_of(&self, as_of: AsOf) -> Result<TableSnapshot, EngineError> {
        let snapshot_id = match &self.snapshots {
            SnapshotSource::Catalog { catalog, ident } => resolve_as_of(load(catalog.as_ref(), ident).await?.metadata(), as_of)?,
            SnapshotSource::Dremio => {
                let statement = sql::snapshot_as_of(&self.table, as_of_literal(as_of));
                let batches = self.client.execute(&statement, StatementKind::Read).await.map_err(engine_error)?;
                single_id(&batches)?.ok_or_else(|| EngineError::UnknownSnapshot(format!("the table has no snapshot for as_of {as_of:?}")))?
            }
        };
        Ok(TableSnapshot::committed(self.table.parts().join("."), Some(snapshot_id)))
    }

    async fn history(&self) -> Result<Vec<SnapshotInfo>, EngineError> {
        match &self.snapshots {
            SnapshotSource::Catalog { catalog, ident } => Ok(history_of(load(catalog.as_ref(), ident).await?.metadata())),
            SnapshotSource::Dremio => {
                let batches = self.client.execute(&sql::history(&self.table), StatementKind::Read).await.map_err(engine_error)?;
                history_rows(&batches)
            }
        }
    }

    async fn execute(&self, _snapshot: &TableSnapshot, query: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError> {
        let values: Vec<Literal<'_>> = query.params.iter().map(literal).collect();
        let text = sql::inline(&query.text, &values).map_err(|e| EngineError::Query(e.to_string()))?;
        self.client.execute(&text, StatementKind::Read).await.map_err(engine_error)
    }

    /// From the rollup table beside the records table, when the catalog is shared (it says which rollup
    /// state covers the snapshot asked), that state covers it with nothing left to add (no appends waiting
    /// to be rolled up: Dremio cannot read them file by file) and the window is whole minutes (`days=`
    /// windows always are). Otherwise Dremio's SQL over raw rows answers.
    async fn partials(&self, snapshot: &TableSnapshot, scope: &crate::rollup::Scope) -> Result<Option<Folded>, EngineError> {
        let (SnapshotSource::Catalog { catalog, ident }, Some(at)) = (&self.snapshots, snapshot.snapshot_id) else {
            return Ok(None);
        };
        let rollup_ident = TableIdent::new(ident.namespace().clone(), crate::lake::rollup_table_name(ident.name()));
        let records = load(catalog.as_ref(), ident).await?;
        let Ok(rollup) = catalog.load_table(&rollup_ident).await else {
            return Ok(None);
        };
        let Ok(found) = crate::lake::rollup::base(records.metadata(), rollup.metadata(), at) else {
            return Ok(None);
        };
        let pieces = crate::rollup::pieces_from(scope.window.0, scope.window.1, scope.coarsest, found.minute_floor);
        // Unpinned, Dremio reads the rollup as it is now: only right when that is the state found.
        let readable = self.pin_snapshots || rollup.metadata().current_snapshot_id() == Some(found.rollup_snapshot);
        if !found.delta.is_empty() || pieces.iter().any(|p| p.grain.is_none()) || !readable {
            return Ok(None);
        }
        let last = self.table.parts().last().cloned().unwrap_or_default();
        let rollup_path = self.table.sibling(&crate::lake::rollup_table_name(&last));
        let pinned = self.pin_snapshots.then_some(found.rollup_snapshot);
        let statement = sql::rollup_rows(&rollup_path, pinned, &pieces, &scope.dimensions, scope.ticker.as_deref())
            .map_err(|e| EngineError::Query(e.to_string()))?;
        let batches = match self.client.execute(&statement, StatementKind::Read).await {
            Ok(batches) => batches,
            Err(e) if e.is_retryable() => return Err(engine_error(e)),
            // Dremio cannot read the rollup table (not in its catalog, an older Dremio): raw rows answer.
            Err(e) => {
                tracing::warn!(error = %e, table = %rollup_path, "Dremio could not read the rollup table; answering from raw rows.");
                return Ok(None);
            }
        };
        let mut partials = crate::rollup::Partials::default();
        for batch in &batches {
            if let Err(e) = crate::rollup::table::read_batch(batch, |key, measures| partials.merge_row(key, &measures)) {
                tracing::warn!(error = %e, table = %rollup_path, "Dremio returned rollup rows of another shape; answering from raw rows.");
                return Ok(None);
            }
        }
        Ok(Some(Folded { partials, path: "rollup".to_string() }))
    }
}

/// Dremio's SQL.
pub struct DremioDialect;

impl Dialect for DremioDialect {
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }

    fn time_bucket(&self, interval: Interval, column: &str) -> String {
        let unit = match interval {
            Interval::Minute => "MINUTE",
            Interval::Hour => "HOUR",
            Interval::Day => "DAY",
            Interval::Week => "WEEK",
        };
        format!("DATE_TRUNC('{unit}', {column})")
    }

    fn map_entries(&self, column: &str, key_alias: &str, value_alias: &str, table: &str, filter: &str) -> String {
        // FLATTEN takes lists: flatten the map's keys and look each one up in its own row's map.
        format!(
            "(SELECT entry_key AS {key_alias}, entry_map[entry_key] AS {value_alias} \
             FROM (SELECT FLATTEN(MAP_KEYS({column})) AS entry_key, {column} AS entry_map FROM {table} WHERE {filter}) keyed)"
        )
    }

    fn list_elements(&self, column: &str, alias: &str) -> String {
        format!("FLATTEN({column}) AS {alias}")
    }

    fn struct_field(&self, expr: &str, field: &str) -> String {
        format!("{expr}['{field}']")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::query::{Query, QueryKind, QueryService, QueryServiceConfig};

    /// Records the Dremio SQL of each statement, as it would be sent. Statements without GROUP BY or
    /// ORDER BY are the aggregates that always return one row: they get one row with every aggregate column
    /// the queries read, so the statements after them are reached too; the others get no rows.
    struct Recorder {
        table: TablePath,
        sent: Mutex<Vec<String>>,
    }

    fn one_aggregate_row() -> RecordBatch {
        let ints = ["message_count", "positive", "negative", "neutral", "scored", "flagged"];
        let floats = ["average_score", "average_magnitude", "average_toxicity"];
        let mut fields: Vec<Field> = ints.iter().map(|n| Field::new(*n, DataType::Int64, false)).collect();
        fields.extend(floats.iter().map(|n| Field::new(*n, DataType::Float64, true)));
        let mut columns: Vec<arrow_array::ArrayRef> = ints.iter().map(|_| Arc::new(Int64Array::from(vec![1])) as _).collect();
        columns.extend(floats.iter().map(|_| Arc::new(Float64Array::from(vec![0.5])) as _));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[async_trait]
    impl QueryEngine for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn dialect(&self) -> &dyn Dialect {
            &DremioDialect
        }
        fn table_expr(&self, snapshot: &TableSnapshot) -> String {
            sql::table_at(&self.table, snapshot.snapshot_id)
        }
        async fn current_snapshot(&self) -> Result<TableSnapshot, EngineError> {
            Ok(TableSnapshot::committed("t", Some(77)))
        }
        async fn snapshot_as_of(&self, _: AsOf) -> Result<TableSnapshot, EngineError> {
            self.current_snapshot().await
        }
        async fn history(&self) -> Result<Vec<SnapshotInfo>, EngineError> {
            Ok(Vec::new())
        }
        async fn execute(&self, _: &TableSnapshot, query: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError> {
            let values: Vec<Literal<'_>> = query.params.iter().map(literal).collect();
            let text = sql::inline(&query.text, &values).map_err(|e| EngineError::Query(e.to_string()))?;
            let aggregate = !text.contains("GROUP BY") && !text.contains("ORDER BY");
            self.sent.lock().unwrap().push(text);
            Ok(if aggregate { vec![one_aggregate_row()] } else { Vec::new() })
        }
    }

    /// Every statement of every API query in Dremio's SQL, pinned in `dremio_queries.golden.sql`
    /// (regenerate with `UPDATE_GOLDEN=1`).
    #[tokio::test]
    async fn golden_dremio_queries() {
        let recorder = Arc::new(Recorder { table: TablePath::parse("nessie.sentiment.sentiment_records").unwrap(), sent: Mutex::new(Vec::new()) });
        let service = QueryService::new(recorder.clone(), None, QueryServiceConfig::default());
        let now = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap();
        let window = "from=2026-03-02T00:00:00Z&to=2026-03-09T00:00:00Z";
        let strings = [
            (QueryKind::TopTickers, format!("{window}&limit=5")),
            (QueryKind::TimeSeries, format!("ticker=AAPL&interval=hour&{window}")),
            (QueryKind::Summary, format!("ticker=AAPL&{window}")),
            (QueryKind::Entities, format!("ticker=AAPL&entity_type=ORG&{window}")),
            (QueryKind::Aspects, format!("ticker=AAPL&{window}")),
            (QueryKind::Toxicity, format!("min_toxicity=0.7&{window}")),
            (QueryKind::Intents, window.to_string()),
            (QueryKind::Records, format!("ticker=AAPL&source_system=o'brien%20wire&min_score=-0.5&max_score=0.75&{window}&limit=2")),
        ];
        for (kind, string) in &strings {
            let query = Query::parse(*kind, Some(string), now).unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            service.answer(&query).await.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
        let rendered = recorder.sent.lock().unwrap().join("\n\n") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine/dremio_queries.golden.sql");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let golden = std::fs::read_to_string(path).unwrap_or_default();
        for (got, want) in rendered.split("\n\n").zip(golden.split("\n\n")) {
            assert_eq!(got, want);
        }
        assert_eq!(rendered, golden);
    }
}
