//! Bin-pack compaction per partition: small data files of one partition are read, sorted by the table's
//! sort columns and rewritten as target-sized files, committed as a `replace` snapshot through the
//! catalog's compare-and-swap.
//!
//! Thresholds follow Iceberg's `rewrite_data_files` defaults, scaled to a function's budget: a file is a
//! candidate below 75 % of the target size (128 MiB by default), a partition is rewritten when it has at
//! least `min_input_files` (5) candidates, and candidates are packed into groups of at most one target's
//! worth of input; groups are rewritten one at a time and committed together, up to 1,000 per `replace`
//! snapshot. A run stops taking groups past `max_input_bytes`, and the next run picks up what is left
//! (planning is from the table as it is then).
//!
//! Against concurrent appends: a commit refused because another landed first is rebuilt on the new metadata
//! with the same rewritten files (appends only add manifests, which are carried over); if a file it replaces
//! is no longer live (another compaction), the group is dropped and its files deleted. Rows are counted
//! before and after each rewrite; a mismatch commits nothing. A commit whose outcome is unknown is looked up
//! by its commit id before anything is retried or deleted, so a rewrite that landed is never undone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use iceberg::scan::FileScanTask;
use iceberg::spec::DataFile;
use iceberg::table::Table;

use super::error::MaintainError;
use super::files::{live_data_files, LiveFile};
use crate::lake::table::compat::conform;
use crate::lake::{commit_landed, Change, Lake, LakeError, Outcome, TableKind, COMMIT_ID_PROPERTY};

/// Summary key marking snapshots written by maintenance (`compaction`, `manifest-rewrite`).
pub const MAINTENANCE_PROPERTY: &str = "sentiment-lake.maintenance";

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CompactionPolicy {
    pub target_file_bytes: u64,
    /// A file is a candidate below this share of the target size.
    pub candidate_ratio: f64,
    /// A partition is rewritten only with at least this many candidates.
    pub min_input_files: usize,
    /// Input one run rewrites at most (the rest waits for the next run).
    pub max_input_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self { target_file_bytes: 128 << 20, candidate_ratio: 0.75, min_input_files: 5, max_input_bytes: 1 << 30 }
    }
}

/// Files of one partition to rewrite together.
#[derive(Debug, Clone)]
pub struct Group {
    pub partition: String,
    pub files: Vec<DataFile>,
}

impl Group {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.file_size_in_bytes()).sum()
    }
    fn records(&self) -> u64 {
        self.files.iter().map(|f| f.record_count()).sum()
    }
}

/// The groups worth rewriting, most fragmented partitions first, and how many were left for later.
pub fn plan(live: &[LiveFile], policy: &CompactionPolicy) -> (Vec<Group>, usize) {
    let limit = (policy.target_file_bytes as f64 * policy.candidate_ratio) as u64;
    let mut partitions: BTreeMap<String, Vec<&DataFile>> = BTreeMap::new();
    for live in live.iter().filter(|l| l.file.file_size_in_bytes() < limit) {
        partitions.entry(format!("{}:{:?}", live.spec_id, live.file.partition())).or_default().push(&live.file);
    }
    let mut groups = Vec::new();
    for (partition, mut files) in partitions.into_iter().filter(|(_, files)| files.len() >= policy.min_input_files.max(2)) {
        files.sort_by_key(|f| (f.file_size_in_bytes(), f.file_path().to_string()));
        let mut current = Group { partition: partition.clone(), files: Vec::new() };
        for file in files {
            if !current.files.is_empty() && current.bytes() + file.file_size_in_bytes() > policy.target_file_bytes {
                groups.push(std::mem::replace(&mut current, Group { partition: partition.clone(), files: Vec::new() }));
            }
            current.files.push(file.clone());
        }
        groups.push(current);
    }
    groups.retain(|g| g.files.len() >= 2);
    groups.sort_by_key(|g| std::cmp::Reverse(g.files.len()));
    let mut taken = Vec::new();
    let mut bytes = 0;
    let total = groups.len();
    for group in groups {
        if !taken.is_empty() && bytes + group.bytes() > policy.max_input_bytes {
            break;
        }
        bytes += group.bytes();
        taken.push(group);
    }
    let left = total - taken.len();
    (taken, left)
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompactionReport {
    pub groups_committed: usize,
    /// `replace` snapshots committed (up to 1,000 groups each).
    pub snapshots: usize,
    pub files_rewritten: usize,
    pub files_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub rows: u64,
    pub conflicts: usize,
    /// Groups dropped because a file they would replace was replaced meanwhile, or because every attempt
    /// lost to another commit (ingestion goes first; the next run tries again).
    pub groups_dropped: usize,
    /// Groups left for the next run by the per-run bound.
    pub groups_left: usize,
    /// Why nothing was compacted, when that is a choice rather than nothing to do.
    pub skipped: Option<String>,
    pub seconds: f64,
}

const COMMIT_ATTEMPTS: u32 = 10;
/// Groups one `replace` snapshot commits: each commit rewrites every manifest holding a replaced file, so
/// committing partition by partition would rewrite the same manifests once per partition.
const GROUPS_PER_COMMIT: usize = 1_000;

pub async fn compact(lake: &Lake, kind: TableKind, policy: &CompactionPolicy) -> Result<CompactionReport, MaintainError> {
    let started = Instant::now();
    let mut report = CompactionReport::default();
    let table = lake.load(kind).await?;
    let deletes = table.metadata().current_snapshot().and_then(|s| s.summary().additional_properties.get("total-delete-files").cloned());
    if deletes.as_deref().is_some_and(|n| n != "0") {
        // Rewritten files get a new sequence number, which older delete files would no longer apply to.
        report.skipped = Some(format!("the table has delete files ({}); compaction would have to apply them first", deletes.unwrap_or_default()));
        return Ok(report);
    }
    let live = live_data_files(&table).await?;
    let (groups, left) = plan(&live, policy);
    report.groups_left = left;
    if groups.is_empty() {
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let wanted: HashSet<&str> = groups.iter().flat_map(|g| g.files.iter().map(|f| f.file_path())).collect();
    let scan = table.scan().select_all().build().map_err(LakeError::iceberg("planning the compaction scan"))?;
    let mut tasks: HashMap<String, FileScanTask> = HashMap::new();
    let mut planned = scan.plan_files().await.map_err(LakeError::iceberg("planning the compaction scan"))?;
    while let Some(task) = planned.try_next().await.map_err(LakeError::iceberg("planning the compaction scan"))? {
        if wanted.contains(task.data_file_path()) {
            tasks.insert(task.data_file_path().to_string(), task);
        }
    }
    let sort = lake.target(kind).sort_columns;
    let mut batch: Vec<Rewritten> = Vec::new();
    for group in groups {
        let (rows, written) = rewrite(lake, &table, &group, &tasks, sort, policy).await?;
        batch.push(Rewritten { group, rows, written });
        if batch.len() == GROUPS_PER_COMMIT {
            commit_batch(lake, kind, std::mem::take(&mut batch), &mut report).await?;
        }
    }
    if !batch.is_empty() {
        commit_batch(lake, kind, batch, &mut report).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    crate::observability::TableCompacted {
        table: &lake.target(kind).name,
        files_rewritten: report.files_rewritten,
        files_written: report.files_written,
        bytes_read: report.bytes_read,
        seconds: report.seconds,
    }
    .emit();
    Ok(report)
}

/// Reads a group's rows and writes them as target-sized, sorted files; checks the row count.
async fn rewrite(
    lake: &Lake,
    table: &Table,
    group: &Group,
    tasks: &HashMap<String, FileScanTask>,
    sort: &[&str],
    policy: &CompactionPolicy,
) -> Result<(u64, Vec<DataFile>), MaintainError> {
    let mut group_tasks = Vec::with_capacity(group.files.len());
    for file in &group.files {
        let task =
            tasks.get(file.file_path()).cloned().ok_or_else(|| MaintainError::Unsafe(format!("{} is live but was not planned", file.file_path())))?;
        group_tasks.push(Ok(task));
    }
    let reader = table.reader_builder().build();
    let stream = reader.read(futures::stream::iter(group_tasks).boxed()).map_err(LakeError::iceberg("reading files to compact"))?.stream();
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(LakeError::iceberg("reading files to compact"))?;
    let schema =
        Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema()).map_err(LakeError::iceberg("the table's Arrow schema"))?);
    let batches = batches.iter().map(|b| conform(b, &schema)).collect::<Result<Vec<_>, _>>().map_err(LakeError::from)?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if rows != group.records() {
        return Err(MaintainError::Unsafe(format!("{}: read {rows} rows where the manifests list {}", group.partition, group.records())));
    }
    let prefix = format!("compact-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let written = lake.write_data_files(table, &batches, sort, &prefix, Some(policy.target_file_bytes as usize)).await?;
    let written_rows: u64 = written.iter().map(|f| f.record_count()).sum();
    if written_rows != rows {
        lake.delete_unreferenced(table, &written).await;
        return Err(MaintainError::Unsafe(format!("{}: wrote {written_rows} rows of {rows}", group.partition)));
    }
    Ok((rows, written))
}

/// A group rewritten and not yet committed.
struct Rewritten {
    group: Group,
    rows: u64,
    written: Vec<DataFile>,
}

/// Commits rewritten groups as one `replace` snapshot and accounts for them in `report`.
async fn commit_batch(lake: &Lake, kind: TableKind, batch: Vec<Rewritten>, report: &mut CompactionReport) -> Result<(), MaintainError> {
    let replaces: HashSet<String> = batch.iter().flat_map(|r| r.group.files.iter().map(|f| f.file_path().to_string())).collect();
    let written: Vec<DataFile> = batch.iter().flat_map(|r| r.written.iter().cloned()).collect();
    match commit_rewrite(lake, kind, replaces, &written).await? {
        RewriteOutcome::Committed { conflicts } => {
            report.conflicts += conflicts;
            report.snapshots += 1;
            for r in &batch {
                report.groups_committed += 1;
                report.files_rewritten += r.group.files.len();
                report.files_written += r.written.len();
                report.bytes_read += r.group.bytes();
                report.bytes_written += r.written.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
                report.rows += r.rows;
            }
        }
        RewriteOutcome::Dropped { conflicts } => {
            report.conflicts += conflicts;
            report.groups_dropped += batch.len();
        }
    }
    Ok(())
}

enum RewriteOutcome {
    Committed { conflicts: usize },
    Dropped { conflicts: usize },
}

async fn commit_rewrite(lake: &Lake, kind: TableKind, replaces: HashSet<String>, written: &[DataFile]) -> Result<RewriteOutcome, MaintainError> {
    let commit_id = uuid::Uuid::new_v4().to_string();
    let mut conflicts = 0;
    let mut table = lake.load(kind).await?;
    let spec_id = table.metadata().default_partition_spec_id();
    let mut unknown: Option<LakeError> = None;
    for attempt in 1..=COMMIT_ATTEMPTS {
        let change = Change {
            files: written.to_vec(),
            replaces: replaces.clone(),
            summary: HashMap::from([
                (MAINTENANCE_PROPERTY.to_string(), "compaction".to_string()),
                (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
            ]),
            ..Change::default()
        };
        match lake.commit_change(&table, change).await {
            Ok(Outcome::Landed { .. }) => return Ok(RewriteOutcome::Committed { conflicts }),
            Ok(Outcome::Conflict) => {
                conflicts += 1;
                unknown = None;
            }
            // A file to replace is gone: our files were never referenced.
            Err(LakeError::Conflict { .. }) => {
                lake.delete_unreferenced(&table, written).await;
                return Ok(RewriteOutcome::Dropped { conflicts });
            }
            Err(e) if e.is_retryable() => {
                // Unknown outcome: did it land? Only the table can say.
                let fresh = lake.load(kind).await?;
                if commit_landed(fresh.metadata(), &commit_id) {
                    return Ok(RewriteOutcome::Committed { conflicts });
                }
                tracing::info!(table = %lake.target(kind).name, attempt, error = %e, "Compaction commit did not land; retrying.");
                unknown = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
        table = lake.load(kind).await?;
        if commit_landed(table.metadata(), &commit_id) {
            return Ok(RewriteOutcome::Committed { conflicts });
        }
        if table.metadata().default_partition_spec_id() != spec_id {
            // The files were written for the old spec: start over in the next run.
            break;
        }
        // Jittered: ingestion commits every few seconds, and both must not retry in step.
        let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (25 * u64::from(attempt));
        tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
    }
    match unknown {
        // The last attempt's outcome is unknown: its files may be referenced; orphan cleanup removes them if not.
        Some(e) => Err(e.into()),
        // Every attempt was refused: nothing references the files. Ingestion wins; the next run tries again.
        None => {
            lake.delete_unreferenced(&table, written).await;
            Ok(RewriteOutcome::Dropped { conflicts })
        }
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat, Literal, Struct};

    use super::*;

    fn file(partition: &str, n: usize, size: u64) -> LiveFile {
        let file = DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!("/t/data/{partition}/{n}.parquet"))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::from_iter([Some(Literal::string(partition))]))
            .record_count(10)
            .file_size_in_bytes(size)
            .build()
            .unwrap();
        LiveFile { file, spec_id: 0 }
    }

    #[test]
    fn small_files_of_busy_partitions_are_packed_up_to_the_target() {
        let policy = CompactionPolicy { target_file_bytes: 100, min_input_files: 3, max_input_bytes: 1_000, ..CompactionPolicy::default() };
        let mut live: Vec<LiveFile> = (0..7).map(|n| file("a", n, 30)).collect();
        live.extend((0..2).map(|n| file("b", n, 10))); // too few files
        live.extend((0..4).map(|n| file("c", n, 80))); // not small (>= 75)
        live.push(file("a", 99, 90)); // large: left alone
        let (groups, left) = plan(&live, &policy);
        assert_eq!(left, 0);
        let sizes: Vec<usize> = groups.iter().map(|g| g.files.len()).collect();
        assert_eq!(sizes, vec![3, 3], "7 files of 30 bytes in bins of <= 100 bytes: 3 + 3 + 1 (a single file is not rewritten)");
        assert!(groups.iter().all(|g| g.partition.contains('a') && g.bytes() <= 100));
    }

    #[test]
    fn a_run_is_bounded_by_its_input_bytes() {
        let policy = CompactionPolicy { target_file_bytes: 100, min_input_files: 2, max_input_bytes: 150, ..CompactionPolicy::default() };
        let live: Vec<LiveFile> = ["a", "b", "c"].iter().flat_map(|p| (0..2).map(move |n| file(p, n, 40))).collect();
        let (groups, left) = plan(&live, &policy);
        assert_eq!((groups.len(), left), (1, 2), "80 bytes per group, 150 per run");
    }
}
