//! The next table state built from a [`Change`]: its manifests, manifest list and snapshot written under
//! the table, and the next metadata (the current one plus the snapshot, expired snapshots, properties and
//! schema, edited as the spec's JSON so any spec the table has survives untouched).

use std::collections::{BTreeMap, HashMap, HashSet};

use iceberg::spec::{
    DataFile, ManifestContentType, ManifestFile, ManifestListWriter, ManifestWriterBuilder, Operation, Snapshot, SnapshotSummaryCollector, Summary,
    TableMetadata,
};
use iceberg::table::Table;
use serde_json::{json, Value};

use super::change::Change;
use super::manifest;
use crate::lake::error::LakeError;

/// Keeps how many earlier metadata files the metadata log lists (Iceberg's default).
const PREVIOUS_VERSIONS_MAX: &str = "write.metadata.previous-versions-max";
const DEFAULT_PREVIOUS_VERSIONS: usize = 100;

/// The new snapshot, as the spec's JSON fields need it.
pub struct NewSnapshot {
    operation: Operation,
    pub id: i64,
    sequence_number: i64,
    manifest_list: String,
    summary: HashMap<String, String>,
}

impl NewSnapshot {
    /// The snapshot as iceberg's type (what the REST commit request carries), on top of `metadata`.
    pub fn into_snapshot(self, metadata: &TableMetadata, now: i64) -> Snapshot {
        Snapshot::builder()
            .with_snapshot_id(self.id)
            .with_parent_snapshot_id(metadata.current_snapshot_id())
            .with_sequence_number(self.sequence_number)
            .with_timestamp_ms(now)
            .with_manifest_list(self.manifest_list)
            .with_summary(Summary { operation: self.operation, additional_properties: self.summary })
            .with_schema_id(metadata.current_schema_id())
            .build()
    }
}

/// Writes the manifests, manifest list and snapshot `change` needs (none for a change without one),
/// listing every file written in `written`; on failure, the files written so far are removed.
pub async fn write_snapshot(table: &Table, change: &Change, written: &mut Vec<String>) -> Result<Option<NewSnapshot>, LakeError> {
    let commit_uuid = uuid::Uuid::new_v4();
    let snapshot = if !change.replaces.is_empty() || change.rewrite_manifests {
        write_rewrite(table, change, commit_uuid, written).await
    } else if change.files.is_empty() {
        return Ok(None);
    } else {
        write_append(table, change, commit_uuid, written).await
    };
    match snapshot {
        Ok(snapshot) => Ok(Some(snapshot)),
        Err(e) => {
            remove(table, written).await;
            Err(e)
        }
    }
}

/// Deletes the files of a commit that did not land (best effort: orphan cleanup removes what this misses).
pub async fn remove(table: &Table, paths: &[String]) {
    for path in paths {
        if let Err(e) = table.file_io().delete(path).await {
            tracing::debug!(path, error = %e, "Could not delete a file of a commit that did not land; orphan cleanup will.");
        }
    }
}

fn new_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let candidate = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        if candidate != 0 && metadata.snapshot_by_id(candidate).is_none() {
            return candidate;
        }
    }
}

fn io(context: &'static str) -> impl FnOnce(iceberg::Error) -> LakeError {
    LakeError::iceberg(context)
}

/// The manifest of `files`, added by snapshot `id` under the default spec: encoded directly
/// ([`super::manifest`]), or by iceberg's writer for a partition type that encoder does not write.
async fn write_added(
    table: &Table,
    files: &[DataFile],
    id: i64,
    sequence_number: i64,
    path: String,
    collector: &mut SnapshotSummaryCollector,
    written: &mut Vec<String>,
) -> Result<ManifestFile, LakeError> {
    let metadata = table.metadata();
    let (schema, spec) = (metadata.current_schema().clone(), metadata.default_partition_spec().clone());
    for file in files {
        collector.add_file(file, schema.clone(), spec.clone());
    }
    let output = table.file_io().new_output(&path).map_err(io("manifest output"))?;
    written.push(path.clone());
    if let Some((bytes, mut manifest)) = manifest::encode(&schema, &spec, id, sequence_number, files)? {
        output.write(bytes.into()).await.map_err(io("writing the manifest"))?;
        manifest.manifest_path = path;
        return Ok(manifest);
    }
    let mut writer = ManifestWriterBuilder::new(output, Some(id), schema, spec.as_ref().clone()).build_v2_data();
    for file in files {
        writer.add_file(file.clone(), sequence_number).map_err(io("manifest entry"))?;
    }
    writer.write_manifest_file().await.map_err(io("writing the manifest"))
}

/// The manifest list of snapshot `id`.
async fn write_list(
    table: &Table,
    id: i64,
    sequence_number: i64,
    commit_uuid: uuid::Uuid,
    manifests: Vec<ManifestFile>,
    written: &mut Vec<String>,
) -> Result<String, LakeError> {
    let metadata = table.metadata();
    let list_path = format!("{}/metadata/snap-{id}-0-{commit_uuid}.avro", metadata.location());
    let list_output = table.file_io().new_output(&list_path).map_err(io("manifest list output"))?;
    written.push(list_path.clone());
    let mut list =
        ManifestListWriter::v2(list_output.writer().await.map_err(io("manifest list output"))?, id, metadata.current_snapshot_id(), sequence_number);
    list.add_manifests(manifests.into_iter()).map_err(io("manifest list"))?;
    list.close().await.map_err(io("writing the manifest list"))?;
    Ok(list_path)
}

/// The current snapshot's manifests a new snapshot carries over: those with a live file. A manifest
/// whose every entry is `deleted` (written by the replace that removed them) has told its snapshot's
/// readers so and is dropped by the next one, as Iceberg's writers do; kept, every compaction and every
/// folded rollup file would leave one more manifest for each later scan to read.
async fn current_manifests(table: &Table) -> Result<Vec<ManifestFile>, LakeError> {
    match table.metadata().current_snapshot() {
        Some(current) => Ok(table
            .manifest_list_reader(current)
            .load()
            .await
            .map_err(io("reading the current manifest list"))?
            .consume_entries()
            .into_iter()
            .filter(|m| m.has_added_files() || m.has_existing_files())
            .collect()),
        None => Ok(Vec::new()),
    }
}

/// Writes the manifest of the added files and a manifest list of the current snapshot's manifests plus it.
async fn write_append(table: &Table, change: &Change, commit_uuid: uuid::Uuid, written: &mut Vec<String>) -> Result<NewSnapshot, LakeError> {
    let metadata = table.metadata();
    let id = new_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let mut collector = SnapshotSummaryCollector::default();
    let path = format!("{}/metadata/{commit_uuid}-m0.avro", metadata.location());
    let manifest = write_added(table, &change.files, id, sequence_number, path, &mut collector, written).await?;
    let mut manifests = current_manifests(table).await?;
    manifests.push(manifest);
    let manifest_list = write_list(table, id, sequence_number, commit_uuid, manifests, written).await?;
    let mut summary = change.summary.clone();
    summary.extend(collector.build());
    add_totals(&mut summary, metadata.current_snapshot().map(|s| &s.summary().additional_properties));
    Ok(NewSnapshot { operation: Operation::Append, id, sequence_number, manifest_list, summary })
}

/// A `replace` snapshot: the manifests holding replaced files (or, rewriting manifests, all data
/// manifests) rewritten per spec with those files `deleted` and the rest `existing`, plus a manifest of the
/// added files. Refused as a conflict when a file to replace is no longer live.
async fn write_rewrite(table: &Table, change: &Change, commit_uuid: uuid::Uuid, written: &mut Vec<String>) -> Result<NewSnapshot, LakeError> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let id = new_snapshot_id(metadata);
    let sequence_number = metadata.next_sequence_number();
    let mut collector = SnapshotSummaryCollector::default();
    let mut kept = Vec::new();
    let mut rewritten: BTreeMap<i32, Vec<(iceberg::spec::ManifestEntryRef, bool, i64, i64)>> = BTreeMap::new();
    let mut found = 0usize;
    for manifest in current_manifests(table).await? {
        if manifest.content != ManifestContentType::Data {
            kept.push(manifest);
            continue;
        }
        let loaded = manifest.load_manifest(table.file_io()).await.map_err(io("reading a manifest"))?;
        let touched = change.rewrite_manifests || loaded.entries().iter().any(|e| e.is_alive() && change.replaces.contains(e.file_path()));
        if !touched {
            kept.push(manifest);
            continue;
        }
        let spec = metadata.partition_spec_by_id(manifest.partition_spec_id).cloned().ok_or_else(|| LakeError::IncompatibleTable {
            table: table.identifier().to_string(),
            detail: format!("manifest {} names partition spec {} the metadata does not have", manifest.manifest_path, manifest.partition_spec_id),
        })?;
        for entry in loaded.entries().iter().filter(|e| e.is_alive()) {
            let replaced = change.replaces.contains(entry.file_path());
            if replaced {
                found += 1;
                collector.remove_file(entry.data_file(), schema.clone(), spec.clone());
            }
            // Inherited values (null in a manifest's own added entries) come from the manifest.
            let snapshot = entry.snapshot_id().unwrap_or(manifest.added_snapshot_id);
            let data_sequence = entry.sequence_number().unwrap_or(manifest.sequence_number);
            rewritten.entry(manifest.partition_spec_id).or_default().push((entry.clone(), replaced, snapshot, data_sequence));
        }
    }
    if found != change.replaces.len() {
        return Err(LakeError::Conflict { table: table.identifier().to_string() });
    }
    for (n, (spec_id, entries)) in rewritten.into_iter().enumerate() {
        let spec = metadata.partition_spec_by_id(spec_id).expect("checked above").as_ref().clone();
        let path = format!("{}/metadata/{commit_uuid}-r{n}.avro", metadata.location());
        let output = table.file_io().new_output(&path).map_err(io("manifest output"))?;
        written.push(path);
        let mut writer = ManifestWriterBuilder::new(output, Some(id), schema.clone(), spec).build_v2_data();
        for (entry, replaced, snapshot, data_sequence) in entries {
            let file_sequence = entry.file_sequence_number.unwrap_or(data_sequence);
            let file = entry.data_file().clone();
            if replaced {
                writer.add_delete_file(file, data_sequence, Some(file_sequence)).map_err(io("manifest entry"))?;
            } else {
                writer.add_existing_file(file, snapshot, data_sequence, Some(file_sequence)).map_err(io("manifest entry"))?;
            }
        }
        kept.push(writer.write_manifest_file().await.map_err(io("writing a manifest"))?);
    }
    if !change.files.is_empty() {
        let path = format!("{}/metadata/{commit_uuid}-m0.avro", metadata.location());
        kept.push(write_added(table, &change.files, id, sequence_number, path, &mut collector, written).await?);
    }
    let manifest_list = write_list(table, id, sequence_number, commit_uuid, kept, written).await?;
    let mut summary = change.summary.clone();
    summary.extend(collector.build());
    add_totals(&mut summary, metadata.current_snapshot().map(|s| &s.summary().additional_properties));
    Ok(NewSnapshot { operation: Operation::Replace, id, sequence_number, manifest_list, summary })
}

/// The spec's `total-*` figures: the previous snapshot's plus what this one adds, minus what it removes.
fn add_totals(summary: &mut HashMap<String, String>, previous: Option<&HashMap<String, String>>) {
    let number = |map: Option<&HashMap<String, String>>, key: &str| map.and_then(|m| m.get(key)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    for (total, added, removed) in [
        ("total-data-files", "added-data-files", "deleted-data-files"),
        ("total-delete-files", "added-delete-files", "removed-delete-files"),
        ("total-records", "added-records", "deleted-records"),
        ("total-files-size", "added-files-size", "removed-files-size"),
        ("total-position-deletes", "added-position-deletes", "removed-position-deletes"),
        ("total-equality-deletes", "added-equality-deletes", "removed-equality-deletes"),
    ] {
        let value = (number(previous, total) + number(Some(summary), added)).saturating_sub(number(Some(summary), removed));
        summary.insert(total.to_string(), value.to_string());
    }
}

/// `metadata` with the snapshot made current on `main`, the expired snapshots gone and the properties set,
/// as the next metadata file.
pub fn next_metadata(
    metadata: &TableMetadata,
    location: &str,
    snapshot: Option<&NewSnapshot>,
    change: &Change,
    now: i64,
) -> Result<TableMetadata, LakeError> {
    let invalid = |detail: String| LakeError::iceberg("building table metadata")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, detail));
    let mut doc = serde_json::to_value(metadata).map_err(|e| invalid(e.to_string()))?;
    let object = doc.as_object_mut().ok_or_else(|| invalid("table metadata is not a JSON object".into()))?;
    if !change.expire.is_empty() {
        let expired: HashSet<i64> = change.expire.iter().copied().collect();
        let referenced: Vec<i64> = object
            .get("refs")
            .and_then(Value::as_object)
            .map(|refs| refs.values().filter_map(|r| r.get("snapshot-id").and_then(Value::as_i64)).collect())
            .unwrap_or_default();
        if let Some(id) = referenced.into_iter().chain(metadata.current_snapshot_id()).find(|id| expired.contains(id)) {
            return Err(invalid(format!("snapshot {id} is the target of a branch or tag and cannot be expired")));
        }
        let gone = |entry: &Value| entry.get("snapshot-id").and_then(Value::as_i64).is_some_and(|id| expired.contains(&id));
        for key in ["snapshots", "statistics", "partition-statistics"] {
            if let Some(Value::Array(items)) = object.get_mut(key) {
                items.retain(|entry| !gone(entry));
            }
        }
        // The snapshot log says which snapshot was current when. With an expired entry taken out of its
        // middle, the entry before would seem current for the expired one's time too, so the log keeps only
        // what follows its last expired entry (as Iceberg's Java library does): it then begins where the
        // table's knowledge of its past begins.
        if let Some(Value::Array(log)) = object.get_mut("snapshot-log") {
            if let Some(last_gone) = log.iter().rposition(gone) {
                log.drain(..=last_gone);
            }
        }
    }
    if let Some(snapshot) = snapshot {
        let mut summary = serde_json::Map::new();
        summary.insert("operation".into(), json!(snapshot.operation.as_str()));
        for (key, value) in &snapshot.summary {
            summary.insert(key.clone(), json!(value));
        }
        let mut entry = json!({
            "snapshot-id": snapshot.id,
            "sequence-number": snapshot.sequence_number,
            "timestamp-ms": now,
            "manifest-list": snapshot.manifest_list,
            "summary": summary,
            "schema-id": metadata.current_schema_id(),
        });
        if let Some(parent) = metadata.current_snapshot_id() {
            entry["parent-snapshot-id"] = json!(parent);
        }
        push(object, "snapshots", entry);
        object.insert("current-snapshot-id".into(), json!(snapshot.id));
        object.insert("last-sequence-number".into(), json!(snapshot.sequence_number));
        push(object, "snapshot-log", json!({"snapshot-id": snapshot.id, "timestamp-ms": now}));
        let refs = object.entry("refs").or_insert_with(|| json!({}));
        let main =
            refs.as_object_mut().ok_or_else(|| invalid("refs is not an object".into()))?.entry("main").or_insert_with(|| json!({"type": "branch"}));
        main["snapshot-id"] = json!(snapshot.id);
    }
    if let Some(schema) = &change.schema {
        let json = serde_json::to_value(schema).map_err(|e| invalid(e.to_string()))?;
        push(object, "schemas", json);
        object.insert("current-schema-id".into(), json!(schema.schema_id()));
        object.insert("last-column-id".into(), json!(schema.highest_field_id().max(metadata.last_column_id())));
    }
    if let Some(id) = change.set_current {
        if snapshot.is_some() || metadata.snapshot_by_id(id).is_none() {
            return Err(invalid(format!("cannot make snapshot {id} current (unknown, or combined with a new snapshot)")));
        }
        object.insert("current-snapshot-id".into(), json!(id));
        push(object, "snapshot-log", json!({"snapshot-id": id, "timestamp-ms": now}));
        let refs = object.entry("refs").or_insert_with(|| json!({}));
        let main =
            refs.as_object_mut().ok_or_else(|| invalid("refs is not an object".into()))?.entry("main").or_insert_with(|| json!({"type": "branch"}));
        main["snapshot-id"] = json!(id);
    }
    for (name, id) in &change.tags {
        if metadata.snapshot_by_id(*id).is_none() {
            return Err(invalid(format!("cannot tag snapshot {id}: the table has no such snapshot")));
        }
        let refs = object.entry("refs").or_insert_with(|| json!({}));
        let refs = refs.as_object_mut().ok_or_else(|| invalid("refs is not an object".into()))?;
        if let Some(existing) = refs.get(name) {
            return Err(invalid(format!("a ref named {name:?} exists already ({existing}); tags are never moved")));
        }
        refs.insert(name.clone(), json!({"snapshot-id": id, "type": "tag"}));
    }
    let props = object.entry("properties").or_insert_with(|| json!({}));
    let props = props.as_object_mut().ok_or_else(|| invalid("properties is not an object".into()))?;
    for (key, value) in &change.properties {
        props.insert(key.clone(), json!(value));
    }
    let keep = metadata.properties().get(PREVIOUS_VERSIONS_MAX).and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_PREVIOUS_VERSIONS);
    push(object, "metadata-log", json!({"metadata-file": location, "timestamp-ms": metadata.last_updated_ms()}));
    if let Some(Value::Array(log)) = object.get_mut("metadata-log") {
        let excess = log.len().saturating_sub(keep.max(1));
        log.drain(..excess);
    }
    object.insert("last-updated-ms".into(), json!(now));
    serde_json::from_value(doc).map_err(|e| invalid(format!("the new metadata does not parse back: {e}")))
}

fn push(object: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    match object.entry(key).or_insert_with(|| json!([])) {
        Value::Array(items) => items.push(value),
        other => *other = json!([value]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_to_the_previous_snapshot() {
        let previous = HashMap::from([("total-records".to_string(), "10".to_string()), ("total-data-files".to_string(), "2".to_string())]);
        let mut summary = HashMap::from([("added-records".to_string(), "5".to_string()), ("added-data-files".to_string(), "1".to_string())]);
        add_totals(&mut summary, Some(&previous));
        assert_eq!(summary["total-records"], "15");
        assert_eq!(summary["total-data-files"], "3");
        assert_eq!(summary["total-delete-files"], "0");
    }
}
