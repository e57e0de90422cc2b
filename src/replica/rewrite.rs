//! A table's files with the paths inside them moved, everything else kept: manifests (each entry's data
//! file), manifest lists (each manifest, with its new length) and the metadata JSON (the table's location,
//! each snapshot's manifest list). Manifests and lists are rewritten as generic Avro, record by record, with
//! the writer's schema and its metadata (Iceberg's schema, partition spec, format version, content) carried
//! over untouched, so no field this version does not know is lost. Pure: bytes in, bytes out.

use std::collections::BTreeMap;

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Writer};
use serde_json::Value as Json;

use super::error::ReplicaError;

/// Table properties naming where the table writes its files.
const WRITE_LOCATIONS: &[&str] = &["write.data.path", "write.metadata.path", "write.object-storage.path", "write.folder-storage.path"];

/// Iceberg's `content` of a data file entry that holds positions of deleted rows.
const POSITION_DELETES: i32 = 1;

fn format_error<'a>(what: &'static str, path: &'a str) -> impl Fn(apache_avro::Error) -> ReplicaError + 'a {
    move |e| ReplicaError::Format { what, path: path.to_string(), detail: e.to_string() }
}

/// Every record of the Avro file `bytes` passed through `edit`, written with the same schema and metadata.
fn rewrite_avro(
    what: &'static str,
    path: &str,
    bytes: &[u8],
    mut edit: impl FnMut(&mut Value) -> Result<(), ReplicaError>,
) -> Result<Vec<u8>, ReplicaError> {
    let error = format_error(what, path);
    let reader = Reader::new(bytes).map_err(&error)?;
    let schema = reader.writer_schema().clone();
    let metadata: BTreeMap<String, Vec<u8>> = reader.user_metadata().clone().into_iter().collect();
    let mut writer = Writer::with_codec(&schema, Vec::new(), Codec::Deflate(DeflateSettings::default()));
    for (key, value) in metadata {
        writer.add_user_metadata(key, value).map_err(&error)?;
    }
    for record in reader {
        let mut record = record.map_err(&error)?;
        edit(&mut record)?;
        writer.append(record).map_err(&error)?;
    }
    writer.into_inner().map_err(&error)
}

fn field<'a>(record: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    match record {
        Value::Record(fields) => fields.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v),
        Value::Union(_, inner) => field(inner, name),
        _ => None,
    }
}

fn missing(what: &'static str, path: &str, name: &str) -> ReplicaError {
    ReplicaError::Format { what, path: path.to_string(), detail: format!("a record without `{name}`") }
}

/// A manifest (at `path`) with each entry's data file path passed through `relocate`. Position delete
/// files are refused: their rows name data files too.
pub fn manifest(path: &str, bytes: &[u8], mut relocate: impl FnMut(&str) -> Result<String, ReplicaError>) -> Result<Vec<u8>, ReplicaError> {
    rewrite_avro("manifest", path, bytes, |entry| {
        let data_file = field(entry, "data_file").ok_or_else(|| missing("manifest", path, "data_file"))?;
        let file_path = match field(data_file, "file_path") {
            Some(Value::String(p)) => p.clone(),
            _ => return Err(missing("manifest", path, "data_file.file_path")),
        };
        if matches!(field(data_file, "content"), Some(Value::Int(POSITION_DELETES))) {
            return Err(ReplicaError::PositionDeletes { path: file_path });
        }
        let moved = relocate(&file_path)?;
        if let Some(Value::String(p)) = field(data_file, "file_path") {
            *p = moved;
        }
        Ok(())
    })
}

/// A manifest list (at `path`) with each manifest's path and length replaced by what `relocate` answers
/// for its path.
pub fn manifest_list(
    path: &str,
    bytes: &[u8],
    mut relocate: impl FnMut(&str) -> Result<(String, u64), ReplicaError>,
) -> Result<Vec<u8>, ReplicaError> {
    rewrite_avro("manifest list", path, bytes, |manifest| {
        let (moved, length) = match field(manifest, "manifest_path") {
            Some(Value::String(p)) => relocate(p)?,
            _ => return Err(missing("manifest list", path, "manifest_path")),
        };
        if let Some(Value::String(p)) = field(manifest, "manifest_path") {
            *p = moved;
        }
        match field(manifest, "manifest_length") {
            Some(Value::Long(l)) => *l = i64::try_from(length).unwrap_or(i64::MAX),
            _ => return Err(missing("manifest list", path, "manifest_length")),
        }
        Ok(())
    })
}

/// How a replica's metadata differs from the primary's version it copies, besides the moved paths.
pub struct MetadataEdit<'a> {
    /// The replica's own earlier metadata files, oldest first (its `metadata-log`).
    pub log: Vec<(String, i64)>,
    /// Properties to set (what the replica copies, from where).
    pub properties: Vec<(String, String)>,
    /// Properties to remove.
    pub remove: &'a [&'a str],
}

/// The primary's metadata JSON `bytes` (at `path`) as the replica's: the table location and each snapshot's
/// manifest list moved by `relocate`; path-valued properties (`write.data.path`, ...) moved too; the
/// metadata log replaced by the replica's own; statistics files dropped (they are not copied). Snapshot ids,
/// sequence numbers, refs (tags included), schemas, specs, the table's UUID and every other property stay.
pub fn metadata(
    path: &str,
    bytes: &[u8],
    edit: MetadataEdit<'_>,
    relocate: impl Fn(&str) -> Result<String, ReplicaError>,
) -> Result<Vec<u8>, ReplicaError> {
    let bad = |detail: String| ReplicaError::Format { what: "table metadata", path: path.to_string(), detail };
    let mut json: Json = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let object = json.as_object_mut().ok_or_else(|| bad("not a JSON object".into()))?;
    let location = object.get("location").and_then(Json::as_str).ok_or_else(|| bad("no `location`".into()))?;
    object.insert("location".into(), Json::String(relocate(location)?));
    if let Some(snapshots) = object.get_mut("snapshots").and_then(Json::as_array_mut) {
        for snapshot in snapshots {
            let list = snapshot.get("manifest-list").and_then(Json::as_str).ok_or_else(|| bad("a snapshot without `manifest-list`".into()))?;
            let moved = relocate(list)?;
            snapshot["manifest-list"] = Json::String(moved);
        }
    }
    let log = edit.log.into_iter().map(|(file, at)| serde_json::json!({"metadata-file": file, "timestamp-ms": at})).collect();
    object.insert("metadata-log".into(), Json::Array(log));
    for statistics in ["statistics", "partition-statistics"] {
        if object.contains_key(statistics) {
            object.insert(statistics.into(), Json::Array(Vec::new()));
        }
    }
    let properties = object.entry("properties").or_insert_with(|| Json::Object(Default::default()));
    let properties = properties.as_object_mut().ok_or_else(|| bad("`properties` is not an object".into()))?;
    for (key, value) in properties.iter_mut() {
        if let Some(text) = value.as_str().filter(|v| v.contains("://") || v.starts_with('/')) {
            match relocate(text) {
                Ok(moved) => *value = Json::String(moved),
                // Where the table writes must move with it, or a promoted replica would write into the old
                // primary; other URLs (an endpoint) stay as they are.
                Err(e) if WRITE_LOCATIONS.contains(&key.as_str()) => return Err(e),
                Err(_) => {}
            }
        }
    }
    for key in edit.remove {
        properties.remove(*key);
    }
    for (key, value) in edit.properties {
        properties.insert(key, Json::String(value));
    }
    serde_json::to_vec(&json).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_schema() -> apache_avro::Schema {
        apache_avro::Schema::parse_str(
            r#"{"type":"record","name":"manifest_entry","fields":[
                {"name":"status","type":"int","field-id":0},
                {"name":"data_file","type":{"type":"record","name":"r2","fields":[
                    {"name":"content","type":"int","field-id":134},
                    {"name":"file_path","type":"string","field-id":100},
                    {"name":"record_count","type":"long","field-id":103}]},"field-id":2}]}"#,
        )
        .unwrap()
    }

    fn manifest_with(content: i32, paths: &[&str]) -> Vec<u8> {
        let schema = entry_schema();
        let mut writer = Writer::new(&schema, Vec::new());
        writer.add_user_metadata("partition-spec".into(), b"[]").unwrap();
        for (i, p) in paths.iter().enumerate() {
            let data_file = Value::Record(vec![
                ("content".into(), Value::Int(content)),
                ("file_path".into(), Value::String(p.to_string())),
                ("record_count".into(), Value::Long(i as i64 + 7)),
            ]);
            writer.append(Value::Record(vec![("status".into(), Value::Int(1)), ("data_file".into(), data_file)])).unwrap();
        }
        writer.into_inner().unwrap()
    }

    #[test]
    fn a_manifest_keeps_its_schema_metadata_and_fields_with_only_paths_moved() {
        let bytes = manifest_with(0, &["/p/a.parquet", "/p/b.parquet"]);
        let moved = manifest("m.avro", &bytes, |p| Ok(p.replace("/p/", "/r/"))).unwrap();
        let reader = Reader::new(&moved[..]).unwrap();
        assert_eq!(reader.writer_schema(), &entry_schema());
        // Iceberg resolves manifest fields by id: the ids in the schema's JSON must survive the rewrite.
        let header = String::from_utf8_lossy(&moved[..moved.len().min(4096)]).into_owned();
        assert!(header.contains(r#""field-id":100"#) && header.contains(r#""field-id":134"#), "{header}");
        assert_eq!(reader.user_metadata().get("partition-spec").map(Vec::as_slice), Some(&b"[]"[..]));
        let rows: Vec<Value> = reader.map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        let mut second = rows[1].clone();
        let data_file = field(&mut second, "data_file").unwrap();
        assert_eq!(field(data_file, "file_path"), Some(&mut Value::String("/r/b.parquet".into())));
        assert_eq!(field(data_file, "record_count"), Some(&mut Value::Long(8)));
    }

    #[test]
    fn position_deletes_and_foreign_paths_stop_the_rewrite() {
        let deletes = manifest_with(POSITION_DELETES, &["/p/d.parquet"]);
        assert!(matches!(manifest("m.avro", &deletes, |p| Ok(p.to_string())), Err(ReplicaError::PositionDeletes { .. })));
        let data = manifest_with(0, &["/elsewhere/a.parquet"]);
        let refused = manifest("m.avro", &data, |p| Err(ReplicaError::OutsideWarehouse { path: p.into(), warehouse: "/p".into() }));
        assert!(matches!(refused, Err(ReplicaError::OutsideWarehouse { .. })));
        assert!(matches!(manifest("m.avro", b"not avro", |p| Ok(p.to_string())), Err(ReplicaError::Format { .. })));
    }

    #[test]
    fn metadata_moves_locations_and_path_properties_and_keeps_the_rest() {
        let primary = serde_json::json!({
            "format-version": 2, "table-uuid": "u", "location": "/p/t", "last-updated-ms": 5,
            "properties": {"write.data.path": "/p/t/data", "endpoint": "https://example.invalid/x", "keep": "zstd", "drop-me": "x"},
            "snapshots": [{"snapshot-id": 1, "sequence-number": 1, "manifest-list": "/p/t/metadata/snap-1.avro"}],
            "refs": {"main": {"snapshot-id": 1, "type": "branch"}, "month-end": {"snapshot-id": 1, "type": "tag"}},
            "metadata-log": [{"metadata-file": "/p/t/metadata/00000-a.metadata.json", "timestamp-ms": 1}],
            "statistics": [{"snapshot-id": 1, "statistics-path": "/p/t/stats.puffin"}],
        });
        let relocate = |p: &str| p.strip_prefix("/p/").map(|rest| format!("/r/{rest}")).ok_or(ReplicaError::Config(p.into()));
        let edit = MetadataEdit {
            log: vec![("/r/t/metadata/00000-b.metadata.json".into(), 4)],
            properties: vec![("replica.of".into(), "/p/t".into())],
            remove: &["drop-me"],
        };
        let out: Json = serde_json::from_slice(&metadata("m.json", &serde_json::to_vec(&primary).unwrap(), edit, relocate).unwrap()).unwrap();
        assert_eq!(out["location"], "/r/t");
        assert_eq!(out["snapshots"][0]["manifest-list"], "/r/t/metadata/snap-1.avro");
        assert_eq!(out["snapshots"][0]["snapshot-id"], 1);
        assert_eq!(out["refs"], primary["refs"]);
        assert_eq!(out["table-uuid"], "u");
        assert_eq!(out["properties"]["write.data.path"], "/r/t/data");
        assert_eq!(out["properties"]["endpoint"], "https://example.invalid/x");
        assert_eq!(out["properties"]["keep"], "zstd");
        assert_eq!(out["properties"]["replica.of"], "/p/t");
        assert!(out["properties"].get("drop-me").is_none());
        assert_eq!(out["metadata-log"][0]["metadata-file"], "/r/t/metadata/00000-b.metadata.json");
        assert_eq!(out["statistics"], serde_json::json!([]));

        // A table that writes outside the warehouse cannot be replicated: its replica would write there too.
        let mut elsewhere = primary.clone();
        elsewhere["properties"]["write.data.path"] = "/elsewhere/data".into();
        let edit = MetadataEdit { log: vec![], properties: vec![], remove: &[] };
        let refused = metadata("m.json", &serde_json::to_vec(&elsewhere).unwrap(), edit, relocate);
        assert!(matches!(refused, Err(ReplicaError::Config(p)) if p == "/elsewhere/data"));
    }
}
