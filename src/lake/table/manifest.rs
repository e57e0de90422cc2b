//! The manifest of a commit's new data files, encoded straight into Avro's binary form.
//!
//! iceberg 0.10's `ManifestWriter` turns every entry into a generic Avro `Value` and resolves it against
//! the schema, rebuilding the schema's table of names for each one: about 1.1 million instructions per data
//! file, a fifth of a live commit's CPU (400 files per commit in the ingest benchmark, docs/benchmarks.md).
//! This encoder writes the same Iceberg v2 `manifest_entry` schema that iceberg-rust writes (field ids,
//! names, order and record names, `k117_v118` and so on, so every reader resolves it alike) and the same
//! header metadata, for a few thousand instructions per entry.
//!
//! It covers the partition value types a partition spec here can produce (dates, ints, longs, strings,
//! booleans, floats, doubles, times, timestamps, binary). A spec with any other result type (decimal,
//! uuid, fixed) is left to iceberg's writer: [`encode`] answers `None`.

use std::collections::HashMap;

use iceberg::spec::{
    DataFile, DataFileFormat, Datum, FieldSummary, Literal, ManifestContentType, ManifestFile, PartitionSpec, PrimitiveLiteral, PrimitiveType,
    Schema, StructType, Type,
};
use serde_json::{json, Value};

use crate::lake::error::LakeError;

/// `status` of an entry the snapshot adds.
const ADDED: i32 = 1;
/// `content` of a data file (not a delete file).
const DATA_CONTENT: i32 = 0;

/// The Avro bytes of a data manifest for `files`, added by snapshot `snapshot_id` at `sequence_number`,
/// with the summary the manifest list needs; `None` when a partition type is not one this encoder writes.
pub(super) fn encode(
    schema: &Schema,
    spec: &PartitionSpec,
    snapshot_id: i64,
    sequence_number: i64,
    files: &[DataFile],
) -> Result<Option<(Vec<u8>, ManifestFile)>, LakeError> {
    let partition_type = spec.partition_type(schema).map_err(LakeError::iceberg("the partition type"))?;
    let Some(partition_types) = partition_primitives(&partition_type) else {
        return Ok(None);
    };
    let header = [
        ("avro.schema", entry_schema(&partition_type, &partition_types).to_string().into_bytes()),
        ("avro.codec", b"null".to_vec()),
        ("schema", serde_json::to_vec(schema).map_err(json_error)?),
        ("schema-id", schema.schema_id().to_string().into_bytes()),
        ("partition-spec", serde_json::to_vec(spec.fields()).map_err(json_error)?),
        ("partition-spec-id", spec.spec_id().to_string().into_bytes()),
        ("format-version", b"2".to_vec()),
        ("content", ManifestContentType::Data.to_string().into_bytes()),
    ];
    let mut out = Avro(Vec::with_capacity(1024 + files.len() * 2048));
    out.0.extend_from_slice(b"Obj\x01");
    out.long(header.len() as i64);
    for (key, value) in &header {
        out.string(key);
        out.bytes(value);
    }
    out.long(0);
    let sync = *uuid::Uuid::new_v4().as_bytes();
    out.0.extend_from_slice(&sync);

    let mut entries = Avro(Vec::with_capacity(files.len() * 2048));
    let mut summaries: Vec<PartitionSummary> = partition_types.iter().map(|t| PartitionSummary::new(t.clone())).collect();
    for file in files {
        encode_entry(&mut entries, file, snapshot_id, sequence_number, &partition_types)?;
        for (summary, value) in summaries.iter_mut().zip(file.partition().iter()) {
            summary.update(value)?;
        }
    }
    if !files.is_empty() {
        out.long(files.len() as i64);
        out.long(entries.0.len() as i64);
        out.0.extend_from_slice(&entries.0);
        out.0.extend_from_slice(&sync);
    }
    let manifest = ManifestFile {
        manifest_path: String::new(),
        manifest_length: out.0.len() as i64,
        partition_spec_id: spec.spec_id(),
        content: ManifestContentType::Data,
        // Assigned by the manifest list writer, as for iceberg's own manifests.
        sequence_number: -1,
        min_sequence_number: if files.is_empty() { -1 } else { sequence_number },
        added_snapshot_id: snapshot_id,
        added_files_count: Some(files.len() as u32),
        existing_files_count: Some(0),
        deleted_files_count: Some(0),
        added_rows_count: Some(files.iter().map(DataFile::record_count).sum()),
        existing_rows_count: Some(0),
        deleted_rows_count: Some(0),
        partitions: Some(summaries.into_iter().map(PartitionSummary::finish).collect::<Result<_, _>>()?),
        key_metadata: None,
        first_row_id: None,
    };
    Ok(Some((out.0, manifest)))
}

fn json_error(e: serde_json::Error) -> LakeError {
    LakeError::iceberg("manifest metadata")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string()))
}

fn invalid(message: String) -> LakeError {
    LakeError::iceberg("manifest entry")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, message))
}

/// The primitive type of every partition field, when each is one this encoder writes.
fn partition_primitives(partition_type: &StructType) -> Option<Vec<PrimitiveType>> {
    partition_type
        .fields()
        .iter()
        .map(|field| match field.field_type.as_ref() {
            Type::Primitive(p) if avro_type(p).is_some() => Some(p.clone()),
            _ => None,
        })
        .collect()
}

/// The Avro type of a partition value, as iceberg-rust's schema conversion spells it.
fn avro_type(primitive: &PrimitiveType) -> Option<Value> {
    let logical = |base: &str, logical: &str| json!({"type": base, "logicalType": logical});
    Some(match primitive {
        PrimitiveType::Boolean => json!("boolean"),
        PrimitiveType::Int => json!("int"),
        PrimitiveType::Long => json!("long"),
        PrimitiveType::Float => json!("float"),
        PrimitiveType::Double => json!("double"),
        PrimitiveType::Date => logical("int", "date"),
        PrimitiveType::Time => logical("long", "time-micros"),
        PrimitiveType::Timestamp | PrimitiveType::Timestamptz => logical("long", "timestamp-micros"),
        PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs => logical("long", "timestamp-nanos"),
        PrimitiveType::String => json!("string"),
        PrimitiveType::Binary => json!("bytes"),
        PrimitiveType::Decimal { .. } | PrimitiveType::Uuid | PrimitiveType::Fixed(_) => return None,
    })
}

/// An optional field: a union with null first, defaulting to null.
fn optional(name: &str, id: i32, avro: Value) -> Value {
    json!({"name": name, "type": ["null", avro], "default": null, "field-id": id})
}

fn required(name: &str, id: i32, avro: Value) -> Value {
    json!({"name": name, "type": avro, "field-id": id})
}

/// An Iceberg map with non-string keys: an array of key/value records.
fn int_map(name: &str, id: i32, key_id: i32, value_id: i32, value: &str) -> Value {
    let entry = json!({
        "type": "record",
        "name": format!("k{key_id}_v{value_id}"),
        "fields": [required("key", key_id, json!("int")), required("value", value_id, json!(value))],
    });
    optional(name, id, json!({"type": "array", "items": entry, "logicalType": "map"}))
}

fn list(name: &str, id: i32, element_id: i32, element: &str) -> Value {
    optional(name, id, json!({"type": "array", "items": element, "element-id": element_id}))
}

/// Iceberg's v2 `manifest_entry` schema with this spec's partition record: the field order here is the
/// order [`encode_entry`] writes.
fn entry_schema(partition_type: &StructType, primitives: &[PrimitiveType]) -> Value {
    let partition_fields: Vec<Value> = partition_type
        .fields()
        .iter()
        .zip(primitives)
        .map(|(field, primitive)| optional(&field.name, field.id, avro_type(primitive).expect("checked by partition_primitives")))
        .collect();
    let data_file = json!({
        "type": "record",
        "name": "r2",
        "fields": [
            required("content", 134, json!("int")),
            required("file_path", 100, json!("string")),
            required("file_format", 101, json!("string")),
            required("partition", 102, json!({"type": "record", "name": "r102", "fields": partition_fields})),
            required("record_count", 103, json!("long")),
            required("file_size_in_bytes", 104, json!("long")),
            int_map("column_sizes", 108, 117, 118, "long"),
            int_map("value_counts", 109, 119, 120, "long"),
            int_map("null_value_counts", 110, 121, 122, "long"),
            int_map("nan_value_counts", 137, 138, 139, "long"),
            int_map("lower_bounds", 125, 126, 127, "bytes"),
            int_map("upper_bounds", 128, 129, 130, "bytes"),
            optional("key_metadata", 131, json!("bytes")),
            list("split_offsets", 132, 133, "long"),
            list("equality_ids", 135, 136, "int"),
            optional("sort_order_id", 140, json!("int")),
            optional("first_row_id", 142, json!("long")),
            optional("referenced_data_file", 143, json!("string")),
            optional("content_offset", 144, json!("long")),
            optional("content_size_in_bytes", 145, json!("long")),
        ],
    });
    json!({
        "type": "record",
        "name": "manifest_entry",
        "fields": [
            required("status", 0, json!("int")),
            optional("snapshot_id", 1, json!("long")),
            optional("sequence_number", 3, json!("long")),
            optional("file_sequence_number", 4, json!("long")),
            required("data_file", 2, data_file),
        ],
    })
}

fn encode_entry(out: &mut Avro, file: &DataFile, snapshot_id: i64, sequence_number: i64, partition: &[PrimitiveType]) -> Result<(), LakeError> {
    out.int(ADDED);
    out.some(|o| o.long(snapshot_id));
    // As iceberg's `add_file`: the entry carries the data sequence number it was added with.
    out.option((sequence_number >= 0).then_some(sequence_number), Avro::long);
    out.null();
    out.int(DATA_CONTENT);
    out.string(file.file_path());
    out.string(&format_name(file.file_format()));
    let values = file.partition();
    if values.fields().len() != partition.len() {
        return Err(invalid(format!("{} has {} partition values, the spec {}", file.file_path(), values.fields().len(), partition.len())));
    }
    for (value, primitive) in values.iter().zip(partition) {
        match value {
            None => out.null(),
            Some(Literal::Primitive(literal)) => {
                out.long(1);
                out.primitive(literal, primitive).map_err(|detail| invalid(format!("{}: partition value {detail}", file.file_path())))?;
            }
            Some(other) => return Err(invalid(format!("{}: partition value {other:?} is not a primitive", file.file_path()))),
        }
    }
    out.long(i64::try_from(file.record_count()).map_err(|_| invalid("record count overflows a long".into()))?);
    out.long(i64::try_from(file.file_size_in_bytes()).map_err(|_| invalid("file size overflows a long".into()))?);
    for counts in [file.column_sizes(), file.value_counts(), file.null_value_counts(), file.nan_value_counts()] {
        out.some(|o| o.int_map(counts, |o, v| o.long(*v as i64)));
    }
    for bounds in [file.lower_bounds(), file.upper_bounds()] {
        let mut encoded = Vec::with_capacity(bounds.len());
        for (&id, datum) in bounds {
            encoded.push((id, datum.to_bytes().map_err(LakeError::iceberg("a column bound"))?));
        }
        out.some(|o| o.int_map(&encoded.into_iter().collect(), |o, v| o.bytes(v)));
    }
    out.option(file.key_metadata(), Avro::bytes);
    out.option(file.split_offsets(), |o, offsets| o.array(offsets, |o, v| o.long(*v)));
    out.option(file.equality_ids(), |o, ids| o.array(&ids, |o, v| o.int(*v)));
    out.option(file.sort_order_id(), Avro::int);
    out.option(file.first_row_id(), Avro::long);
    out.option(file.referenced_data_file(), |o, path| o.string(&path));
    out.option(file.content_offset(), Avro::long);
    out.option(file.content_size_in_bytes(), Avro::long);
    Ok(())
}

/// How iceberg names a file format in manifests (`PARQUET`).
fn format_name(format: DataFileFormat) -> String {
    format.to_string().to_ascii_uppercase()
}

/// Avro's binary encoding, appended to a buffer.
struct Avro(Vec<u8>);

impl Avro {
    /// Zig-zag, then base-128 little-endian groups.
    fn long(&mut self, value: i64) {
        let mut n = ((value << 1) ^ (value >> 63)) as u64;
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn int(&mut self, value: i32) {
        self.long(i64::from(value));
    }

    fn bytes(&mut self, value: &[u8]) {
        self.long(value.len() as i64);
        self.0.extend_from_slice(value);
    }

    fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    /// The null branch of a `["null", T]` union.
    fn null(&mut self) {
        self.long(0);
    }

    /// The value branch of a `["null", T]` union.
    fn some(&mut self, value: impl FnOnce(&mut Self)) {
        self.long(1);
        value(self);
    }

    fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => self.some(|o| write(o, v)),
            None => self.null(),
        }
    }

    /// One block holding every item, then the end marker.
    fn array<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.long(items.len() as i64);
            for item in items {
                write(self, item);
            }
        }
        self.long(0);
    }

    /// An int-keyed Iceberg map, entries in key order so that equal maps encode alike.
    fn int_map<V>(&mut self, map: &HashMap<i32, V>, mut write: impl FnMut(&mut Self, &V)) {
        let mut keys: Vec<i32> = map.keys().copied().collect();
        keys.sort_unstable();
        self.array(&keys, |o, key| {
            o.int(*key);
            write(o, &map[key]);
        });
    }

    fn primitive(&mut self, literal: &PrimitiveLiteral, primitive: &PrimitiveType) -> Result<(), String> {
        match (literal, primitive) {
            (PrimitiveLiteral::Boolean(v), PrimitiveType::Boolean) => self.0.push(u8::from(*v)),
            (PrimitiveLiteral::Int(v), PrimitiveType::Int | PrimitiveType::Date) => self.int(*v),
            (
                PrimitiveLiteral::Long(v),
                PrimitiveType::Long
                | PrimitiveType::Time
                | PrimitiveType::Timestamp
                | PrimitiveType::Timestamptz
                | PrimitiveType::TimestampNs
                | PrimitiveType::TimestamptzNs,
            ) => self.long(*v),
            (PrimitiveLiteral::Float(v), PrimitiveType::Float) => self.0.extend_from_slice(&v.0.to_le_bytes()),
            (PrimitiveLiteral::Double(v), PrimitiveType::Double) => self.0.extend_from_slice(&v.0.to_le_bytes()),
            (PrimitiveLiteral::String(v), PrimitiveType::String) => self.string(v),
            (PrimitiveLiteral::Binary(v), PrimitiveType::Binary) => self.bytes(v),
            (literal, primitive) => return Err(format!("{literal:?} is not a {primitive}")),
        }
        Ok(())
    }
}

/// The manifest list's summary of one partition field over the manifest's files.
struct PartitionSummary {
    primitive: PrimitiveType,
    contains_null: bool,
    contains_nan: bool,
    lower: Option<PrimitiveLiteral>,
    upper: Option<PrimitiveLiteral>,
}

impl PartitionSummary {
    fn new(primitive: PrimitiveType) -> Self {
        Self { primitive, contains_null: false, contains_nan: false, lower: None, upper: None }
    }

    fn update(&mut self, value: Option<&Literal>) -> Result<(), LakeError> {
        let literal = match value {
            None => {
                self.contains_null = true;
                return Ok(());
            }
            Some(Literal::Primitive(literal)) => literal,
            Some(other) => return Err(invalid(format!("partition value {other:?} is not a primitive"))),
        };
        let nan = match literal {
            PrimitiveLiteral::Float(v) => v.0.is_nan(),
            PrimitiveLiteral::Double(v) => v.0.is_nan(),
            _ => false,
        };
        if nan {
            self.contains_nan = true;
            return Ok(());
        }
        if self.lower.as_ref().is_none_or(|lower| literal < lower) {
            self.lower = Some(literal.clone());
        }
        if self.upper.as_ref().is_none_or(|upper| literal > upper) {
            self.upper = Some(literal.clone());
        }
        Ok(())
    }

    fn finish(self) -> Result<FieldSummary, LakeError> {
        let bound = |literal: Option<PrimitiveLiteral>| -> Result<_, LakeError> {
            literal.map(|l| datum(&self.primitive, l)?.to_bytes().map_err(LakeError::iceberg("a partition bound"))).transpose()
        };
        Ok(FieldSummary {
            contains_null: self.contains_null,
            contains_nan: Some(self.contains_nan),
            lower_bound: bound(self.lower.clone())?,
            upper_bound: bound(self.upper.clone())?,
        })
    }
}

/// A partition bound as a typed value, for Iceberg's single-value serialisation.
fn datum(primitive: &PrimitiveType, literal: PrimitiveLiteral) -> Result<Datum, LakeError> {
    Ok(match (primitive, literal) {
        (PrimitiveType::Boolean, PrimitiveLiteral::Boolean(v)) => Datum::bool(v),
        (PrimitiveType::Int, PrimitiveLiteral::Int(v)) => Datum::int(v),
        (PrimitiveType::Date, PrimitiveLiteral::Int(v)) => Datum::date(v),
        (PrimitiveType::Long, PrimitiveLiteral::Long(v)) => Datum::long(v),
        (PrimitiveType::Time, PrimitiveLiteral::Long(v)) => Datum::time_micros(v).map_err(LakeError::iceberg("a partition bound"))?,
        (PrimitiveType::Timestamp, PrimitiveLiteral::Long(v)) => Datum::timestamp_micros(v),
        (PrimitiveType::Timestamptz, PrimitiveLiteral::Long(v)) => Datum::timestamptz_micros(v),
        (PrimitiveType::TimestampNs, PrimitiveLiteral::Long(v)) => Datum::timestamp_nanos(v),
        (PrimitiveType::TimestamptzNs, PrimitiveLiteral::Long(v)) => Datum::timestamptz_nanos(v),
        (PrimitiveType::Float, PrimitiveLiteral::Float(v)) => Datum::float(v.0),
        (PrimitiveType::Double, PrimitiveLiteral::Double(v)) => Datum::double(v.0),
        (PrimitiveType::String, PrimitiveLiteral::String(v)) => Datum::string(v),
        (PrimitiveType::Binary, PrimitiveLiteral::Binary(v)) => Datum::binary(v),
        (primitive, literal) => return Err(invalid(format!("partition value {literal:?} is not a {primitive}"))),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use iceberg::spec::{DataContentType, DataFileBuilder, Manifest, ManifestStatus, Struct, UnboundPartitionSpec};
    use proptest::prelude::*;

    use super::*;
    use crate::schema::{default_partition_spec, field_id, sentiment_schema};

    fn spec(schema: &Schema) -> PartitionSpec {
        default_partition_spec().bind(schema.clone()).unwrap()
    }

    fn file(path: String, partition: Struct, rows: u64, stats: (HashMap<i32, u64>, HashMap<i32, Datum>), offsets: Option<Vec<i64>>) -> DataFile {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(path)
            .file_format(DataFileFormat::Parquet)
            .partition(partition)
            .partition_spec_id(0)
            .record_count(rows)
            .file_size_in_bytes(rows * 100 + 7)
            .column_sizes(stats.0.clone())
            .value_counts(stats.0.clone())
            .null_value_counts(stats.0.iter().map(|(&k, &v)| (k, v / 2)).collect())
            .nan_value_counts(HashMap::from([(field_id::SENTIMENT_SCORE, 0)]))
            .lower_bounds(stats.1.clone())
            .upper_bounds(stats.1)
            .split_offsets(offsets)
            .build()
            .unwrap()
    }

    fn partition(day: Option<i32>, ticker: Option<&str>, source: &str) -> Struct {
        Struct::from_iter([day.map(Literal::int), ticker.map(Literal::string), Some(Literal::string(source))])
    }

    /// What iceberg's own reader makes of the bytes: every entry as written, and the header it needs.
    fn read_back(files: &[DataFile], snapshot_id: i64, sequence_number: i64) -> (Manifest, ManifestFile) {
        let schema = sentiment_schema();
        let (bytes, summary) = encode(&schema, &spec(&schema), snapshot_id, sequence_number, files).unwrap().expect("the default spec is covered");
        assert_eq!(summary.manifest_length, bytes.len() as i64);
        (Manifest::parse_avro(&bytes).unwrap(), summary)
    }

    #[test]
    fn iceberg_reads_back_every_entry_as_written() {
        let bounds = HashMap::from([
            (field_id::EVENT_TIMESTAMP, Datum::timestamptz_micros(1_700_000_000_000_000)),
            (field_id::TICKER, Datum::string("AAPL")),
            (field_id::SENTIMENT_SCORE, Datum::float(-0.25)),
            (field_id::SARCASM_DETECTION, Datum::bool(true)),
        ]);
        let sizes = HashMap::from([(1, 300), (5, 1 << 40), (field_id::ENTITY_TYPE, 12)]);
        let files = vec![
            file(
                "/w/data/a é/1.parquet".into(),
                partition(Some(19_700), Some("AAPL"), "twitter"),
                50,
                (sizes.clone(), bounds.clone()),
                Some(vec![4]),
            ),
            file("/w/data/b/2.parquet".into(), partition(Some(-3), None, "news"), 1, (HashMap::new(), HashMap::new()), None),
        ];
        let (manifest, summary) = read_back(&files, 42, 7);
        assert_eq!(manifest.metadata().partition_spec.spec_id(), 0);
        assert_eq!(manifest.metadata().schema.as_ref(), &sentiment_schema());
        assert_eq!(manifest.entries().len(), 2);
        for (entry, written) in manifest.entries().iter().zip(&files) {
            assert_eq!(entry.status(), ManifestStatus::Added);
            assert_eq!((entry.snapshot_id(), entry.sequence_number()), (Some(42), Some(7)));
            assert_eq!(entry.data_file(), written);
        }
        assert_eq!((summary.added_files_count, summary.added_rows_count, summary.min_sequence_number), (Some(2), Some(51), 7));
        let partitions = summary.partitions.unwrap();
        assert_eq!(partitions[0].lower_bound.as_deref().map(Vec::as_slice), Some(&(-3i32).to_le_bytes()[..]), "days as 4-byte little-endian ints");
        assert_eq!(partitions[0].upper_bound.as_deref().map(Vec::as_slice), Some(&19_700i32.to_le_bytes()[..]));
        assert!(partitions[1].contains_null && !partitions[2].contains_null);
        assert_eq!(partitions[2].lower_bound.as_deref().map(Vec::as_slice), Some(&b"news"[..]));
        assert_eq!(partitions[2].upper_bound.as_deref().map(Vec::as_slice), Some(&b"twitter"[..]));
    }

    #[test]
    fn an_empty_manifest_is_a_valid_file() {
        let (manifest, summary) = read_back(&[], 1, 1);
        assert!(manifest.entries().is_empty());
        assert_eq!(summary.added_files_count, Some(0));
    }

    #[test]
    fn partition_types_it_does_not_encode_are_left_to_iceberg() {
        let schema = sentiment_schema();
        let spec = UnboundPartitionSpec::builder()
            .add_partition_field(field_id::MESSAGE_ID, "id_bucket", iceberg::spec::Transform::Bucket(8))
            .unwrap()
            .build()
            .bind(schema.clone())
            .unwrap();
        assert!(encode(&schema, &spec, 1, 1, &[]).unwrap().is_some(), "a bucket is an int");
        let decimal = Schema::builder()
            .with_fields(vec![
                iceberg::spec::NestedField::required(1, "price", Type::Primitive(PrimitiveType::Decimal { precision: 9, scale: 2 })).into()
            ])
            .build()
            .unwrap();
        let spec = UnboundPartitionSpec::builder()
            .add_partition_field(1, "price", iceberg::spec::Transform::Identity)
            .unwrap()
            .build()
            .bind(decimal.clone())
            .unwrap();
        assert!(encode(&decimal, &spec, 1, 1, &[]).unwrap().is_none());
    }

    proptest! {
        /// Any counts, bounds, offsets, paths and partition values (nulls, negative days, any text) survive
        /// the round trip through iceberg's reader exactly.
        #[test]
        fn entries_round_trip_through_icebergs_reader(
            files in prop::collection::vec(
                (
                    "\\PC{0,40}",
                    (prop::option::of(-30_000i32..80_000), prop::option::of("\\PC{0,12}"), "\\PC{0,12}"),
                    0u64..(1 << 50),
                    prop::collection::hash_map(1i32..31, any::<u64>().prop_map(|v| v >> 2), 0..8),
                    (prop::option::of(".{0,20}"), any::<i64>(), any::<f32>().prop_filter("NaN bounds are not written", |f| !f.is_nan())),
                    prop::option::of(prop::collection::vec(any::<i64>(), 0..4)),
                ),
                0..12,
            ),
            snapshot_id in any::<i64>(),
            sequence_number in 0i64..i64::MAX,
        ) {
            let files: Vec<DataFile> = files
                .into_iter()
                .map(|(path, (day, ticker, source), rows, counts, (text, micros, score), offsets)| {
                    let mut bounds = HashMap::from([
                        (field_id::EVENT_TIMESTAMP, Datum::timestamptz_micros(micros)),
                        (field_id::SENTIMENT_SCORE, Datum::float(score)),
                    ]);
                    if let Some(text) = text {
                        bounds.insert(field_id::TEXT_CONTENT, Datum::string(text));
                    }
                    file(path, partition(day, ticker.as_deref(), &source), rows, (counts, bounds), offsets)
                })
                .collect();
            let (manifest, summary) = read_back(&files, snapshot_id, sequence_number);
            prop_assert_eq!(manifest.entries().len(), files.len());
            for (entry, written) in manifest.entries().iter().zip(&files) {
                prop_assert_eq!(entry.data_file(), written);
                prop_assert_eq!((entry.snapshot_id(), entry.sequence_number()), (Some(snapshot_id), Some(sequence_number)));
            }
            prop_assert_eq!(summary.added_rows_count, Some(files.iter().map(DataFile::record_count).sum::<u64>()));
        }
    }
}
