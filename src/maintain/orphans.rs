//! Orphan cleanup: files under the table's location that no snapshot and no metadata file references,
//! older than a threshold (3 days by default, Iceberg's `remove_orphan_files` default: a commit in flight
//! writes its files before it publishes them). Reports by default; deletes only when asked.
//!
//! Paths are compared relative to the table location. If any referenced path lies outside it (or is
//! spelled another way, `wasbs://` for `abfss://`, say), the run refuses: a mismatch could make a
//! referenced file look orphaned.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::error::MaintainError;
use super::files::Reachable;
use crate::lake::{Lake, LakeError, TableKind};
use crate::storage::{Location, OpenedLocation};

/// Orphans listed in a report (all are counted).
const LISTED: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OrphanPolicy {
    pub older_than: Duration,
    pub delete: bool,
}

impl Default for OrphanPolicy {
    fn default() -> Self {
        Self { older_than: Duration::from_secs(3 * 24 * 3600), delete: false }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OrphanReport {
    pub listed: usize,
    pub referenced: usize,
    /// Unreferenced but younger than the threshold: possibly a commit in flight.
    pub too_young: usize,
    pub orphans: usize,
    pub orphan_bytes: u64,
    pub deleted: usize,
    pub examples: Vec<String>,
}

/// `path` relative to the table location, if it is under it (`file://` and bare local paths alike).
fn relative<'a>(path: &'a str, location: &str) -> Option<&'a str> {
    let strip = |p: &'a str| p.strip_prefix("file://").unwrap_or(p);
    let location = location.strip_prefix("file://").unwrap_or(location).trim_end_matches('/');
    strip(path).strip_prefix(location).and_then(|rest| rest.strip_prefix('/'))
}

pub async fn remove_orphans(lake: &Lake, kind: TableKind, policy: &OrphanPolicy, now: DateTime<Utc>) -> Result<OrphanReport, MaintainError> {
    let table = lake.load(kind).await?;
    let metadata = table.metadata();
    let location = metadata.location().trim_end_matches('/').to_string();
    let reachable = Reachable::of(&table, metadata.snapshots().cloned().collect()).await?;
    let metadata_files: Vec<String> = table
        .metadata_location()
        .map(str::to_string)
        .into_iter()
        .chain(metadata.metadata_log().iter().map(|m| m.metadata_file.clone()))
        .chain(metadata.statistics_iter().map(|s| s.statistics_path.clone()))
        .chain(metadata.partition_statistics_iter().map(|s| s.statistics_path.clone()))
        .collect();
    // The files the kept snapshots need must all be found by the listing; if one is not, paths are spelled
    // differently there than in the manifests and nothing may be deleted.
    let mut must_exist: HashSet<String> = HashSet::new();
    for path in reachable.all() {
        if let Some(rel) = relative(path, &location) {
            must_exist.insert(rel.to_string());
        }
    }
    let mut keep: HashSet<String> = HashSet::new();
    for path in reachable.all().cloned().chain(metadata_files) {
        match relative(&path, &location) {
            Some(rel) => {
                keep.insert(rel.to_string());
            }
            None => {
                return Err(MaintainError::Unsafe(format!(
                    "{path} is referenced but not under the table location {location}: orphan cleanup would not recognise it, so it does not run"
                )))
            }
        }
    }
    let opened = OpenedLocation::open(Location::parse(&location).map_err(LakeError::from)?, lake.storage_settings()).map_err(LakeError::from)?;
    let cutoff = now - chrono::Duration::from_std(policy.older_than).unwrap_or(chrono::Duration::MAX);
    let mut report = OrphanReport::default();
    let mut listing = opened.store.list(None);
    let mut doomed = Vec::new();
    while let Some(object) =
        listing.try_next().await.map_err(|e| LakeError::from(crate::storage::StorageError::store("list", location.clone(), e)))?
    {
        report.listed += 1;
        let rel = object.location.to_string();
        must_exist.remove(&rel);
        if keep.contains(&rel) {
            report.referenced += 1;
        } else if object.last_modified > cutoff {
            report.too_young += 1;
        } else {
            report.orphans += 1;
            report.orphan_bytes += object.size;
            if report.examples.len() < LISTED {
                report.examples.push(format!("{location}/{rel}"));
            }
            doomed.push(object.location);
        }
    }
    if !must_exist.is_empty() {
        let example = must_exist.iter().next().cloned().unwrap_or_default();
        return Err(MaintainError::Unsafe(format!(
            "{} referenced file(s) were not found by listing {location} (e.g. {example}): paths differ between the manifests and the store, so nothing is deleted",
            must_exist.len()
        )));
    }
    if policy.delete {
        for path in doomed {
            match opened.store.delete(&path).await {
                Ok(()) => report.deleted += 1,
                Err(e) => tracing::warn!(path = %path, error = %e, "Could not delete an orphan file."),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_relative_to_the_table_location() {
        let location = "file:///w/sentiment/t";
        assert_eq!(relative("file:///w/sentiment/t/data/a.parquet", location), Some("data/a.parquet"));
        assert_eq!(relative("/w/sentiment/t/metadata/m.avro", location), Some("metadata/m.avro"));
        assert_eq!(relative("/w/sentiment/t2/data/a.parquet", location), None, "a sibling table is not this one");
        assert_eq!(relative("abfss://c@a.dfs.core.windows.net/t/data/x", "abfss://c@a.dfs.core.windows.net/t"), Some("data/x"));
        assert_eq!(relative("wasbs://c@a.blob.core.windows.net/t/data/x", "abfss://c@a.dfs.core.windows.net/t"), None);
    }
}
