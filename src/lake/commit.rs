//! The only code that changes table metadata: folds staged segments into one fast-append per table.
//!
//! Exactly-once rests on three rules:
//! 1. a row is committed only if its sequence number is above the table's watermark for its source, and the
//!    new watermark is written in the same snapshot (see [`super::watermark`]);
//! 2. the append is pinned to the snapshot the watermark was read from ([`super::pinned`]), so a concurrent
//!    commit makes ours fail instead of silently duplicating;
//! 3. after any failed or unknown-outcome commit the table is re-read: if our commit id is there the commit
//!    landed, otherwise the rows are re-selected against the fresh watermark and committed again, with
//!    bounded, jittered back-off.
//!
//! Segments are deleted only after the table covers them. Data files of attempts that did not land are
//! deleted, or reused when the next attempt selects the same rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::Catalog;

use super::pinned::PinnedCatalog;
use super::staging::{passes, StagedSegment, Staging};
use super::watermark::{CommittedState, Watermarks, COMMIT_ID_PROPERTY, WATERMARKS_PROPERTY};
use super::writer::write_data_files;
use super::{LakeError, TableTarget};

/// Bounds on how hard a commit tries before giving up until the next tick, and on how much one snapshot
/// takes in (a backlog after an outage becomes several bounded snapshots, not one that exhausts memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub max_segments_per_snapshot: usize,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(5),
            max_segments_per_snapshot: 2_000,
        }
    }
}

impl CommitPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.min_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
        // Full jitter: concurrent committers that conflicted must not retry in lock-step.
        let random = (uuid::Uuid::new_v4().as_u128() as u64) % (exponential.as_micros() as u64 + 1);
        Duration::from_micros(random)
    }
}

/// What one commit call did for one table (over one or more snapshots).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommitReport {
    pub table: String,
    pub segments: usize,
    pub rows_committed: usize,
    /// Rows already in the table (redelivered or staged twice) that were dropped.
    pub duplicates_dropped: usize,
    pub data_files: usize,
    /// Snapshots created (more than one only when the backlog exceeded the per-snapshot bound).
    pub snapshots: usize,
    /// The newest snapshot this call created.
    pub snapshot_id: Option<i64>,
    pub attempts: u32,
    /// Commit id of the newest snapshot this call created.
    pub commit_id: Option<String>,
    #[serde(skip)]
    pub latency: Duration,
}

impl CommitReport {
    fn absorb(&mut self, pass: CommitReport) {
        self.segments += pass.segments;
        self.rows_committed += pass.rows_committed;
        self.duplicates_dropped += pass.duplicates_dropped;
        self.data_files += pass.data_files;
        self.snapshots += pass.snapshots;
        self.attempts += pass.attempts;
        if pass.commit_id.is_some() {
            self.snapshot_id = pass.snapshot_id;
            self.commit_id = pass.commit_id;
        }
    }
}

/// Rows chosen for one attempt and the watermarks that commit them.
struct Selection {
    rows: RecordBatch,
    watermarks: Watermarks,
    duplicates: usize,
    /// The committed watermarks of the sources involved, which determine the selection.
    basis: Vec<(String, Option<i64>)>,
}

fn select(segments: &[StagedSegment], committed: &Watermarks, schema: &SchemaRef) -> Result<Selection, LakeError> {
    let mut watermarks = committed.clone();
    let mut seen: HashMap<&str, HashSet<i64>> = HashMap::new();
    let mut parts = Vec::with_capacity(segments.len());
    let mut duplicates = 0;
    for staged in segments {
        let segment = &staged.segment;
        let source_seen = seen.entry(segment.source.as_str()).or_default();
        let mask: BooleanArray = segment
            .sequence_numbers
            .iter()
            .map(|&seq| Some(!committed.covers(&segment.source, seq) && source_seen.insert(seq)))
            .collect();
        duplicates += mask.false_count();
        if let Some(&max) = segment.sequence_numbers.iter().max() {
            watermarks.advance(&segment.source, max);
        }
        // Segments are read back from Parquet; re-attach the table's schema so field ids are canonical.
        let rows = RecordBatch::try_new(schema.clone(), segment.rows.columns().to_vec()).map_err(LakeError::arrow)?;
        parts.push(arrow_select::filter::filter_record_batch(&rows, &mask).map_err(LakeError::arrow)?);
    }
    let rows = arrow_select::concat::concat_batches(schema, &parts).map_err(LakeError::arrow)?;
    let mut basis: Vec<(String, Option<i64>)> = seen.keys().map(|s| (s.to_string(), committed.get(s))).collect();
    basis.sort();
    Ok(Selection { rows, watermarks, duplicates, basis })
}

/// Data files written by an attempt whose commit did not land, kept for reuse by the next attempt.
struct Written {
    basis: Vec<(String, Option<i64>)>,
    spec_id: i32,
    files: Vec<DataFile>,
}

async fn delete_files(table: &Table, files: &[DataFile]) {
    for file in files {
        if let Err(e) = table.file_io().delete(file.file_path()).await {
            tracing::warn!(path = file.file_path(), error = %e, "Could not delete an unreferenced data file; orphan cleanup will.");
        }
    }
}

/// Commits every staged segment of `target`, one snapshot per bounded pass of whole sources. Returns `Ok`
/// with `rows_committed == 0` when there was nothing new.
pub async fn commit_staged(
    catalog: &Arc<dyn Catalog>,
    staging: &Staging,
    target: &TableTarget,
    policy: CommitPolicy,
) -> Result<CommitReport, LakeError> {
    let started = Instant::now();
    let paths = staging.list(&target.name).await?;
    let mut report = CommitReport { table: target.name.clone(), ..CommitReport::default() };
    for pass in passes(&paths, policy.max_segments_per_snapshot) {
        report.absorb(commit_pass(catalog, staging, target, policy, pass).await?);
    }
    report.latency = started.elapsed();
    Ok(report)
}

/// One snapshot's worth: reads the given segments, selects, writes and commits them.
async fn commit_pass(
    catalog: &Arc<dyn Catalog>,
    staging: &Staging,
    target: &TableTarget,
    policy: CommitPolicy,
    paths: Vec<String>,
) -> Result<CommitReport, LakeError> {
    let mut report = CommitReport { table: target.name.clone(), segments: paths.len(), ..CommitReport::default() };
    let mut segments = Vec::with_capacity(paths.len());
    for path in &paths {
        segments.push(staging.read(path).await?);
    }
    let commit_id = uuid::Uuid::new_v4().to_string();
    let mut written: Option<Written> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        report.attempts = attempt;
        let table = catalog.load_table(&target.ident).await.map_err(LakeError::iceberg)?;
        let state = CommittedState::read(table.metadata())?;
        tracing::debug!(table = %target.name, attempt, snapshot = ?table.metadata().current_snapshot_id(), "Commit attempt.");
        if state.contains_commit(&commit_id) {
            // A previous attempt landed even though it reported failure.
            report.snapshot_id = table.metadata().current_snapshot_id();
            break;
        }
        let selection = select(&segments, &state.watermarks, &target.arrow_schema)?;
        report.duplicates_dropped = selection.duplicates;
        report.rows_committed = selection.rows.num_rows();
        if selection.rows.num_rows() == 0 {
            // Everything staged is already in the table (committed by a peer, or before a crash).
            if let Some(stale) = written.take() {
                delete_files(&table, &stale.files).await;
            }
            report.data_files = 0;
            break;
        }
        let spec_id = table.metadata().default_partition_spec_id();
        let files = match written.take() {
            Some(w) if w.basis == selection.basis && w.spec_id == spec_id => w.files,
            stale => {
                if let Some(stale) = stale {
                    delete_files(&table, &stale.files).await;
                }
                let prefix = format!("{}-{attempt}", &commit_id[..8]);
                write_data_files(&table, &selection.rows, target.sort_column, &prefix).await?
            }
        };
        report.data_files = files.len();
        let properties = HashMap::from([
            (WATERMARKS_PROPERTY.to_string(), selection.watermarks.to_property()),
            (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
        ]);
        let tx = Transaction::new(&table);
        let append = tx.fast_append().add_data_files(files.clone()).set_snapshot_properties(properties);
        let tx = append.apply(tx).map_err(LakeError::iceberg)?;
        let pinned = PinnedCatalog::new(catalog.clone(), table.clone());
        match tx.commit(&pinned).await {
            Ok(committed) => {
                report.snapshot_id = committed.metadata().current_snapshot_id();
                break;
            }
            Err(e) if attempt >= policy.max_attempts => {
                // The files stay: a later pass re-reads the table first and reuses or removes nothing it
                // cannot prove unreferenced (orphan cleanup removes the rest).
                return Err(LakeError::CommitExhausted { table: target.name.clone(), attempts: attempt, source: Box::new(e) });
            }
            Err(e) => {
                tracing::info!(table = %target.name, attempt, error = %e, "Commit did not land; re-reading the table before retrying.");
                crate::observability::CommitConflict { table: &target.name }.emit();
                written = Some(Written { basis: selection.basis, spec_id, files });
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
        }
    }
    if report.rows_committed > 0 {
        report.commit_id = Some(commit_id);
        report.snapshots = 1;
    }
    staging.delete(&paths).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::lake::staging::Segment;

    fn staged(source: &str, seqs: &[i64]) -> StagedSegment {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, false)]));
        let values: Vec<i32> = seqs.iter().map(|&s| s as i32).collect();
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(values))]).unwrap();
        StagedSegment {
            path: String::new(),
            segment: Segment { source: source.into(), invocation_id: None, rows, sequence_numbers: seqs.to_vec() },
        }
    }

    #[test]
    fn selection_drops_committed_and_duplicate_sequence_numbers() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, false)]));
        let mut committed = Watermarks::default();
        committed.advance("p0", 2);
        let segments = [staged("p0", &[1, 2, 3, 4]), staged("p0", &[3, 4, 5]), staged("p1", &[7, 8])];
        let s = select(&segments, &committed, &schema).unwrap();
        let values = s.rows.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(values.values(), &[3, 4, 5, 7, 8]);
        assert_eq!(s.duplicates, 4);
        assert_eq!(s.watermarks.get("p0"), Some(5));
        assert_eq!(s.watermarks.get("p1"), Some(8));
        assert_eq!(s.basis, vec![("p0".to_string(), Some(2)), ("p1".to_string(), None)]);
        assert_eq!(values.len(), 5);
    }

    #[test]
    fn backoff_stays_within_bounds() {
        let policy = CommitPolicy::default();
        for attempt in 0..40 {
            assert!(policy.backoff(attempt) <= policy.max_backoff);
        }
    }
}
