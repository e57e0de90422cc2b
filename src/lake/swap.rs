//! Table commits made by this crate: an append snapshot (manifest, manifest list, snapshot) and table
//! properties in one new metadata file, published by the SQL catalog's own compare-and-swap.
//!
//! Why not iceberg-rust's `Transaction`: its metadata builder re-binds the default partition spec on every
//! commit and refuses a spec with two time transforms of one column, which is exactly the seed's
//! `year/month/day(event_timestamp)` (PyIceberg creates such tables; Phase 1 did). It also rebases an append
//! onto newer metadata without asking, where the ledger needs a commit that is either exactly on top of the
//! metadata it was planned against or refused. Here the new metadata is the current one plus the snapshot
//! and properties (edited as the spec's JSON, so any spec the table has survives untouched), and the swap
//! is the statement the catalog itself runs: `UPDATE iceberg_tables ... WHERE metadata_location = <the
//! location this commit was built on>`. Zero rows updated means another commit won.

use std::collections::HashMap;
use std::str::FromStr;

use iceberg::spec::{DataFile, FormatVersion, ManifestListWriter, ManifestWriterBuilder, SnapshotSummaryCollector, TableMetadata};
use iceberg::table::Table;
use iceberg::{MetadataLocation, TableIdent};
use serde_json::{json, Value};
use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::AnyPool;

use super::LakeError;

/// Keeps how many earlier metadata files the metadata log lists (Iceberg's default).
const PREVIOUS_VERSIONS_MAX: &str = "write.metadata.previous-versions-max";
const DEFAULT_PREVIOUS_VERSIONS: usize = 100;

/// The SQL catalog database, for the compare-and-swap of a table's metadata location.
#[derive(Clone)]
pub struct CatalogSwap {
    pool: AnyPool,
    catalog_name: String,
    dollar_placeholders: bool,
}

impl std::fmt::Debug for CatalogSwap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSwap").field("catalog_name", &self.catalog_name).finish_non_exhaustive()
    }
}

fn sql_error(context: &str) -> impl FnOnce(sqlx::Error) -> LakeError + '_ {
    move |e| LakeError::iceberg(context)(iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("catalog database: {e}")).with_retryable(true))
}

impl CatalogSwap {
    pub async fn connect(uri: &str, catalog_name: &str) -> Result<Self, LakeError> {
        install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(4).connect(uri).await.map_err(sql_error("connecting to the catalog database"))?;
        Ok(Self { pool, catalog_name: catalog_name.to_string(), dollar_placeholders: uri.starts_with("postgres") })
    }

    /// Points `table` at `to` if it still points at `from`. `Ok(false)`: another commit landed first.
    pub async fn swap(&self, table: &TableIdent, from: &str, to: &str) -> Result<bool, LakeError> {
        let statement = "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = ?";
        let statement = if self.dollar_placeholders {
            let mut numbered = String::with_capacity(statement.len() + 8);
            let mut n = 0;
            for ch in statement.chars() {
                if ch == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(ch);
                }
            }
            numbered
        } else {
            statement.to_string()
        };
        let namespace = table.namespace().join(".");
        let result = sqlx::query(&statement)
            .bind(to)
            .bind(from)
            .bind(&self.catalog_name)
            .bind(&namespace)
            .bind(table.name())
            .bind(from)
            .execute(&self.pool)
            .await
            .map_err(sql_error("swapping the table's metadata location"))?;
        Ok(result.rows_affected() == 1)
    }
}

/// What one commit changes.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// Data files of a new append snapshot; none means no snapshot (a properties-only commit).
    pub files: Vec<DataFile>,
    /// Extra keys of the snapshot's summary.
    pub summary: HashMap<String, String>,
    /// Table properties to set.
    pub properties: Vec<(String, String)>,
}

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The table now points at the new metadata; the new snapshot when there is one.
    Landed { snapshot_id: Option<i64> },
    /// Another commit moved the table first; nothing of this one is referenced.
    Conflict,
}

/// Commits `change` on top of exactly `table`'s metadata.
pub async fn commit(swap: &CatalogSwap, table: &Table, change: Change) -> Result<Outcome, LakeError> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(LakeError::IncompatibleTable {
            table: table.identifier().to_string(),
            detail: format!("format version {} tables are not written by this version (v2 only)", metadata.format_version()),
        });
    }
    let from = table.metadata_location().ok_or_else(|| LakeError::Config(format!("{} has no metadata location", table.identifier())))?;
    let now = chrono::Utc::now().timestamp_millis().max(metadata.last_updated_ms() + 1);
    let commit_uuid = uuid::Uuid::new_v4();
    let mut written = Vec::new();
    let snapshot = if change.files.is_empty() {
        None
    } else {
        let snapshot = write_append(table, &change, commit_uuid, &mut written).await;
        match snapshot {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                remove(table, &written).await;
                return Err(e);
            }
        }
    };
    let next = next_metadata(metadata, from, snapshot.as_ref(), &change.properties, now)?;
    let location = MetadataLocation::from_str(from)
        .map_err(LakeError::iceberg(format!("metadata location {from}")))?
        .with_next_version()
        .with_new_metadata(&next);
    next.write_to(table.file_io(), &location).await.map_err(LakeError::iceberg("writing table metadata"))?;
    let to = location.to_string();
    written.push(to.clone());
    match swap.swap(table.identifier(), from, &to).await {
        Ok(true) => Ok(Outcome::Landed { snapshot_id: snapshot.map(|s| s.id) }),
        Ok(false) => {
            remove(table, &written).await;
            Ok(Outcome::Conflict)
        }
        // The outcome is unknown: the files may be referenced now, so they stay.
        Err(e) => Err(e),
    }
}

async fn remove(table: &Table, paths: &[String]) {
    for path in paths {
        if let Err(e) = table.file_io().delete(path).await {
            tracing::debug!(path, error = %e, "Could not delete a file of a commit that did not land; orphan cleanup will.");
        }
    }
}

/// The new snapshot, as the spec's JSON fields need it.
struct NewSnapshot {
    id: i64,
    sequence_number: i64,
    manifest_list: String,
    summary: HashMap<String, String>,
}

/// Writes the manifest of the added files and a manifest list of the current snapshot's manifests plus it.
async fn write_append(table: &Table, change: &Change, commit_uuid: uuid::Uuid, written: &mut Vec<String>) -> Result<NewSnapshot, LakeError> {
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let id = loop {
        let candidate = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        if candidate != 0 && metadata.snapshot_by_id(candidate).is_none() {
            break candidate;
        }
    };
    let sequence_number = metadata.next_sequence_number();
    let io = |context: &'static str| LakeError::iceberg(context);

    let manifest_path = format!("{}/metadata/{commit_uuid}-m0.avro", metadata.location());
    let output = table.file_io().new_output(&manifest_path).map_err(io("manifest output"))?;
    written.push(manifest_path);
    let mut writer = ManifestWriterBuilder::new(output, Some(id), schema.clone(), spec.as_ref().clone()).build_v2_data();
    let mut collector = SnapshotSummaryCollector::default();
    for file in &change.files {
        collector.add_file(file, schema.clone(), spec.clone());
        writer.add_file(file.clone(), sequence_number).map_err(io("manifest entry"))?;
    }
    let manifest = writer.write_manifest_file().await.map_err(io("writing the manifest"))?;

    let mut manifests = Vec::new();
    if let Some(current) = metadata.current_snapshot() {
        let list = table.manifest_list_reader(current).load().await.map_err(io("reading the current manifest list"))?;
        manifests.extend(list.consume_entries());
    }
    manifests.push(manifest);
    let list_path = format!("{}/metadata/snap-{id}-0-{commit_uuid}.avro", metadata.location());
    let list_output = table.file_io().new_output(&list_path).map_err(io("manifest list output"))?;
    written.push(list_path.clone());
    let mut list =
        ManifestListWriter::v2(list_output.writer().await.map_err(io("manifest list output"))?, id, metadata.current_snapshot_id(), sequence_number);
    list.add_manifests(manifests.into_iter()).map_err(io("manifest list"))?;
    list.close().await.map_err(io("writing the manifest list"))?;

    let mut summary = change.summary.clone();
    summary.extend(collector.build());
    add_totals(&mut summary, metadata.current_snapshot().map(|s| &s.summary().additional_properties));
    Ok(NewSnapshot { id, sequence_number, manifest_list: list_path, summary })
}

/// The spec's `total-*` figures: the previous snapshot's plus what this one adds (an append removes nothing).
fn add_totals(summary: &mut HashMap<String, String>, previous: Option<&HashMap<String, String>>) {
    let number = |map: Option<&HashMap<String, String>>, key: &str| map.and_then(|m| m.get(key)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    for (total, added) in [
        ("total-data-files", "added-data-files"),
        ("total-delete-files", "added-delete-files"),
        ("total-records", "added-records"),
        ("total-files-size", "added-files-size"),
        ("total-position-deletes", "added-position-deletes"),
        ("total-equality-deletes", "added-equality-deletes"),
    ] {
        let value = number(previous, total) + number(Some(summary), added);
        summary.insert(total.to_string(), value.to_string());
    }
}

/// `metadata` with the snapshot made current on `main` and the properties set, as the next metadata file.
fn next_metadata(
    metadata: &TableMetadata,
    location: &str,
    snapshot: Option<&NewSnapshot>,
    properties: &[(String, String)],
    now: i64,
) -> Result<TableMetadata, LakeError> {
    let invalid = |detail: String| LakeError::iceberg("building table metadata")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, detail));
    let mut doc = serde_json::to_value(metadata).map_err(|e| invalid(e.to_string()))?;
    let object = doc.as_object_mut().ok_or_else(|| invalid("table metadata is not a JSON object".into()))?;
    if let Some(snapshot) = snapshot {
        let mut summary = serde_json::Map::new();
        summary.insert("operation".into(), json!("append"));
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
    let props = object.entry("properties").or_insert_with(|| json!({}));
    let props = props.as_object_mut().ok_or_else(|| invalid("properties is not an object".into()))?;
    for (key, value) in properties {
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
