//! Keeping the rollup table in step with the records table.
//!
//! [`follow`] rolls up the appends of the records table not yet covered, from their added files, and
//! commits them with the records snapshot they now cover, by compare-and-swap on the rollup table: of two
//! followers racing, one lands and the other finds nothing left to do. A crash between a records commit and
//! its rollup commit leaves the rollup behind, never wrong: the next follow picks up from the covered
//! snapshot. After a rollback of the records table, the rollup's `main` is moved back to the state that
//! covers the new current snapshot's lineage before anything is appended to it. [`rebuild`] recomputes the
//! whole rollup from the live rows, for a table that has none yet (or whose history cannot be followed).

use std::collections::BTreeSet;
use std::future::Future;

use futures::TryStreamExt;
use iceberg::expr::{Predicate, Reference};
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFile, Datum};
use iceberg::table::Table;

use super::cover::{base, state_summary, Uncovered};
use super::read::{added_files, aggregate, live_files, read_rollup_files};
use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::stage::{commit_landed, COMMIT_ID_PROPERTY};
use crate::lake::table::Change;
use crate::lake::target::TableHandle;
use crate::rollup::table::column as r;
use crate::rollup::{Grain, Partials, RowFilter};

/// How far one follow goes.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Appends rolled up in one rollup commit; the rest wait for the next follow.
    pub max_appends: usize,
    /// Rebuild from the live rows when the rollup cannot follow, if the records table has at most this
    /// many rows (0: never; rebuilding a large table belongs to maintenance or `rollup rebuild`).
    pub rebuild_up_to_rows: u64,
    pub max_attempts: u32,
    /// A rebuild keeps minute rows for this many days before it ([`rebuild_minute_floor`]).
    pub minute_days: Option<u32>,
}

/// Days of minute rows a rebuild keeps unless told otherwise.
pub const DEFAULT_MINUTE_DAYS: u32 = 7;

impl Default for FollowOptions {
    fn default() -> Self {
        Self { max_appends: 64, rebuild_up_to_rows: 1_000_000, max_attempts: 5, minute_days: Some(DEFAULT_MINUTE_DAYS) }
    }
}

/// What a follow did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FollowReport {
    /// The records snapshot the rollup covers afterwards (`None`: it covers nothing).
    pub covers: Option<i64>,
    /// Records appends rolled up, and their rows.
    pub appends: usize,
    pub rows: u64,
    /// Rollup rows written.
    pub rollup_rows: usize,
    /// Small rollup files read back and written again with the new rows.
    pub folded_files: usize,
    /// The rollup state `main` was moved back to, after a rollback of the records table.
    pub moved_back_to: Option<i64>,
    /// The rollup was recomputed from every live row.
    pub rebuilt: bool,
    /// Why the rollup stays behind, when it does (answers then come from raw rows).
    pub behind: Option<String>,
    pub conflicts: u32,
}

/// Brings the rollup up to the records table's current snapshot ([`FollowOptions`] bound the work).
pub async fn follow(records: TableHandle<'_>, rollup: TableHandle<'_>, options: FollowOptions) -> Result<FollowReport, LakeError> {
    let mut report = FollowReport::default();
    for _ in 0..options.max_attempts.max(1) {
        let records_table = records.load().await?;
        let Some(at) = records_table.metadata().current_snapshot_id() else {
            return Ok(report);
        };
        let rollup_table = rollup.load().await?;
        let found = match base(records_table.metadata(), rollup_table.metadata(), at) {
            Ok(found) => found,
            Err(why @ (Uncovered::NoBase | Uncovered::NotFollowable { .. })) => {
                let rows = total_rows(&records_table, at);
                if rows.is_some_and(|rows| rows <= options.rebuild_up_to_rows) {
                    match rebuild_at(&records_table, rollup, &rollup_table, at, options.minute_days).await? {
                        Some(rebuilt) => {
                            report.rebuilt = true;
                            report.rows = rebuilt.0;
                            report.rollup_rows = rebuilt.1;
                            report.covers = Some(at);
                            return Ok(report);
                        }
                        None => {
                            report.conflicts += 1;
                            continue;
                        }
                    }
                }
                report.behind = Some(format!("{why}; run `sentiment-lake rollup rebuild`"));
                return Ok(report);
            }
            Err(e) => return Err(LakeError::Rollup(e.to_string())),
        };
        if rollup_table.metadata().current_snapshot_id() != Some(found.rollup_snapshot) {
            let change = Change { set_current: Some(found.rollup_snapshot), ..Change::default() };
            match rollup.commit(&rollup_table, change).await? {
                Outcome::Landed { .. } => report.moved_back_to = Some(found.rollup_snapshot),
                Outcome::Conflict => report.conflicts += 1,
            }
            continue;
        }
        report.covers = Some(found.covers);
        if found.delta.is_empty() {
            report.covers = Some(at);
            return Ok(report);
        }
        // At most `max_appends`, and about ROWS_PER_CHUNK rows (at least one append): memory stays bounded.
        let mut taken_rows = 0;
        let mut take = 0;
        for &id in found.delta.iter().take(options.max_appends.max(1)) {
            let added =
                records_table.metadata().snapshot_by_id(id).and_then(|s| s.summary().additional_properties.get("added-records")?.parse::<u64>().ok());
            if take > 0 && taken_rows + added.unwrap_or(0) > ROWS_PER_CHUNK {
                break;
            }
            taken_rows += added.unwrap_or(0);
            take += 1;
        }
        let taken = &found.delta[..take];
        // With every append taken, the rollup covers `at` itself (compactions after the last append too).
        let covers = if taken.len() == found.delta.len() { at } else { taken[taken.len() - 1] };
        let mut partials = Partials::default();
        let mut rows = 0;
        // Minute rows from the base's floor on, as every state on its lineage holds them.
        let filter = RowFilter { minutes_from: found.minute_floor, ..RowFilter::default() };
        for &id in taken {
            let tasks = added_files(&records_table, id).await?;
            rows += tasks.iter().filter_map(|t| t.record_count).sum::<u64>();
            partials.merge(aggregate(&records_table, tasks, &Grain::ALL, &filter).await?);
        }
        let rollup_rows = partials.len();
        let folded = fold_small_files(&rollup_table, &mut partials).await?;
        let folded_files = folded.len();
        match commit_partials(rollup, &rollup_table, &partials, covers, found.minute_floor, folded).await? {
            true => {
                report.folded_files += folded_files;
                report.appends += taken.len();
                report.rows += rows;
                report.rollup_rows += rollup_rows;
                report.covers = Some(covers);
                if taken.len() == found.delta.len() {
                    return Ok(report);
                }
            }
            false => report.conflicts += 1,
        }
    }
    Ok(report)
}

/// Recomputes the rollup from every row live in the records table's current snapshot, replacing all it
/// held, with minute rows for `minute_days` ([`rebuild_minute_floor`]). Returns what it did, or a report
/// whose `behind` says why it did nothing.
pub async fn rebuild(
    records: TableHandle<'_>,
    rollup: TableHandle<'_>,
    max_attempts: u32,
    minute_days: Option<u32>,
) -> Result<FollowReport, LakeError> {
    let mut report = FollowReport::default();
    for _ in 0..max_attempts.max(1) {
        let records_table = records.load().await?;
        let Some(at) = records_table.metadata().current_snapshot_id() else {
            report.behind = Some("the records table has no snapshot yet".into());
            return Ok(report);
        };
        let rollup_table = rollup.load().await?;
        if let Some((rows, rollup_rows)) = rebuild_at(&records_table, rollup, &rollup_table, at, minute_days).await? {
            report.rebuilt = true;
            report.rows = rows;
            report.rollup_rows = rollup_rows;
            report.covers = Some(at);
            return Ok(report);
        }
        report.conflicts += 1;
    }
    Err(LakeError::Conflict { table: rollup.target.name.clone() })
}

/// A rollup file of at most this many rows, in a partition a follow writes to, is read back and written
/// again with the follow's rows. A live table's current partitions then hold one growing file beside what
/// maintenance compacted, instead of one more file (and manifest) per commit for every answer to open.
const FOLDED_FILE_ROWS: u64 = 50_000;

/// Rows one follow reads back from small files at most (the smallest first); the rest wait for the next
/// follow or maintenance.
const FOLDED_ROWS_PER_FOLLOW: u64 = 200_000;

/// Merges into `partials` the small files of the rollup partitions it writes to, and returns their paths
/// for the commit to replace. Exact: a file's rows are partials, and partials of a key merge into the
/// same numbers however they are grouped.
async fn fold_small_files(rollup: &Table, partials: &mut Partials) -> Result<Vec<String>, LakeError> {
    let touched: BTreeSet<(Grain, String)> = partials.rows.keys().map(|k| (k.grain, k.grain.bucket(k.period_start))).collect();
    let Some(in_touched) = touched
        .iter()
        .map(|(grain, bucket)| {
            Reference::new(r::GRAIN).equal_to(Datum::string(grain.as_str())).and(Reference::new(r::BUCKET).equal_to(Datum::string(bucket)))
        })
        .reduce(Predicate::or)
    else {
        return Ok(Vec::new());
    };
    if rollup.metadata().current_snapshot_id().is_none() {
        return Ok(Vec::new());
    }
    let planning = || LakeError::iceberg("planning the rollup's small files");
    let scan = rollup.scan().with_filter(in_touched).build().map_err(planning())?;
    let mut small: Vec<FileScanTask> = scan
        .plan_files()
        .await
        .map_err(planning())?
        .try_filter(|t| futures::future::ready(t.record_count.is_some_and(|rows| rows <= FOLDED_FILE_ROWS)))
        .try_collect()
        .await
        .map_err(planning())?;
    small.sort_by_key(|t| t.record_count);
    let mut budget = FOLDED_ROWS_PER_FOLLOW;
    small.retain(|t| {
        let rows = t.record_count.unwrap_or(u64::MAX);
        let keep = rows <= budget;
        budget = budget.saturating_sub(if keep { rows } else { 0 });
        keep
    });
    if small.is_empty() {
        return Ok(Vec::new());
    }
    let paths = small.iter().map(|t| t.data_file_path.clone()).collect();
    read_rollup_files(rollup, small, partials).await?;
    Ok(paths)
}

/// The minute floor of a rollup rebuilt at `now` keeping minute rows for `minute_days` (none: for every
/// period): the start of the UTC day that many days before, on the boundary of every grain. A dashboard's
/// by-the-minute windows are recent; older minutes are answered from raw rows, and history loaded later
/// (a migration) is rolled up by the hour and day only.
pub fn rebuild_minute_floor(now: chrono::DateTime<chrono::Utc>, minute_days: Option<u32>) -> Option<i64> {
    minute_days.map(|days| Grain::Day.start(now.timestamp_micros()).saturating_sub(i64::from(days).saturating_mul(Grain::Day.micros())))
}

/// Records rows aggregated at once: the partials of a chunk (a few rows per record at most) are written
/// before the next chunk is read, so memory stays bounded however large the table.
const ROWS_PER_CHUNK: u64 = 250_000;

/// The tasks in consecutive chunks of about [`ROWS_PER_CHUNK`] rows (a file larger than that alone).
fn chunks(tasks: Vec<FileScanTask>) -> Vec<Vec<FileScanTask>> {
    let mut out: Vec<Vec<FileScanTask>> = Vec::new();
    let mut rows = 0;
    for task in tasks {
        let n = task.record_count.unwrap_or(ROWS_PER_CHUNK);
        if out.is_empty() || rows + n > ROWS_PER_CHUNK {
            out.push(Vec::new());
            rows = 0;
        }
        rows += n;
        out.last_mut().expect("pushed above").push(task);
    }
    out
}

/// Rolls up every live row of records snapshot `at`, a chunk at a time, and commits it as the whole
/// rollup in one snapshot, with minute rows from [`rebuild_minute_floor`] on; `None` when another commit
/// moved the rollup table first.
async fn rebuild_at(
    records: &Table,
    rollup: TableHandle<'_>,
    rollup_table: &Table,
    at: i64,
    minute_days: Option<u32>,
) -> Result<Option<(u64, usize)>, LakeError> {
    let tasks = live_files(records, at, None).await?;
    let rows = tasks.iter().filter_map(|t| t.record_count).sum::<u64>();
    let floor = rebuild_minute_floor(chrono::Utc::now(), minute_days);
    let filter = &RowFilter { minutes_from: floor, ..RowFilter::default() };
    let (files, rollup_rows) =
        write_each(rollup_table, chunks(tasks), |chunk| async move { aggregate(records, chunk, &Grain::ALL, filter).await }).await?;
    let replaced = live_rollup_files(rollup_table).await?;
    Ok(commit_files(rollup, rollup_table, files, at, floor, replaced).await?.then_some((rows, rollup_rows)))
}

/// Every data file live in the rollup table's current snapshot, planned to be read whole.
pub async fn rollup_files(rollup: &Table) -> Result<Vec<FileScanTask>, LakeError> {
    if rollup.metadata().current_snapshot_id().is_none() {
        return Ok(Vec::new());
    }
    let planning = || LakeError::iceberg("planning a scan of the rollups");
    let scan = rollup.scan().build().map_err(planning())?;
    scan.plan_files().await.map_err(planning())?.try_collect().await.map_err(planning())
}

/// Paths of every data file live in the rollup table's current snapshot.
pub async fn live_rollup_files(rollup: &Table) -> Result<Vec<String>, LakeError> {
    Ok(rollup_files(rollup).await?.into_iter().map(|t| t.data_file_path).collect())
}

fn total_rows(table: &Table, at: i64) -> Option<u64> {
    table.metadata().snapshot_by_id(at)?.summary().additional_properties.get("total-records")?.parse().ok()
}

/// Writes `partials` as rollup files and commits them on top of exactly `table` as covering `covers`
/// with minute rows from `minute_floor` on, replacing the files `replaces` names. `false`: another commit moved the table first (nothing of this
/// one is referenced).
pub async fn commit_partials(
    rollup: TableHandle<'_>,
    table: &Table,
    partials: &Partials,
    covers: i64,
    minute_floor: Option<i64>,
    replaces: Vec<String>,
) -> Result<bool, LakeError> {
    let files = write_partials(table, partials).await?;
    commit_files(rollup, table, files, covers, minute_floor, replaces).await
}

/// Each group's partials (`partials_of`) written before the next group's are computed, so memory holds
/// one group's rows; returns the files written and the rollup rows they hold. On an error, the files
/// already written are deleted.
pub(super) async fn write_each<G, F, Fut>(table: &Table, groups: Vec<G>, mut partials_of: F) -> Result<(Vec<DataFile>, usize), LakeError>
where
    F: FnMut(G) -> Fut,
    Fut: Future<Output = Result<Partials, LakeError>>,
{
    let (mut files, mut rows) = (Vec::new(), 0);
    for group in groups {
        let written = match partials_of(group).await {
            Ok(partials) => {
                rows += partials.len();
                write_partials(table, &partials).await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(written) => files.extend(written),
            Err(e) => {
                crate::lake::files::delete(table, &files).await;
                return Err(e);
            }
        }
    }
    Ok((files, rows))
}

/// `partials` written as rollup data files (none for no rows).
async fn write_partials(table: &Table, partials: &Partials) -> Result<Vec<DataFile>, LakeError> {
    let batch = crate::rollup::table::to_batch(partials)?;
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let prefix = format!("rollup-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    crate::lake::files::write_data_files(table, &[batch], crate::rollup::table::SORT_COLUMNS, &prefix, None).await
}

/// Commits rollup files already written, as [`commit_partials`] does.
async fn commit_files(
    rollup: TableHandle<'_>,
    table: &Table,
    files: Vec<DataFile>,
    covers: i64,
    minute_floor: Option<i64>,
    replaces: Vec<String>,
) -> Result<bool, LakeError> {
    let change = Change {
        files: files.clone(),
        replaces: replaces.into_iter().collect(),
        // A rollup with nothing to add or replace still records what it covers, in a snapshot of its own.
        rewrite_manifests: files.is_empty(),
        summary: state_summary(covers, minute_floor),
        ..Change::default()
    };
    match try_commit(rollup, table, change, &uuid::Uuid::new_v4().to_string()).await {
        Ok(Attempt::Landed) => Ok(true),
        Ok(Attempt::Refused) => {
            crate::lake::files::delete(table, &files).await;
            Ok(false)
        }
        Ok(Attempt::Lost(e)) => Err(e),
        Err(e) => {
            crate::lake::files::delete(table, &files).await;
            Err(e)
        }
    }
}

/// How one rollup commit ended, when it did not fail outright.
pub(super) enum Attempt {
    Landed,
    /// Another commit moved the table first: nothing of this one is referenced.
    Refused,
    /// Its reply was lost and the table holds no snapshot of it: it did not land (its files may still be
    /// referenced by nothing; orphan cleanup takes them if they are not retried).
    Lost(LakeError),
}

/// Commits `change` on top of exactly `table` under `commit_id`; an outcome the catalog left unknown is
/// settled by looking the commit id up in the table, never guessed.
pub(super) async fn try_commit(rollup: TableHandle<'_>, table: &Table, mut change: Change, commit_id: &str) -> Result<Attempt, LakeError> {
    change.summary.insert(COMMIT_ID_PROPERTY.to_string(), commit_id.to_string());
    match rollup.commit(table, change).await {
        Ok(Outcome::Landed { .. }) => Ok(Attempt::Landed),
        Ok(Outcome::Conflict) => Ok(Attempt::Refused),
        Err(e) if e.is_retryable() => {
            let fresh = rollup.load().await?;
            Ok(if commit_landed(fresh.metadata(), commit_id) { Attempt::Landed } else { Attempt::Lost(e) })
        }
        Err(e) => Err(e),
    }
}
