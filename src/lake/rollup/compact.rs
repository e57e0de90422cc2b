//! Rollups stay small: the partial rows of a partition (one day of minutes, one month of hours, one year
//! of days), written by one follow after another, re-aggregated into one row per key and one file.
//!
//! A compaction changes no answer (partials of a key merge into the same numbers in any grouping), so
//! its snapshot covers what its parent covered. It replaces exactly the files it read: a follow landing
//! meanwhile only adds files, so the compaction is committed again on top of it; a rebuild or rollback
//! that took the files away makes it give up until the next run.

use std::collections::BTreeMap;

use iceberg::scan::FileScanTask;

use super::cover::{covered_by, minute_floor_of, state_summary};
use super::follow::{try_commit, write_each, Attempt};
use super::read::read_rollup_files;
use crate::lake::error::LakeError;
use crate::lake::stage::commit_landed;
use crate::lake::table::Change;
use crate::lake::target::TableHandle;
use crate::rollup::Partials;

/// How much one rollup compaction takes on.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RollupCompaction {
    /// A partition is re-aggregated once it has this many files.
    pub min_files: usize,
    /// Bytes read in one run at most (whole partitions; the rest wait for the next run).
    pub max_input_bytes: u64,
    /// The manifests (one per follow) are rewritten into one per spec above this many: every answer's
    /// scan plans over all of them.
    pub manifests_above: usize,
    pub max_attempts: u32,
}

impl Default for RollupCompaction {
    fn default() -> Self {
        Self { min_files: 4, max_input_bytes: 512 * 1024 * 1024, manifests_above: 16, max_attempts: 5 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RollupCompactionReport {
    pub partitions: usize,
    pub files_read: usize,
    pub rows_read: u64,
    pub rows_written: usize,
    pub files_written: usize,
    pub conflicts: u32,
    /// Manifests rewritten into one per spec, when they were.
    pub manifests_rewritten: Option<usize>,
    /// Why nothing was committed, when nothing was.
    pub skipped: Option<String>,
}

/// Re-aggregates the rollup partitions with at least `policy.min_files` files, then rewrites the
/// manifests when there are more than `policy.manifests_above`.
pub async fn compact(rollup: TableHandle<'_>, policy: &RollupCompaction) -> Result<RollupCompactionReport, LakeError> {
    let mut report = reaggregate(rollup, policy).await?;
    for _ in 0..policy.max_attempts.max(1) {
        let table = rollup.load().await?;
        let Some(snapshot) = table.metadata().current_snapshot() else { break };
        let Some(covers) = covered_by(snapshot) else { break };
        let minute_floor = minute_floor_of(snapshot);
        let manifests = table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg("reading a manifest list"))?.entries().len();
        if manifests <= policy.manifests_above {
            break;
        }
        // Nothing to add or replace: a snapshot of its own rewriting the manifests, covering what it did.
        if super::follow::commit_partials(rollup, &table, &Partials::default(), covers, minute_floor, Vec::new()).await? {
            report.manifests_rewritten = Some(manifests);
            break;
        }
        report.conflicts += 1;
    }
    Ok(report)
}

async fn reaggregate(rollup: TableHandle<'_>, policy: &RollupCompaction) -> Result<RollupCompactionReport, LakeError> {
    let mut report = RollupCompactionReport::default();
    let table = rollup.load().await?;
    let tasks = super::follow::rollup_files(&table).await?;
    let mut partitions: BTreeMap<String, Vec<FileScanTask>> = BTreeMap::new();
    for task in tasks {
        partitions.entry(format!("{:?}", task.partition)).or_default().push(task);
    }
    let mut chosen: Vec<Vec<FileScanTask>> = Vec::new();
    let mut bytes = 0u64;
    for (_, files) in partitions.into_iter().filter(|(_, files)| files.len() >= policy.min_files.max(2)) {
        let size: u64 = files.iter().map(|t| t.file_size_in_bytes).sum();
        if !chosen.is_empty() && bytes + size > policy.max_input_bytes {
            break;
        }
        bytes += size;
        chosen.push(files);
    }
    if chosen.is_empty() {
        return Ok(report);
    }
    report.partitions = chosen.len();
    report.files_read = chosen.iter().map(Vec::len).sum();
    report.rows_read = chosen.iter().flatten().filter_map(|t| t.record_count).sum();
    let replaces: Vec<String> = chosen.iter().flatten().map(|t| t.data_file_path.clone()).collect();
    // A partition at a time, each written before the next is read: memory holds one partition's rows,
    // not the run's (a rebuilt table's partitions together hold tens of millions).
    let reading = &table;
    let (files, rows_written) = write_each(reading, chosen, |partition| async move {
        let mut partials = Partials::default();
        read_rollup_files(reading, partition, &mut partials).await?;
        Ok(partials)
    })
    .await?;
    report.rows_written = rows_written;
    let commit_id = uuid::Uuid::new_v4().to_string();
    report.files_written = files.len();
    let mut table = table;
    let mut unknown = false;
    for _ in 0..policy.max_attempts.max(1) {
        let Some((covers, minute_floor)) = table.metadata().current_snapshot().and_then(|s| Some((covered_by(s)?, minute_floor_of(s)))) else {
            report.skipped = Some("the rollup's current snapshot covers nothing".into());
            break;
        };
        let mut summary = state_summary(covers, minute_floor);
        summary.insert("sentiment-lake.maintenance".to_string(), "rollup-compaction".to_string());
        let change = Change { files: files.clone(), replaces: replaces.iter().cloned().collect(), summary, ..Change::default() };
        match try_commit(rollup, &table, change, &commit_id).await {
            Ok(Attempt::Landed) => return Ok(report),
            Ok(attempt) => {
                unknown = matches!(attempt, Attempt::Lost(_));
                report.conflicts += 1;
            }
            Err(LakeError::Conflict { .. }) => {
                report.skipped = Some("the files read were replaced meanwhile (a rebuild or a rollback)".into());
                break;
            }
            Err(e) => {
                crate::lake::files::delete(&table, &files).await;
                return Err(e);
            }
        }
        table = rollup.load().await?;
        if commit_landed(table.metadata(), &commit_id) {
            return Ok(report);
        }
    }
    if report.skipped.is_none() {
        report.skipped = Some(format!("every attempt lost to another commit ({} conflicts)", report.conflicts));
    }
    // After a last attempt of unknown outcome the files may yet be referenced: orphan cleanup takes them if not.
    if !unknown {
        crate::lake::files::delete(&table, &files).await;
    }
    report.files_written = 0;
    Ok(report)
}
