//! `--writer dremio`: the records table is written by Dremio (the seed's Phase 2 design, over Flight SQL
//! instead of JDBC). Each pass of staged segments becomes one Parquet file in the warehouse, which one
//! insert-only `MERGE` keyed by `message_id` folds into the table ([`sql::merge_insert`]).
//!
//! Exactly once rests on the key, not on a ledger: Dremio's commits carry no properties of ours, so there
//! are no watermarks here. Rows are de-duplicated by `message_id` within the pass first; the MERGE inserts
//! only ids the table does not hold, so repeating it after an unknown outcome (or a redelivered batch)
//! inserts nothing twice. The row count Dremio reports is checked against the staged count. Staged
//! entries are deleted only after the MERGE succeeded. A concurrent commit makes Dremio's MERGE fail
//! ("Concurrent operation has updated the table"): it is retried with back-off.
//!
//! Under this writer two different events sharing a `message_id` are one row (the seed's key); the direct
//! writer keeps both.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, BooleanArray, RecordBatch};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::client::{FlightSqlClient, StatementKind};
use super::error::DremioError;
use super::sql::{self, TablePath, TimeRange};
use crate::lake::commit::{load_pass, tidy_listing, CommitContext, CommitReport, StagedWriter};
use crate::lake::stage::{next_pass, Awaiting, PassPlan, Watermarks};
use crate::lake::LakeError;
use crate::schema::column as c;

/// Where the MERGE's input is staged, relative to the warehouse root.
pub const DREMIO_STAGING_DIR: &str = "_dremio_staging";

/// How records reach the table through Dremio.
pub struct DremioWriter {
    pub client: Arc<FlightSqlClient>,
    /// The records table as Dremio names it (`nessie.sentiment.sentiment_records`).
    pub table: TablePath,
    /// The warehouse root as Dremio names it: a filesystem source (with sub-folders) over the same storage,
    /// through which Dremio reads the staged Parquet files.
    pub warehouse: TablePath,
}

impl std::fmt::Debug for DremioWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DremioWriter").field("table", &self.table.to_string()).field("warehouse", &self.warehouse.to_string()).finish()
    }
}

#[async_trait::async_trait]
impl StagedWriter for DremioWriter {
    async fn commit_staged(&self, cx: &CommitContext<'_>) -> Result<CommitReport, LakeError> {
        commit_staged(cx, cx.warehouse, self).await
    }
}

impl From<DremioError> for LakeError {
    fn from(error: DremioError) -> Self {
        LakeError::Writer { writer: "dremio", retryable: error.is_retryable(), source: Box::new(error) }
    }
}

/// Commits everything staged for the records table through Dremio, in bounded passes.
async fn commit_staged(cx: &CommitContext<'_>, store: &Arc<dyn ObjectStore>, writer: &DremioWriter) -> Result<CommitReport, LakeError> {
    let started = Instant::now();
    let mut report = CommitReport { table: cx.target.name.clone(), ..CommitReport::default() };
    loop {
        let listing = tidy_listing(cx, &mut report).await?;
        // No watermarks: the key decides what is new. The planner still orders each source's ranges and
        // holds entries behind a gap for its grace period.
        let plan = next_pass(&listing, &Watermarks::default(), &Awaiting::default(), cx.policy.pass, Utc::now());
        report.waiting = plan.waiting;
        if plan.sources.is_empty() {
            break;
        }
        let more = plan.deferred > 0;
        let pass = merge_pass(cx, store, writer, plan).await?;
        report.absorb(&pass);
        if !more {
            break;
        }
    }
    report.latency = started.elapsed();
    Ok(report)
}

/// The rows of `parts` with the first occurrence of each `message_id`, and how many were dropped.
fn unique_by_message_id(parts: &[RecordBatch], schema: &arrow_schema::SchemaRef) -> Result<(RecordBatch, usize), LakeError> {
    let all = arrow_select::concat::concat_batches(schema, parts)?;
    let index = schema.index_of(c::MESSAGE_ID)?;
    let ids = arrow_cast::cast(all.column(index), &arrow_schema::DataType::Utf8)?;
    let ids = ids.as_string::<i32>();
    let mut seen = HashSet::with_capacity(ids.len());
    let keep: BooleanArray = (0..ids.len()).map(|i| Some(ids.is_valid(i) && seen.insert(ids.value(i)))).collect();
    let dropped = keep.false_count();
    Ok((arrow_select::filter::filter_record_batch(&all, &keep)?, dropped))
}

/// The span of `event_timestamp`, widened to whole milliseconds (Dremio's precision).
fn time_range(batch: &RecordBatch) -> Option<TimeRange> {
    let column = batch.column_by_name(c::EVENT_TIMESTAMP)?;
    let values = column.as_primitive_opt::<TimestampMicrosecondType>()?;
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for value in values.iter().flatten() {
        min = min.min(value);
        max = max.max(value);
    }
    if min > max {
        return None;
    }
    let millis = |micros: i64, up: bool| {
        let ms = if up { micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0) } else { micros.div_euclid(1000) };
        DateTime::<Utc>::from_timestamp_millis(ms)
    };
    Some(TimeRange { from: millis(min, false)?, to: millis(max, true)? })
}

fn parquet_bytes(batch: &RecordBatch) -> Result<Bytes, LakeError> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default()))
        .build();
    let mut buffer = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// Rows inserted, from the MERGE's one-row answer (`Rows Inserted`, or `Rows Merged` on some releases).
pub fn rows_inserted(batches: &[RecordBatch]) -> Result<u64, DremioError> {
    let Some(first) = batches.first() else { return Err(DremioError::Decode("the MERGE returned no result".into())) };
    let schema = first.schema();
    let index = ["Rows Inserted", "Rows Merged"]
        .iter()
        .find_map(|name| schema.index_of(name).ok())
        .or_else(|| (schema.fields().len() == 1 && schema.field(0).data_type().is_integer()).then_some(0))
        .ok_or_else(|| {
            DremioError::Decode(format!(
                "no row count in the MERGE's result (columns {:?})",
                schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            ))
        })?;
    let mut total = 0u64;
    for batch in batches {
        let counts = arrow_cast::cast(batch.column(index), &arrow_schema::DataType::Int64).map_err(|e| DremioError::Decode(e.to_string()))?;
        for count in counts.as_primitive::<arrow_array::types::Int64Type>().iter().flatten() {
            total = total.saturating_add(u64::try_from(count).map_err(|_| DremioError::Decode(format!("a negative row count {count}")))?);
        }
    }
    Ok(total)
}

async fn merge_pass(cx: &CommitContext<'_>, store: &Arc<dyn ObjectStore>, writer: &DremioWriter, plan: PassPlan) -> Result<CommitReport, LakeError> {
    let target = cx.target;
    let mut report = CommitReport { table: target.name.clone(), segments: plan.entries(), staged_bytes: plan.bytes(), ..CommitReport::default() };
    let (loaded, quarantined) = load_pass(cx, &plan).await?;
    report.quarantined = quarantined;
    // Only the table's own columns are merged (columns added to it later are not listed in the MERGE).
    let parts: Vec<RecordBatch> =
        loaded.into_iter().map(|l| crate::lake::table::compat::conform(&l.segment.rows, &target.arrow_schema)).collect::<Result<_, _>>()?;
    let schema = target.arrow_schema.clone();
    let (batch, in_pass_duplicates) =
        tokio::task::spawn_blocking(move || unique_by_message_id(&parts, &schema)).await.map_err(|e| LakeError::Task(e.to_string()))??;
    report.duplicates_dropped = in_pass_duplicates;
    if batch.num_rows() > 0 {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let file = format!("{commit_id}.parquet");
        let relative = format!("{DREMIO_STAGING_DIR}/{}/{file}", target.name);
        let encoded = {
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || parquet_bytes(&batch)).await.map_err(|e| LakeError::Task(e.to_string()))??
        };
        store.put(&Path::from(relative.as_str()), PutPayload::from(encoded)).await.map_err(|e| LakeError::storage("put", relative.as_str(), e))?;
        let staged = writer.warehouse.join([DREMIO_STAGING_DIR, target.name.as_str(), file.as_str()]);
        let columns: Vec<&str> = target.arrow_schema.fields().iter().map(|f| f.name().as_str()).collect();
        let source = sql::staged_select(&columns, &staged);
        let statement = sql::merge_insert(&writer.table, &source, &columns, c::MESSAGE_ID, time_range(&batch), c::EVENT_TIMESTAMP)?;
        let mut attempt = 0;
        let merged = loop {
            attempt += 1;
            match writer.client.execute(&statement, StatementKind::Idempotent).await {
                Err(DremioError::Conflict(detail)) if attempt < cx.policy.max_attempts => {
                    report.conflicts += 1;
                    crate::observability::CommitConflict { table: &target.name }.emit();
                    tracing::info!(table = %target.name, attempt, detail, "Dremio's MERGE met a concurrent commit; trying again.");
                    tokio::time::sleep(cx.policy.backoff(attempt)).await;
                }
                other => break other,
            }
        };
        report.attempts = attempt;
        // The next pass stages its own file; this one is not needed whatever the outcome.
        if let Err(e) = store.delete(&Path::from(relative.as_str())).await {
            tracing::debug!(path = relative, error = %e, "Could not delete a MERGE's staged file; orphan cleanup will.");
        }
        let inserted = rows_inserted(&merged?)?;
        let staged_rows = batch.num_rows() as u64;
        if inserted > staged_rows {
            return Err(DremioError::Decode(format!("Dremio reports {inserted} rows inserted from {staged_rows} staged")).into());
        }
        report.rows_committed = inserted as usize;
        report.duplicates_dropped += (staged_rows - inserted) as usize;
        report.snapshots = usize::from(inserted > 0);
        report.commit_id = Some(commit_id);
    }
    let paths: Vec<String> = plan.sources.iter().flat_map(|s| &s.entries).map(|e| e.path.clone()).collect();
    cx.staging.delete(&paths).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn batch(ids: &[&str], micros: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(c::MESSAGE_ID, DataType::Utf8, false),
            Field::new(c::EVENT_TIMESTAMP, DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(TimestampMicrosecondArray::from(micros.to_vec()).with_timezone("+00:00"))],
        )
        .unwrap()
    }

    #[test]
    fn keeps_the_first_row_of_each_message_id_across_segments() {
        let (a, b) = (batch(&["m1", "m2", "m1"], &[1, 2, 3]), batch(&["m2", "m3"], &[4, 5]));
        let (unique, dropped) = unique_by_message_id(&[a.clone(), b], &a.schema()).unwrap();
        let ids: Vec<&str> = unique.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!((ids, dropped), (vec!["m1", "m2", "m3"], 2));
        let times: Vec<i64> = unique.column(1).as_primitive::<TimestampMicrosecondType>().values().to_vec();
        assert_eq!(times, vec![1, 2, 5], "the first occurrence wins");
    }

    #[test]
    fn the_merge_range_covers_every_row_at_millisecond_precision() {
        let range = time_range(&batch(&["a", "b"], &[1_500_999, 1_000_001])).unwrap();
        assert_eq!(range.from.timestamp_micros(), 1_000_000);
        assert_eq!(range.to.timestamp_micros(), 1_501_000);
        assert!(time_range(&batch(&[], &[])).is_none());
    }

    #[test]
    fn the_row_count_is_read_from_dremios_answer() {
        let answer = |name: &str, n: i64| {
            let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![n]))]).unwrap()
        };
        assert_eq!(rows_inserted(&[answer("Rows Inserted", 7)]).unwrap(), 7);
        assert_eq!(rows_inserted(&[answer("Rows Merged", 3)]).unwrap(), 3);
        assert!(rows_inserted(&[]).is_err());
        assert!(rows_inserted(&[answer("Rows Inserted", -1)]).is_err());
        let two = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, false), Field::new("b", DataType::Utf8, false)]));
        let odd = RecordBatch::try_new(two, vec![Arc::new(StringArray::from(vec!["x"])), Arc::new(StringArray::from(vec!["y"]))]).unwrap();
        assert!(rows_inserted(&[odd]).is_err());
    }
}
