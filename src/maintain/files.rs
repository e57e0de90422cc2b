//! What a table's snapshots reference: live data files of the current snapshot (what compaction and
//! health look at) and every file any kept snapshot reaches (what expiry and orphan cleanup must keep).

use std::collections::HashSet;

use iceberg::spec::{DataContentType, DataFile, ManifestFile, SnapshotRef};
use iceberg::table::Table;

use crate::lake::LakeError;

/// Snapshots that branches and tags point at (iceberg 0.10.1 keeps `refs` private; the spec's JSON has them).
pub fn ref_targets(table: &Table) -> HashSet<i64> {
    let doc = serde_json::to_value(table.metadata()).unwrap_or_default();
    let refs = doc.get("refs").and_then(serde_json::Value::as_object);
    refs.map(|refs| refs.values().filter_map(|r| r.get("snapshot-id").and_then(serde_json::Value::as_i64)).collect()).unwrap_or_default()
}

/// A live data file of the current snapshot and the spec its manifest was written with.
#[derive(Debug, Clone)]
pub struct LiveFile {
    pub file: DataFile,
    pub spec_id: i32,
}

async fn manifests(table: &Table, snapshot: &SnapshotRef) -> Result<Vec<ManifestFile>, LakeError> {
    let list = table.manifest_list_reader(snapshot).load().await.map_err(LakeError::iceberg("reading a manifest list"))?;
    Ok(list.consume_entries().into_iter().collect())
}

/// The manifests of the current snapshot (none for an empty table).
pub async fn current_manifests(table: &Table) -> Result<Vec<ManifestFile>, LakeError> {
    match table.metadata().current_snapshot() {
        Some(snapshot) => manifests(table, snapshot).await,
        None => Ok(Vec::new()),
    }
}

/// Live data files (not delete files) of the current snapshot.
pub async fn live_data_files(table: &Table) -> Result<Vec<LiveFile>, LakeError> {
    let mut live = Vec::new();
    for manifest in current_manifests(table).await? {
        let loaded = manifest.load_manifest(table.file_io()).await.map_err(LakeError::iceberg("reading a manifest"))?;
        for entry in loaded.entries().iter().filter(|e| e.is_alive() && e.content_type() == DataContentType::Data) {
            live.push(LiveFile { file: entry.data_file().clone(), spec_id: manifest.partition_spec_id });
        }
    }
    Ok(live)
}

/// Every file some set of snapshots reaches: their manifest lists, manifests and the data and delete files
/// live in them. A `deleted` entry only records that its snapshot removed the file: it is not data of that
/// snapshot (an older snapshot that still has it live reaches it as such).
#[derive(Debug, Default, Clone)]
pub struct Reachable {
    pub manifest_lists: HashSet<String>,
    pub manifests: HashSet<String>,
    pub files: HashSet<String>,
}

impl Reachable {
    pub async fn of(table: &Table, snapshots: Vec<SnapshotRef>) -> Result<Self, LakeError> {
        let mut reachable = Reachable::default();
        for snapshot in &snapshots {
            if !reachable.manifest_lists.insert(snapshot.manifest_list().to_string()) {
                continue;
            }
            for manifest in manifests(table, snapshot).await? {
                if !reachable.manifests.insert(manifest.manifest_path.clone()) {
                    continue;
                }
                let loaded = manifest.load_manifest(table.file_io()).await.map_err(LakeError::iceberg("reading a manifest"))?;
                reachable.files.extend(loaded.entries().iter().filter(|e| e.is_alive()).map(|e| e.file_path().to_string()));
            }
        }
        Ok(reachable)
    }

    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.manifest_lists.iter().chain(&self.manifests).chain(&self.files)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.manifest_lists.contains(path) || self.manifests.contains(path) || self.files.contains(path)
    }
}
