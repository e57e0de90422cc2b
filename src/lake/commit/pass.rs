//! The only code that changes table metadata: folds staged entries into fast-appends, one per bounded pass.
//!
//! Exactly-once rests on four rules:
//! 1. a row is committed only if its sequence number is above the table's watermark for its source, and
//!    watermarks advance only through contiguous staged ranges ([`crate::lake::stage::plan`]), in the same atomic swap
//!    as the append, in table properties and the snapshot summary ([`crate::lake::stage::ledger`]);
//! 2. the commit is built on exactly the metadata the watermark was read from and published by the catalog's
//!    compare-and-swap ([`crate::lake::catalog`]), so a concurrent commit makes ours fail instead of duplicating;
//! 3. after a failed or unknown-outcome commit the table is re-read: if our commit id is there the commit
//!    landed; a conflict is re-selected against the fresh watermark and retried with bounded, jittered
//!    back-off; other retryable errors are retried the same way; anything else ends the pass;
//! 4. entries are deleted only after the table covers them.
//!
//! Nothing staged can stall a table: an entry that cannot be read is quarantined with its reason (its range
//! still counts as accounted for), an entry another committer removed is skipped, a gap that outlives its
//! grace period is bridged and counted. Decoding and Parquet encoding run on the blocking pool, away from
//! the async workers that answer the host.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use chrono::Utc;
use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::Catalog;

use super::policy::CommitPolicy;
use super::retired;
use crate::lake::catalog::{self, Outcome, RenewingCatalog};
use crate::lake::error::LakeError;
use crate::lake::files::{delete, write_data_files};
use crate::lake::stage::{
    self, next_pass, rows_taken, Awaiting, CommittedState, Enqueued, EntryKind, Listing, PassPlan, Quarantine, Segment, StagedEntry, Staging,
    Watermarks, ADDED_BY_SOURCE_SUMMARY, AWAITING_PROPERTY, COMMIT_ID_PROPERTY, ENQUEUED_PROPERTY, LEDGER_FORMAT_PROPERTY, PARTIAL_SUMMARY,
    RECENT_COMMITS_PROPERTY, WATERMARKS_PROPERTY,
};
use crate::lake::table::compat::conform;
use crate::lake::table::Change;
use crate::lake::target::TableTarget;
use crate::quality::{Profiled, Profiles};

/// What one commit call did for one table (over one or more passes).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommitReport {
    pub table: String,
    /// Staged entries taken into passes (segments and range markers).
    pub segments: usize,
    pub staged_bytes: u64,
    pub rows_committed: usize,
    /// Rows already in the table (redelivered or staged twice) that were dropped.
    pub duplicates_dropped: usize,
    pub data_files: usize,
    /// Snapshots created (more than one when the backlog exceeded a pass).
    pub snapshots: usize,
    /// The newest snapshot this call created.
    pub snapshot_id: Option<i64>,
    pub attempts: u32,
    /// Commit attempts refused because another commit landed first.
    pub conflicts: u32,
    /// Commit id of the newest snapshot this call created.
    pub commit_id: Option<String>,
    /// Entries already covered by the watermark, deleted unread.
    pub obsolete_deleted: usize,
    /// Entries moved to the quarantine because they could not be read.
    pub quarantined: usize,
    /// Sequence numbers skipped by bridging gaps that outlived their grace period.
    pub gap_events: u64,
    /// Entries left staged behind a gap still within its grace period.
    pub waiting: usize,
    /// Entries held back until a replay brings back what a rollback took out.
    pub awaiting_replay: usize,
    /// Range markers written to replace several entries without rows.
    pub markers_merged: usize,
    #[serde(skip)]
    pub latency: Duration,
}

impl CommitReport {
    pub fn absorb(&mut self, pass: &CommitReport) {
        self.segments += pass.segments;
        self.staged_bytes += pass.staged_bytes;
        self.rows_committed += pass.rows_committed;
        self.duplicates_dropped += pass.duplicates_dropped;
        self.data_files += pass.data_files;
        self.snapshots += pass.snapshots;
        self.attempts += pass.attempts;
        self.conflicts += pass.conflicts;
        self.quarantined += pass.quarantined;
        self.gap_events += pass.gap_events;
        self.markers_merged += pass.markers_merged;
        self.awaiting_replay = self.awaiting_replay.max(pass.awaiting_replay);
        if pass.commit_id.is_some() {
            self.snapshot_id = pass.snapshot_id;
            self.commit_id = pass.commit_id.clone();
        }
    }
}

/// The storage the committer works on.
pub struct CommitContext<'a> {
    /// The table's catalog and, renewed with it, the pool its compare-and-swap runs on.
    pub catalog: &'a RenewingCatalog,
    pub staging: &'a Staging,
    pub quarantine: &'a Quarantine,
    pub target: &'a TableTarget,
    /// The retired sources ([`retired`]): consulted for any staged source the table has no
    /// watermark for, after the table is read, so a finished file staged again commits nothing.
    pub retired: &'a TableTarget,
    pub policy: CommitPolicy,
    /// The warehouse's store, for writers that stage inputs of their own there.
    pub warehouse: &'a Arc<dyn object_store::ObjectStore>,
    /// Where each pass that lands adds the profile of what it committed (tables whose target is
    /// profiled), at once: a later pass or table that fails does not take it back.
    pub landed: Option<&'a Mutex<Landed>>,
}

/// The profiles of what a commit call's passes committed, and the newest records commit among them.
#[derive(Debug, Default)]
pub struct Landed {
    pub profiles: Profiles,
    pub commit_id: Option<String>,
    pub snapshot_id: Option<i64>,
}

impl Landed {
    fn add(cx: &CommitContext<'_>, profiles: Profiles, commit: Option<(&str, Option<i64>)>) {
        let Some(landed) = cx.landed else { return };
        let mut landed = landed.lock().unwrap_or_else(|e| e.into_inner());
        landed.profiles.absorb(&profiles);
        if let Some((commit_id, snapshot_id)) = commit {
            // The records table commits first: its newest commit that made a snapshot names the profile;
            // another commit only when none is named yet.
            let records = cx.target.profiled == Some(Profiled::Records);
            if landed.commit_id.is_none() || (records && snapshot_id.is_some()) {
                landed.commit_id = Some(commit_id.to_string());
                landed.snapshot_id = snapshot_id.filter(|_| records);
            }
        }
    }
}

/// Commits a table's staged entries another way than [`commit_staged`] does (the records table through
/// Dremio, `crate::dremio::DremioWriter`), given the same context.
#[async_trait::async_trait]
pub trait StagedWriter: Send + Sync {
    async fn commit_staged(&self, cx: &CommitContext<'_>) -> Result<CommitReport, LakeError>;
}

/// Commits everything staged for `target` that can be committed now, in bounded passes.
pub async fn commit_staged(cx: &CommitContext<'_>) -> Result<CommitReport, LakeError> {
    let started = Instant::now();
    let mut report = CommitReport { table: cx.target.name.clone(), ..CommitReport::default() };
    loop {
        let listing = tidy_listing(cx, &mut report).await?;
        let table = load(cx).await?;
        let state = CommittedState::read(&cx.target.name, table.metadata())?;
        let mut watermarks = state.watermarks;
        let unknown: Vec<&str> = listing.sources.values().map(String::as_str).filter(|s| watermarks.get(s).is_none()).collect();
        for source in retired::retired_among(cx.catalog, cx.retired, &unknown).await? {
            // Finished and retired: whatever of it is staged now is a late duplicate, obsolete unread.
            watermarks.advance(&source, i64::MAX);
        }
        let plan = next_pass(&listing, &watermarks, &state.awaiting, cx.policy.pass, Utc::now());
        report.waiting = plan.waiting;
        report.awaiting_replay = plan.awaiting_replay;
        let ranges = state
            .awaiting
            .iter()
            .map(|(source, awaited)| crate::observability::AwaitedRange {
                source,
                after: awaited.after,
                through: awaited.through,
                rolled_back_at: awaited.at,
                events: awaited.events(),
            })
            .collect();
        crate::observability::ReplayAwaited { table: &cx.target.name, ranges }.emit();
        if plan.unnamed > 0 {
            tracing::warn!(table = %cx.target.name, entries = plan.unnamed, "Staged entries whose source descriptor is missing are left for a later pass.");
        }
        let obsolete: Vec<String> = plan.obsolete.iter().map(|e| e.path.clone()).collect();
        cx.staging.delete(&obsolete).await?;
        report.obsolete_deleted += obsolete.len();
        let grace = chrono::Duration::from_std(cx.policy.pass.gap_grace).unwrap_or(chrono::Duration::MAX);
        cx.staging.delete(&listing.orphan_summaries(grace, Utc::now())).await?;
        if plan.sources.is_empty() {
            break;
        }
        let more = plan.deferred > 0;
        let pass = commit_pass(cx, plan, &state.awaiting).await?;
        report.absorb(&pass);
        if pass.commit_id.is_none() || !more {
            break;
        }
    }
    report.latency = started.elapsed();
    Ok(report)
}

async fn load(cx: &CommitContext<'_>) -> Result<Table, LakeError> {
    cx.catalog.load_table(&cx.target.ident).await.map_err(LakeError::iceberg(format!("loading {}", cx.target.ident)))
}

/// What is staged for the table, once entries that are not this crate's are quarantined and entries of
/// older versions rewritten under today's names.
pub async fn tidy_listing(cx: &CommitContext<'_>, report: &mut CommitReport) -> Result<Listing, LakeError> {
    loop {
        let listing = cx.staging.list(&cx.target.staging).await?;
        for entry in &listing.unrecognised {
            report.quarantined += quarantine(cx, entry, "not an entry this crate stages (unrecognised name)").await?;
        }
        if listing.legacy.is_empty() {
            return Ok(listing);
        }
        report.quarantined += upgrade_legacy(cx, &listing.legacy).await?;
    }
}

async fn quarantine(cx: &CommitContext<'_>, entry: &StagedEntry, reason: &str) -> Result<usize, LakeError> {
    let moved = cx.quarantine.move_staged(entry, reason).await?;
    if let Some(path) = &moved {
        crate::observability::SegmentQuarantined { table: &cx.target.name, path, reason }.emit();
    }
    Ok(usize::from(moved.is_some()))
}

/// Rewrites segments staged by a version that did not record ranges under today's names (their range is
/// the span of their rows), so the planner can chain them.
async fn upgrade_legacy(cx: &CommitContext<'_>, legacy: &[StagedEntry]) -> Result<usize, LakeError> {
    let mut quarantined = 0;
    for entry in legacy {
        let bytes = match cx.staging.read(&entry.path).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        match stage::decode(bytes, &cx.target.arrow_schema) {
            Ok(segment) => {
                cx.staging.write(&cx.target.staging, &segment, false).await?;
                cx.staging.delete(std::slice::from_ref(&entry.path)).await?;
            }
            Err(reason) => quarantined += quarantine(cx, entry, &reason).await?,
        }
    }
    Ok(quarantined)
}

/// A decoded segment, the source (index into the plan) it belongs to, and where it was staged.
pub struct Loaded {
    pub source: usize,
    pub path: String,
    pub segment: Segment,
}

/// Reads and decodes the pass's staged segments, quarantining those that cannot be read; returns them and
/// how many were quarantined. One entry at a time, decoded off the async workers: its bytes are gone before
/// the next is read, so a pass holds its decoded rows and one encoded segment, not all of both.
pub async fn load_pass(cx: &CommitContext<'_>, plan: &PassPlan) -> Result<(Vec<Loaded>, usize), LakeError> {
    let (mut loaded, mut quarantined) = (Vec::new(), 0);
    for (index, source) in plan.sources.iter().enumerate() {
        for entry in source.entries.iter().filter(|e| e.kind == EntryKind::Rows) {
            let bytes = match cx.staging.read(&entry.path).await {
                Ok(bytes) => bytes,
                // Removed by another committer after it committed (or merged) it: nothing to do here.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let (schema, expected_source, expected_range) = (cx.target.arrow_schema.clone(), source.source.clone(), entry.range);
            let decoded = tokio::task::spawn_blocking(move || stage::decode_checked(bytes, &schema, &expected_source, expected_range))
                .await
                .map_err(|e| LakeError::Task(e.to_string()))?;
            match decoded {
                Ok(segment) => loaded.push(Loaded { source: index, path: entry.path.clone(), segment }),
                Err(reason) => quarantined += quarantine(cx, entry, &reason).await?,
            }
        }
    }
    Ok((loaded, quarantined))
}

/// Rows chosen for one attempt and the watermarks that commit them.
struct Selection {
    parts: Vec<RecordBatch>,
    rows: usize,
    duplicates: usize,
    watermarks: Watermarks,
    /// The committed watermarks of the pass's sources, which determine the selection.
    basis: Vec<(String, Option<i64>)>,
}

fn select(plan: &PassPlan, loaded: &[Loaded], committed: &Watermarks) -> Result<Selection, LakeError> {
    let mut watermarks = committed.clone();
    for source in &plan.sources {
        watermarks.advance(&source.source, source.through);
    }
    let mut seen: HashMap<usize, HashSet<i64>> = HashMap::new();
    let mut parts = Vec::with_capacity(loaded.len());
    let (mut rows, mut duplicates) = (0, 0);
    for item in loaded {
        let pass = &plan.sources[item.source];
        let source = &pass.source;
        // Rows a rollback took out, in an entry staged before it: the replay brings them, not this entry.
        let floor = pass.floors.get(&item.path).copied();
        let mask = rows_taken(&item.segment.sequence_numbers, committed.get(source), floor, seen.entry(item.source).or_default());
        duplicates += mask.false_count();
        rows += mask.true_count();
        parts.push(arrow_select::filter::filter_record_batch(&item.segment.rows, &mask)?);
    }
    let mut basis: Vec<(String, Option<i64>)> = plan.sources.iter().map(|s| (s.source.clone(), committed.get(&s.source))).collect();
    basis.sort();
    Ok(Selection { parts, rows, duplicates, watermarks, basis })
}

/// The profile of what `selection` commits: each source's rows, and the duplicates dropped from its entries.
/// A profile that cannot be made (rows lacking a column it reads) is logged and left out: it never fails a
/// commit.
fn profile(kind: Option<Profiled>, plan: &PassPlan, loaded: &[Loaded], selection: &Selection, committed: &Watermarks, table: &str) -> Profiles {
    let mut profiles = Profiles::default();
    let Some(kind) = kind else { return profiles };
    for (item, part) in loaded.iter().zip(&selection.parts) {
        let pass = &plan.sources[item.source];
        let source = &pass.source;
        // Rows another committer took since this pass was planned are its rows, not duplicates.
        if committed.get(source) == pass.committed {
            profiles.add_duplicates(source, (item.segment.rows.num_rows() - part.num_rows()) as u64);
        }
        if let Err(e) = profiles.add(kind, source, part, item.segment.enqueued) {
            tracing::warn!(table, source = %source, error = %e, "Committed rows could not be profiled; the quality table misses them.");
        }
    }
    profiles
}

/// The snapshot our commit `commit_id` made, if it made one (whoever committed since).
fn snapshot_of(table: &Table, commit_id: &str) -> Option<i64> {
    table
        .metadata()
        .snapshots()
        .find(|s| s.summary().additional_properties.get(COMMIT_ID_PROPERTY).is_some_and(|c| c == commit_id))
        .map(|s| s.snapshot_id())
}

/// Data files written by an attempt whose commit was refused, kept for reuse by the next attempt.
struct Written {
    basis: Vec<(String, Option<i64>)>,
    spec_id: i32,
    schema_id: i32,
    files: Vec<DataFile>,
}

/// Runs CPU-heavy async work (Parquet encoding through iceberg's async writers) on a blocking thread.
async fn on_blocking_pool<T, F>(work: F) -> Result<T, LakeError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, LakeError>> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work)).await.map_err(|e| LakeError::Task(e.to_string()))?
}

/// One pass: reads the planned entries, selects, writes and commits them (or, when nothing in them needs a
/// snapshot yet, folds their ranges into one marker per source).
async fn commit_pass(cx: &CommitContext<'_>, plan: PassPlan, planned_awaiting: &Awaiting) -> Result<CommitReport, LakeError> {
    let target = cx.target;
    let mut report = CommitReport { table: target.name.clone(), segments: plan.entries(), staged_bytes: plan.bytes(), ..CommitReport::default() };
    report.gap_events = plan.sources.iter().flat_map(|s| &s.gaps).map(|(a, b)| (b - a + 1) as u64).sum();
    for source in &plan.sources {
        for &(from, to) in &source.gaps {
            crate::observability::SequenceGap { table: &target.name, source: &source.source, from, to }.emit();
        }
    }

    let (loaded, quarantined) = load_pass(cx, &plan).await?;
    report.quarantined += quarantined;
    let loaded = Arc::new(loaded);
    let plan = Arc::new(plan);

    let commit_id = uuid::Uuid::new_v4().to_string();
    let mut written: Option<Written> = None;
    // The profile of the latest attempt's selection: the one that lands, or whose landing is found later.
    let mut profiles = Profiles::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        report.attempts = attempt;
        let table = load(cx).await?;
        let state = CommittedState::read(&target.name, table.metadata())?;
        if state.contains_commit(&commit_id) {
            // An earlier attempt landed although its reply said otherwise (and others may have committed
            // since: the snapshot is the one carrying our commit id).
            report.snapshot_id = snapshot_of(&table, &commit_id);
            Landed::add(cx, std::mem::take(&mut profiles), Some((&commit_id, report.snapshot_id)));
            break;
        }
        // Moved back since the pass was planned (a rollback landed in between): the pass was planned on
        // watermarks that no longer hold, and committing it could advance past the rolled-back range.
        let moved_back = plan.sources.iter().any(|s| match (s.committed, state.watermarks.get(&s.source)) {
            (Some(planned), Some(now)) => now < planned,
            (Some(_), None) => true,
            _ => false,
        }) || state.awaiting != *planned_awaiting;
        if moved_back {
            tracing::info!(table = %target.name, "The ledger moved back under a planned pass (a rollback); planning again.");
            if let Some(stale) = written.take() {
                delete(&table, &stale.files).await;
            }
            report.rows_committed = 0;
            return Ok(report);
        }
        let unknown: Vec<&str> = plan.sources.iter().map(|s| s.source.as_str()).filter(|s| state.watermarks.get(s).is_none()).collect();
        if !retired::retired_among(cx.catalog, cx.retired, &unknown).await?.is_empty() {
            // Retired since the pass was planned (its rows committed by someone else): the next pass sees
            // it retired and drops what is staged; committing this one now would add its rows twice.
            if let Some(stale) = written.take() {
                delete(&table, &stale.files).await;
            }
            report.rows_committed = 0;
            return Ok(report);
        }
        let job_plan = plan.clone();
        let job_loaded = loaded.clone();
        let committed = state.watermarks.clone();
        let (kind, name) = (target.profiled, target.name.clone());
        let (selection, profiled) = on_blocking_pool(async move {
            let selection = select(&job_plan, &job_loaded, &committed)?;
            let profiled = profile(kind, &job_plan, &job_loaded, &selection, &committed, &name);
            Ok((selection, profiled))
        })
        .await?;
        profiles = profiled;
        report.duplicates_dropped = selection.duplicates;
        report.rows_committed = selection.rows;
        // Judged by the table's last commit, not by the entries' age: merged markers are always new.
        let idle_ms = Utc::now().timestamp_millis() - table.metadata().last_updated_ms();
        let flush = u128::try_from(idle_ms).is_ok_and(|ms| ms >= cx.policy.ledger_flush_after.as_millis());
        if selection.rows == 0 && !flush {
            if let Some(stale) = written.take() {
                delete(&table, &stale.files).await;
            }

            report.markers_merged = merge_markers(cx, &plan, &state.watermarks).await?;
            // Nothing to commit, but the duplicates the selection dropped were delivered all the same
            // (counted once the entries are merged away, so a failed merge does not count them twice).
            Landed::add(cx, std::mem::take(&mut profiles), None);
            report.rows_committed = 0;
            return Ok(report);
        }
        let (spec_id, schema_id) = (table.metadata().default_partition_spec_id(), table.metadata().current_schema_id());
        let files = match written.take() {
            Some(w) if w.basis == selection.basis && w.spec_id == spec_id && w.schema_id == schema_id => w.files,
            stale => {
                if let Some(stale) = stale {
                    delete(&table, &stale.files).await;
                }
                let prefix = format!("{}-{attempt}", &commit_id[..8]);
                let (job_table, parts, sort) = (table.clone(), selection.parts.clone(), target.sort_columns);
                on_blocking_pool(async move {
                    let table_schema: SchemaRef = Arc::new(
                        iceberg::arrow::schema_to_arrow_schema(job_table.metadata().current_schema())
                            .map_err(LakeError::iceberg("the table's Arrow schema"))?,
                    );
                    let conformed = parts.iter().map(|p| conform(p, &table_schema)).collect::<Result<Vec<_>, _>>()?;
                    write_data_files(&job_table, &conformed, sort, &prefix, None).await
                })
                .await?
            }
        };
        report.data_files = files.len();
        let advanced = selection.watermarks.only(plan.sources.iter().map(|s| s.source.as_str())).to_property();
        let mut added_by_source: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (item, part) in loaded.iter().zip(&selection.parts) {
            if part.num_rows() > 0 {
                *added_by_source.entry(plan.sources[item.source].source.as_str()).or_default() += part.num_rows();
            }
        }
        let change = Change {
            files: files.clone(),
            summary: HashMap::from([
                (WATERMARKS_PROPERTY.to_string(), advanced),
                (LEDGER_FORMAT_PROPERTY.to_string(), PARTIAL_SUMMARY.to_string()),
                (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
                (ADDED_BY_SOURCE_SUMMARY.to_string(), serde_json::to_string(&added_by_source).expect("a map of counts serialises")),
            ]),
            properties: {
                let mut enqueued = Enqueued::of(table.metadata());
                for item in loaded.iter() {
                    if let Some(at) = item.segment.enqueued {
                        enqueued.advance(&plan.sources[item.source].source, at);
                    }
                }
                enqueued.retain_in(&selection.watermarks);
                let mut properties = vec![
                    (WATERMARKS_PROPERTY.to_string(), selection.watermarks.to_property()),
                    (RECENT_COMMITS_PROPERTY.to_string(), state.recent_commits_with(table.metadata().properties(), &commit_id)),
                    (ENQUEUED_PROPERTY.to_string(), enqueued.to_property()),
                ];
                // A replay committed through a rolled-back range releases it, in the same swap.
                if !state.awaiting.is_empty() {
                    let mut awaiting = state.awaiting.clone();
                    for source in awaiting.settle(&selection.watermarks) {
                        tracing::info!(table = %target.name, source, "The replay of a rolled-back range is committed; the range is released.");
                    }
                    properties.push((AWAITING_PROPERTY.to_string(), awaiting.to_property()));
                }
                properties
            },
            ..Change::default()
        };
        let (_, catalog_swap) = cx.catalog.current().await?;
        let failure = match catalog::commit(&catalog_swap, &table, change).await {
            Ok(Outcome::Landed { snapshot_id }) => {
                report.snapshot_id = snapshot_id.or(table.metadata().current_snapshot_id());
                report.snapshots = usize::from(snapshot_id.is_some());
                // Its own snapshot only: a commit of properties alone made none.
                Landed::add(cx, std::mem::take(&mut profiles), Some((&commit_id, snapshot_id)));
                break;
            }
            Ok(Outcome::Conflict) => {
                report.conflicts += 1;
                crate::observability::CommitConflict { table: &target.name }.emit();
                // Refused by the catalog: the data files are ours alone and may be reused.
                written = Some(Written { basis: selection.basis, spec_id, schema_id, files });
                LakeError::Conflict { table: target.name.clone() }
            }
            // Whether it landed is not known: the next attempt re-reads the table and looks for our commit id.
            Err(e) if e.is_retryable() => e,
            Err(e) => return Err(e),
        };
        if attempt >= cx.policy.max_attempts {
            // The last reply may have been lost on a commit that landed: its profile is kept then (the next
            // call finds the entries covered and deletes them unread).
            if !matches!(failure, LakeError::Conflict { .. }) {
                if let Ok(table) = load(cx).await {
                    if CommittedState::read(&target.name, table.metadata()).is_ok_and(|state| state.contains_commit(&commit_id)) {
                        Landed::add(cx, std::mem::take(&mut profiles), Some((&commit_id, snapshot_of(&table, &commit_id))));
                    }
                }
            }
            // Files that may be referenced stay; the next pass re-reads the table first (orphan cleanup
            // removes files nothing references).
            return Err(LakeError::CommitExhausted { table: target.name.clone(), attempts: attempt, source: Box::new(failure) });
        }
        tracing::info!(table = %target.name, attempt, error = %failure, "Commit did not land; re-reading the table before retrying.");
        tokio::time::sleep(cx.policy.backoff(attempt)).await;
    }
    report.commit_id = Some(commit_id);

    let paths: Vec<String> = plan.sources.iter().flat_map(|s| &s.entries).map(|e| e.path.clone()).collect();
    cx.staging.delete(&paths).await?;
    Ok(report)
}

/// Replaces each source's taken entries by one marker over their range (nothing in them needs committing:
/// their rows are below the watermark, or they had none), bounding what stays staged between commits.
async fn merge_markers(cx: &CommitContext<'_>, plan: &PassPlan, committed: &Watermarks) -> Result<usize, LakeError> {
    let mut merged = 0;
    for source in &plan.sources {
        let fresh = committed.get(&source.source);
        let first = source.entries.iter().filter_map(|e| e.range).map(|r| r.0).min().unwrap_or(source.through);
        let from = fresh.map_or(first, |w| w.saturating_add(1).max(first));
        let paths: Vec<String> = source.entries.iter().map(|e| e.path.clone()).collect();
        if fresh.is_some_and(|w| w >= source.through) {
            cx.staging.delete(&paths).await?;
            continue;
        }
        let already_one_marker = source.entries.len() == 1 && source.entries[0].kind == EntryKind::Marker;
        if already_one_marker && source.gaps.is_empty() {
            continue;
        }
        // The marker is durable before its parts go, so a crash leaves overlap (harmless), never a hole.
        cx.staging.write_marker(&cx.target.staging, &source.key, (from, source.through)).await?;
        cx.staging.delete(&paths).await?;
        merged += 1;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::lake::stage::SourcePass;

    fn loaded(source: usize, seqs: &[i64]) -> Loaded {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, false)]));
        let values: Vec<i32> = seqs.iter().map(|&s| s as i32).collect();
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(values))]).unwrap();
        let range = (*seqs.iter().min().unwrap(), *seqs.iter().max().unwrap());
        Loaded {
            source,
            path: format!("p{source}/{}", seqs[0]),
            segment: Segment { source: format!("p{source}"), invocation_id: None, range, rows, sequence_numbers: seqs.to_vec(), enqueued: None },
        }
    }

    fn source(name: &str, through: i64) -> SourcePass {
        SourcePass {
            source: name.into(),
            key: name.into(),
            committed: None,
            through,
            entries: Vec::new(),
            gaps: Vec::new(),
            floors: Default::default(),
        }
    }

    #[test]
    fn selection_drops_committed_and_duplicate_sequence_numbers() {
        let mut committed = Watermarks::default();
        committed.advance("p0", 2);
        let plan = PassPlan { sources: vec![source("p0", 6), source("p1", 8)], ..PassPlan::default() };
        let segments = [loaded(0, &[1, 2, 3, 4]), loaded(0, &[3, 4, 5]), loaded(1, &[7, 8])];
        let s = select(&plan, &segments, &committed).unwrap();
        let values: Vec<i32> = s.parts.iter().flat_map(|p| p.column(0).as_any().downcast_ref::<Int32Array>().unwrap().values().to_vec()).collect();
        assert_eq!(values, vec![3, 4, 5, 7, 8]);
        assert_eq!((s.rows, s.duplicates), (5, 4));
        assert_eq!(s.watermarks.get("p0"), Some(6), "the range's end, not only its last row");
        assert_eq!(s.watermarks.get("p1"), Some(8));
        assert_eq!(s.basis, vec![("p0".to_string(), Some(2)), ("p1".to_string(), None)]);
        assert_eq!(s.parts[1].column(0).len(), 1);
    }

    #[test]
    fn backoff_stays_within_bounds() {
        let policy = CommitPolicy::default();
        for attempt in 0..40 {
            assert!(policy.backoff(attempt) <= policy.max_backoff);
        }
    }
}
