//! Table health: the figures that say whether maintenance keeps up (files per partition, small files,
//! snapshots, manifests, bytes, the age of the last commit), with the thresholds `doctor` warns at.

use chrono::{DateTime, Utc};

use super::compact::CompactionPolicy;
use super::error::MaintainError;
use super::files::{current_manifests, live_data_files};
use crate::lake::{Lake, TableKind};

/// When `doctor` warns.
const SMALL_FILE_RATIO_WARN: f64 = 0.5;
const SMALL_FILES_WARN: usize = 100;
const SNAPSHOTS_WARN: usize = 1_000;
const MANIFESTS_WARN: usize = 500;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableHealth {
    pub table: String,
    pub snapshot_id: Option<i64>,
    pub last_commit_age_s: Option<i64>,
    pub snapshots: usize,
    pub manifests: usize,
    pub data_files: usize,
    pub bytes: u64,
    pub records: u64,
    pub partitions: usize,
    pub max_files_per_partition: usize,
    pub mean_files_per_partition: f64,
    /// Files below the compaction candidate size.
    pub small_files: usize,
    pub small_file_ratio: f64,
    pub mean_file_bytes: u64,
    /// The records table's rollup: which snapshot it covers and how far behind it is.
    pub rollup: Option<RollupHealth>,
    /// What `doctor` should warn about, empty when healthy.
    pub warnings: Vec<String>,
}

/// Whether the rollup answers the records table's current snapshot, and with how much left to roll up.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RollupHealth {
    /// The records snapshot the rollup covers; none when no rollup state covers the current lineage.
    pub covers: Option<i64>,
    /// Appends after it, answered from their files until the next follow rolls them up.
    pub appends_behind: usize,
    /// Why the rollup cannot answer (answers then come from raw rows), when it cannot.
    pub uncovered: Option<String>,
}

/// Appends the rollup may lag by before health warns (a follow runs at every commit tick).
const ROLLUP_BEHIND_WARN: usize = 10;

async fn rollup_health(lake: &Lake, records: &iceberg::table::Table) -> Result<Option<RollupHealth>, MaintainError> {
    let Some(at) = records.metadata().current_snapshot_id() else { return Ok(None) };
    let rollup = lake.load(TableKind::Rollup).await?;
    Ok(Some(match crate::lake::rollup::base(records.metadata(), rollup.metadata(), at) {
        Ok(found) => RollupHealth { covers: Some(found.covers), appends_behind: found.delta.len(), uncovered: None },
        Err(why) => RollupHealth { covers: None, appends_behind: 0, uncovered: Some(why.to_string()) },
    }))
}

pub async fn health(lake: &Lake, kind: TableKind, compaction: &CompactionPolicy, now: DateTime<Utc>) -> Result<TableHealth, MaintainError> {
    let table = lake.load(kind).await?;
    let metadata = table.metadata();
    let live = live_data_files(&table).await?;
    let mut per_partition: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for file in &live {
        *per_partition.entry(format!("{}:{:?}", file.spec_id, file.file.partition())).or_default() += 1;
    }
    let small_limit = (compaction.target_file_bytes as f64 * compaction.candidate_ratio) as u64;
    let small_files = live.iter().filter(|f| f.file.file_size_in_bytes() < small_limit).count();
    let bytes: u64 = live.iter().map(|f| f.file.file_size_in_bytes()).sum();
    let mut health = TableHealth {
        table: lake.target(kind).name.clone(),
        snapshot_id: metadata.current_snapshot_id(),
        last_commit_age_s: metadata.current_snapshot().map(|s| (now.timestamp_millis() - s.timestamp_ms()) / 1000),
        snapshots: metadata.snapshots().count(),
        manifests: current_manifests(&table).await?.len(),
        data_files: live.len(),
        bytes,
        records: live.iter().map(|f| f.file.record_count()).sum(),
        partitions: per_partition.len(),
        max_files_per_partition: per_partition.values().copied().max().unwrap_or(0),
        mean_files_per_partition: if per_partition.is_empty() { 0.0 } else { live.len() as f64 / per_partition.len() as f64 },
        small_files,
        small_file_ratio: if live.is_empty() { 0.0 } else { small_files as f64 / live.len() as f64 },
        mean_file_bytes: if live.is_empty() { 0 } else { bytes / live.len() as u64 },
        rollup: if kind == TableKind::Records { rollup_health(lake, &table).await? } else { None },
        warnings: Vec::new(),
    };
    match &health.rollup {
        Some(RollupHealth { uncovered: Some(why), .. }) => health.warnings.push(format!(
            "the rollup does not cover the current snapshot ({why}): aggregates are answered from raw rows until maintenance or `sentiment-lake rollup rebuild` rebuilds it"
        )),
        Some(r) if r.appends_behind > ROLLUP_BEHIND_WARN => health.warnings.push(format!(
            "the rollup is {} commits behind: see the log for failed follows, or run `sentiment-lake rollup repair`",
            r.appends_behind
        )),
        _ => {}
    }
    if health.small_files >= SMALL_FILES_WARN && health.small_file_ratio > SMALL_FILE_RATIO_WARN {
        health.warnings.push(format!(
            "{} of {} data files are small (< {} MiB): run `sentiment-lake maintain` or check the MaintainTable schedule",
            health.small_files,
            health.data_files,
            small_limit >> 20
        ));
    }
    if health.snapshots > SNAPSHOTS_WARN {
        health.warnings.push(format!("{} snapshots: snapshot expiry is not keeping up", health.snapshots));
    }
    if health.manifests > MANIFESTS_WARN {
        health.warnings.push(format!("{} manifests in the current snapshot: manifests should be rewritten", health.manifests));
    }
    crate::observability::TableHealthMeasured {
        table: &health.table,
        data_files: health.data_files,
        small_files: health.small_files,
        snapshots: health.snapshots,
        manifests: health.manifests,
        bytes: health.bytes,
        last_commit_age_s: health.last_commit_age_s,
    }
    .emit();
    Ok(health)
}
