//! Retired sources: the ledger of sources that are finished for good (a legacy file whose every row is
//! committed), kept as rows of a small Iceberg table beside the records table instead of as watermarks.
//!
//! Why a table: each migrated file is one source, and a migration reads thousands. Kept as watermarks
//! they would stay in the records table's properties (rewritten by every commit) forever; as rows they
//! cost one small Parquet file per retirement batch, survive snapshot expiry and compaction like any data,
//! and any engine can audit them (`SELECT * FROM migration_ledger`).
//!
//! Retiring is two commits, in this order, each idempotent:
//! 1. the source's row is appended here, only once it is finished ([`retire`] says when), so a retired
//!    source is complete by construction;
//! 2. its key is removed from the records and dead-letter tables' watermarks (properties-only commits).
//!
//! At every moment a finished source is in the watermarks, here, or both, so a reader that looks at the
//! watermarks first and here second (the committer does, before committing a source it has no watermark
//! for) never mistakes it for a new one. A retirement that lands between a committer's two reads moves
//! the records table, so that committer's compare-and-swap fails and it looks again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::Catalog;

use super::policy::CommitPolicy;
use crate::lake::catalog::{self, Outcome, RenewingCatalog};
use crate::lake::error::LakeError;
use crate::lake::files::{delete, write_data_files};
use crate::lake::stage::{CommittedState, EntryKind, Staging, Watermarks, WATERMARKS_PROPERTY};
use crate::lake::table::Change;
use crate::lake::target::TableTarget;

pub const SOURCE: &str = "source";
pub const THROUGH: &str = "through";
pub const RETIRED_AT: &str = "retired_at";
pub const RECORDS_SNAPSHOT_ID: &str = "records_snapshot_id";
/// What the retiring caller knew about the source (for a legacy file: its location, version, rows staged
/// and dead-lettered, checksums), as JSON.
pub const REPORT: &str = "report";

pub fn retired_schema() -> Schema {
    let fields = vec![
        NestedField::required(1, SOURCE, Type::Primitive(PrimitiveType::String)),
        NestedField::required(2, THROUGH, Type::Primitive(PrimitiveType::Long)),
        NestedField::required(3, RETIRED_AT, Type::Primitive(PrimitiveType::Timestamptz)),
        NestedField::optional(4, RECORDS_SNAPSHOT_ID, Type::Primitive(PrimitiveType::Long)),
        NestedField::optional(5, REPORT, Type::Primitive(PrimitiveType::String)),
    ];
    Schema::builder().with_fields(fields.into_iter().map(Arc::new)).build().expect("the retired-sources schema is valid")
}

pub fn retired_arrow_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> =
        LazyLock::new(|| Arc::new(iceberg::arrow::schema_to_arrow_schema(&retired_schema()).expect("the schema converts to Arrow")));
    SCHEMA.clone()
}

pub fn retired_partition_spec() -> UnboundPartitionSpec {
    UnboundPartitionSpec::builder().build()
}

/// A source to retire: finished once the records table's watermark reaches `through`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetiredSource {
    pub source: String,
    pub through: i64,
    pub retired_at: DateTime<Utc>,
    pub records_snapshot_id: Option<i64>,
    pub report: Option<serde_json::Value>,
}

/// What [`retire`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetireReport {
    /// Sources now recorded as retired (here before, or appended now).
    pub retired: Vec<String>,
    /// Sources whose watermark has not reached their last sequence number: left as they are.
    pub incomplete: Vec<String>,
    /// Watermark keys removed from the records table by this call.
    pub keys_removed: usize,
}

fn to_batch(sources: &[RetiredSource]) -> Result<RecordBatch, LakeError> {
    let (mut source, mut through, mut at, mut snapshot, mut report) = (
        StringBuilder::new(),
        Int64Builder::new(),
        TimestampMicrosecondBuilder::new().with_timezone("+00:00"),
        Int64Builder::new(),
        StringBuilder::new(),
    );
    for s in sources {
        source.append_value(&s.source);
        through.append_value(s.through);
        at.append_value(s.retired_at.timestamp_micros());
        snapshot.append_option(s.records_snapshot_id);
        report.append_option(s.report.as_ref().map(|r| r.to_string()));
    }
    let columns: Vec<ArrayRef> =
        vec![Arc::new(source.finish()), Arc::new(through.finish()), Arc::new(at.finish()), Arc::new(snapshot.finish()), Arc::new(report.finish())];
    Ok(RecordBatch::try_new(retired_arrow_schema(), columns)?)
}

async fn load(catalog: &RenewingCatalog, target: &TableTarget) -> Result<Table, LakeError> {
    catalog.load_table(&target.ident).await.map_err(LakeError::iceberg(format!("loading {}", target.ident)))
}

/// Every retired source with its row (the newest, should a retry have appended one twice).
pub async fn read_all(catalog: &RenewingCatalog, target: &TableTarget) -> Result<HashMap<String, RetiredSource>, LakeError> {
    let table = load(catalog, target).await?;
    let mut out = HashMap::new();
    if table.metadata().current_snapshot_id().is_none() {
        return Ok(out);
    }
    let scan = table.scan().select_all().build().map_err(LakeError::iceberg("planning the retired-sources scan"))?;
    let mut batches = scan.to_arrow().await.map_err(LakeError::iceberg("reading the retired sources"))?;
    while let Some(batch) = batches.try_next().await.map_err(LakeError::iceberg("reading the retired sources"))? {
        let column = |name: &str| {
            batch.column_by_name(name).cloned().ok_or_else(|| LakeError::Ledger { table: target.name.clone(), detail: format!("no column {name}") })
        };
        let (sources, through, at, snapshot, report) =
            (column(SOURCE)?, column(THROUGH)?, column(RETIRED_AT)?, column(RECORDS_SNAPSHOT_ID)?, column(REPORT)?);
        let (sources, through) = (sources.as_string::<i32>(), through.as_primitive::<Int64Type>());
        let (at, snapshot, report) = (at.as_primitive::<TimestampMicrosecondType>(), snapshot.as_primitive::<Int64Type>(), report.as_string::<i32>());
        for i in 0..batch.num_rows() {
            let row = RetiredSource {
                source: sources.value(i).to_string(),
                through: through.value(i),
                retired_at: DateTime::from_timestamp_micros(at.value(i)).unwrap_or_default(),
                records_snapshot_id: (!snapshot.is_null(i)).then(|| snapshot.value(i)),
                report: (!report.is_null(i)).then(|| serde_json::from_str(report.value(i)).unwrap_or(serde_json::Value::Null)),
            };
            match out.get(&row.source) {
                Some(existing) if existing.retired_at >= row.retired_at => {}
                _ => {
                    out.insert(row.source.clone(), row);
                }
            }
        }
    }
    Ok(out)
}

/// The retired ones among `sources` (one read of the table, only when asked about any).
pub async fn retired_among(catalog: &RenewingCatalog, target: &TableTarget, sources: &[&str]) -> Result<HashSet<String>, LakeError> {
    if sources.is_empty() {
        return Ok(HashSet::new());
    }
    let all = read_all(catalog, target).await?;
    Ok(sources.iter().filter(|s| all.contains_key(**s)).map(|s| s.to_string()).collect())
}

/// Retires every source of `candidates` that is finished: the records table's watermark has reached its
/// `through`, and the dead-letter table's has too or nothing of it with rows is staged for that table
/// (only range markers, which carry nothing; a batch stages its dead letters before its records, so
/// none can appear later). Markers of a retired source are dropped by the committer.
pub async fn retire(
    catalog: &RenewingCatalog,
    records: &TableTarget,
    dead_letters: (&TableTarget, &Staging),
    ledger: &TableTarget,
    policy: CommitPolicy,
    candidates: Vec<RetiredSource>,
) -> Result<RetireReport, LakeError> {
    let mut report = RetireReport::default();
    let records_table = load(catalog, records).await?;
    let records_snapshot = records_table.metadata().current_snapshot_id();
    let records_state = CommittedState::read(&records.name, records_table.metadata())?.watermarks;
    let (letters_target, staging) = dead_letters;
    let letters_state = CommittedState::read(&letters_target.name, load(catalog, letters_target).await?.metadata())?.watermarks;
    let letters_staged = staging.list(&letters_target.staging).await?;
    let with_staged_letters: HashSet<&str> = letters_staged
        .by_key
        .iter()
        .filter(|(_, entries)| entries.iter().any(|e| e.kind == EntryKind::Rows))
        .filter_map(|(key, _)| letters_staged.sources.get(key).map(String::as_str))
        .collect();
    let already = read_all(catalog, ledger).await?;
    let mut to_append = Vec::new();
    let mut finished = Vec::new();
    for mut candidate in candidates {
        let reached = |w: &Watermarks| w.get(&candidate.source).is_some_and(|w| w >= candidate.through);
        let letters_done = reached(&letters_state) || !with_staged_letters.contains(candidate.source.as_str());
        if already.contains_key(&candidate.source) {
            finished.push(candidate.source);
        } else if reached(&records_state) && letters_done {
            candidate.records_snapshot_id = candidate.records_snapshot_id.or(records_snapshot);
            finished.push(candidate.source.clone());
            to_append.push(candidate);
        } else {
            report.incomplete.push(candidate.source);
        }
    }
    if !to_append.is_empty() {
        append(catalog, ledger, policy, &to_append).await?;
    }
    for target in [records, letters_target] {
        report.keys_removed += remove_keys(catalog, target, policy, &finished).await?;
    }
    report.retired = finished;
    Ok(report)
}

async fn append(catalog: &RenewingCatalog, ledger: &TableTarget, policy: CommitPolicy, rows: &[RetiredSource]) -> Result<(), LakeError> {
    let batch = to_batch(rows)?;
    for attempt in 1..=policy.max_attempts {
        let table = load(catalog, ledger).await?;
        let prefix = format!("retired-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let files = write_data_files(&table, std::slice::from_ref(&batch), &[SOURCE], &prefix, None).await?;
        let (_, catalog_swap) = catalog.current().await?;
        match catalog::commit(&catalog_swap, &table, Change { files: files.clone(), ..Change::default() }).await {
            Ok(Outcome::Landed { .. }) => return Ok(()),
            Ok(Outcome::Conflict) => delete(&table, &files).await,
            // Unknown outcome: appending again at worst records a source twice, which reading tolerates.
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                tracing::info!(table = %ledger.name, attempt, error = %e, "Retiring sources did not land; retrying.");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(policy.min_backoff.saturating_mul(attempt)).await;
    }
    Err(LakeError::Conflict { table: ledger.name.clone() })
}

/// Rewrites the ledger without the rows `forget` picks (every row of their sources); returns those rows.
/// The ledger is small (a row per migrated file), so it is written again whole, replacing its files.
pub async fn forget(
    catalog: &RenewingCatalog,
    ledger: &TableTarget,
    policy: CommitPolicy,
    forget: impl Fn(&RetiredSource) -> bool,
) -> Result<Vec<RetiredSource>, LakeError> {
    for attempt in 1..=policy.max_attempts {
        let table = load(catalog, ledger).await?;
        let all = read_all(catalog, ledger).await?;
        let (gone, kept): (Vec<RetiredSource>, Vec<RetiredSource>) = all.into_values().partition(|row| forget(row));
        if gone.is_empty() {
            return Ok(gone);
        }
        let mut live = Vec::new();
        if table.metadata().current_snapshot_id().is_some() {
            let scan = table.scan().build().map_err(LakeError::iceberg("planning the migration ledger's rewrite"))?;
            let mut tasks = scan.plan_files().await.map_err(LakeError::iceberg("planning the migration ledger's rewrite"))?;
            while let Some(task) = tasks.try_next().await.map_err(LakeError::iceberg("planning the migration ledger's rewrite"))? {
                live.push(task.data_file_path().to_string());
            }
        }
        let prefix = format!("retired-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let files = if kept.is_empty() { Vec::new() } else { write_data_files(&table, &[to_batch(&kept)?], &[SOURCE], &prefix, None).await? };
        let change = Change { files: files.clone(), replaces: live.into_iter().collect(), ..Change::default() };
        let (_, catalog_swap) = catalog.current().await?;
        match catalog::commit(&catalog_swap, &table, change).await {
            Ok(Outcome::Landed { .. }) => return Ok(gone),
            Ok(Outcome::Conflict) => delete(&table, &files).await,
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                tracing::info!(table = %ledger.name, attempt, error = %e, "Rewriting the migration ledger did not land; retrying.");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(policy.min_backoff.saturating_mul(attempt)).await;
    }
    Err(LakeError::Conflict { table: ledger.name.clone() })
}

/// Removes the watermark keys of `sources` from a table, on top of whatever committed meanwhile.
async fn remove_keys(catalog: &RenewingCatalog, records: &TableTarget, policy: CommitPolicy, sources: &[String]) -> Result<usize, LakeError> {
    for attempt in 1..=policy.max_attempts {
        let table = load(catalog, records).await?;
        let mut watermarks = CommittedState::read(&records.name, table.metadata())?.watermarks;
        let removed = sources.iter().filter(|s| watermarks.remove(s).is_some()).count();
        if removed == 0 {
            return Ok(0);
        }
        let change = Change { properties: vec![(WATERMARKS_PROPERTY.to_string(), watermarks.to_property())], ..Change::default() };
        let (_, catalog_swap) = catalog.current().await?;
        match catalog::commit(&catalog_swap, &table, change).await {
            Ok(Outcome::Landed { .. }) => return Ok(removed),
            Ok(Outcome::Conflict) => {}
            // Unknown outcome: the next attempt re-reads the watermarks and removes what is still there.
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                tracing::info!(table = %records.name, attempt, error = %e, "Removing retired watermarks did not land; retrying.");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(policy.min_backoff.saturating_mul(attempt)).await;
    }
    Err(LakeError::Conflict { table: records.name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_the_arrow_schema() {
        let row = RetiredSource {
            source: "legacy+file:///x/a.parquet#1".into(),
            through: 300,
            retired_at: Utc::now(),
            records_snapshot_id: None,
            report: Some(serde_json::json!({"staged": 299})),
        };
        let batch = to_batch(&[row]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.schema(), retired_arrow_schema());
    }
}
