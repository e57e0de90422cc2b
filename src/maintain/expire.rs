//! Snapshot expiry: snapshots older than the retention and beyond the newest few leave the metadata (one
//! compare-and-swap commit, table properties and so the ledger carried over), then the files only they
//! reached are deleted. The current snapshot and every branch or tag target are always kept.
//!
//! Defaults are Iceberg's own (`history.expire.max-snapshot-age-ms` 5 days), read from the table's
//! properties when set, with at least 10 snapshots kept (`history.expire.min-snapshots-to-keep`; Iceberg's
//! default is 1, which leaves no time travel at all on a table that is rarely written).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;

use super::error::MaintainError;
use super::files::{ref_targets, Reachable};
use crate::lake::{Change, Lake, LakeError, Outcome, TableKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryPolicy {
    pub max_age: Duration,
    pub min_snapshots: usize,
    /// Snapshots kept at most however young (`min_snapshots` and referenced ones still kept): every
    /// snapshot adds about 1.1 KB to the metadata file each commit rewrites and each reader parses, so at
    /// a 30 s interval five days of history would be 14,400 snapshots and a 16 MB file.
    pub max_snapshots: usize,
}

/// Table property overriding [`ExpiryPolicy::max_snapshots`] (Iceberg bounds history by age only).
pub const MAX_SNAPSHOTS_PROPERTY: &str = "sentiment-lake.history.max-snapshots";

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(5 * 24 * 3600), min_snapshots: 10, max_snapshots: DEFAULT_MAX_SNAPSHOTS }
    }
}

/// Five days of commits at a 5-minute interval fit; at 30 s, about 17 hours of time travel.
pub const DEFAULT_MAX_SNAPSHOTS: usize = 2_000;

impl ExpiryPolicy {
    /// This policy with the table's own `history.expire.*` properties where it sets them.
    pub fn for_table(self, table: &Table) -> Self {
        let property = |key: &str| table.metadata().properties().get(key).and_then(|v| v.parse::<u64>().ok());
        Self {
            max_age: property("history.expire.max-snapshot-age-ms").map(Duration::from_millis).unwrap_or(self.max_age),
            min_snapshots: property("history.expire.min-snapshots-to-keep").map(|n| n as usize).unwrap_or(self.min_snapshots),
            max_snapshots: property(MAX_SNAPSHOTS_PROPERTY).map(|n| n as usize).unwrap_or(self.max_snapshots),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExpiryReport {
    pub snapshots_before: usize,
    pub expired: usize,
    pub files_deleted: usize,
    /// Files that could not be deleted (orphan cleanup will).
    pub delete_failures: usize,
}

/// Which snapshots of `table` the policy expires as of `now`.
pub fn expired_ids(table: &Table, policy: &ExpiryPolicy, now: DateTime<Utc>) -> Vec<i64> {
    let metadata = table.metadata();
    let mut keep: HashSet<i64> = ref_targets(table);
    keep.extend(metadata.current_snapshot_id());
    let mut by_age: Vec<_> = metadata.snapshots().collect();
    by_age.sort_by_key(|s| std::cmp::Reverse(s.timestamp_ms()));
    keep.extend(by_age.iter().take(policy.min_snapshots).map(|s| s.snapshot_id()));
    let cutoff = now.timestamp_millis() - policy.max_age.as_millis() as i64;
    keep.extend(by_age.iter().filter(|s| s.timestamp_ms() >= cutoff).take(policy.max_snapshots.max(1)).map(|s| s.snapshot_id()));
    by_age.iter().map(|s| s.snapshot_id()).filter(|id| !keep.contains(id)).collect()
}

pub async fn expire(lake: &Lake, kind: TableKind, policy: &ExpiryPolicy, now: DateTime<Utc>) -> Result<ExpiryReport, MaintainError> {
    for _attempt in 0..5 {
        let table = lake.load(kind).await?;
        let effective = policy.for_table(&table);
        let mut report = ExpiryReport { snapshots_before: table.metadata().snapshots().count(), ..ExpiryReport::default() };
        let expired = expired_ids(&table, &effective, now);
        if expired.is_empty() {
            return Ok(report);
        }
        let expired_set: HashSet<i64> = expired.iter().copied().collect();
        let (gone, kept): (Vec<SnapshotRef>, Vec<SnapshotRef>) =
            table.metadata().snapshots().cloned().partition(|s| expired_set.contains(&s.snapshot_id()));
        let keep = Reachable::of(&table, kept).await?;
        let reached = Reachable::of(&table, gone).await?;
        match lake.commit_change(&table, Change { expire: expired.clone(), ..Change::default() }).await? {
            Outcome::Landed { .. } => {
                report.expired = expired.len();
                // Only what the kept snapshots do not reach, and only inside the table's own location.
                let location = table.metadata().location();
                let doomed: Vec<String> = reached.all().filter(|p| !keep.contains(p) && inside(location, p)).cloned().collect();
                for path in &doomed {
                    match table.file_io().delete(path).await {
                        Ok(()) => report.files_deleted += 1,
                        Err(e) => {
                            report.delete_failures += 1;
                            tracing::debug!(path, error = %e, "Could not delete a file of an expired snapshot; orphan cleanup will.");
                        }
                    }
                }
                return Ok(report);
            }
            Outcome::Conflict => continue,
        }
    }
    Err(MaintainError::Lake(LakeError::Conflict { table: lake.target(kind).name.clone() }))
}

/// Whether `path` lies under the table location `location`, by whole path segments (a sibling table's
/// `sentiment_records_v2/...` is not under `sentiment_records`).
fn inside(location: &str, path: &str) -> bool {
    path.starts_with(&format!("{}/", location.trim_end_matches('/')))
}

#[cfg(test)]
mod location_tests {
    use super::inside;

    #[test]
    fn only_files_under_the_table_location_by_whole_segments() {
        let location = "abfss://lake@acct.dfs.core.windows.net/warehouse/sentiment/sentiment_records";
        assert!(inside(location, &format!("{location}/data/day=2026-12-01/a.parquet")));
        assert!(inside(&format!("{location}/"), &format!("{location}/metadata/snap-1.avro")));
        assert!(!inside(location, &format!("{location}_v2/data/a.parquet")), "a sibling table's files are not ours");
        assert!(!inside(location, location), "the location itself is not a file in it");
        assert!(!inside(location, "file:///elsewhere/a.parquet"));
    }
}
