//! The `sentiment_quality` table: one row per commit and source, readable by any engine
//! (`SELECT source, SUM(rows), SUM(dead_letters) FROM sentiment_quality WHERE profiled_at > now() - INTERVAL '1' DAY
//! GROUP BY source`). Histograms are lists of counts over the bins [`super::profile`] fixes (the columns'
//! docs repeat the edges), so they add up element by element.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, Int64Array, ListArray, RecordBatch, StructArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, FieldRef, SchemaRef};
use chrono::{DateTime, Utc};
use iceberg::spec::{ListType, MapType, NestedField, PrimitiveType, Schema, StructType, Transform, Type, UnboundPartitionSpec};

use super::profile::{Distribution, DistributionKey, SourceProfile};
use crate::schema::arrow::{cast_to, int_map_row, read_int_map, read_primitives, read_strings, IntMapColumn};

pub mod column {
    pub const PROFILED_AT: &str = "profiled_at";
    pub const COMMIT_ID: &str = "commit_id";
    pub const SNAPSHOT_ID: &str = "snapshot_id";
    pub const SOURCE: &str = "source";
    pub const ROWS: &str = "rows";
    pub const DUPLICATES: &str = "duplicates";
    pub const DEAD_LETTERS: &str = "dead_letters";
    pub const FUTURE_DATED: &str = "future_dated";
    pub const DEAD_LETTERS_BY_RULE: &str = "dead_letters_by_rule";
    pub const DEAD_LETTERS_BY_FIELD: &str = "dead_letters_by_field";
    pub const NULLS: &str = "null_counts";
    pub const LATENESS: &str = "lateness_histogram";
    pub const DISTRIBUTIONS: &str = "distributions";
    pub const SOURCE_SYSTEM: &str = "source_system";
    pub const MODEL_NAME: &str = "model_name";
    pub const PROCESSING_VERSION: &str = "processing_version";
    pub const SCORES: &str = "score_histogram";
    pub const MAGNITUDES: &str = "magnitude_histogram";
}

use column as c;

/// One row of the table: a source's profile in one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityRow {
    pub profiled_at: DateTime<Utc>,
    /// The records commit the row profiles (the dead-letter commit's when no record was committed).
    pub commit_id: String,
    /// The records snapshot it created, if any.
    pub snapshot_id: Option<i64>,
    pub source: String,
    pub profile: SourceProfile,
}

fn long() -> Type {
    Type::Primitive(PrimitiveType::Long)
}
fn string() -> Type {
    Type::Primitive(PrimitiveType::String)
}
fn counts(element_id: i32) -> Type {
    Type::List(ListType::new(NestedField::list_element(element_id, long(), true).into()))
}
fn count_map(key_id: i32, value_id: i32) -> Type {
    Type::Map(MapType::new(NestedField::map_key_element(key_id, string()).into(), NestedField::map_value_element(value_id, long(), true).into()))
}

/// Nested ids follow the top-level ones breadth first, in field order: how a catalog numbers a new table's
/// fields (ids it would otherwise renumber, see `Lake::open`).
pub fn quality_schema() -> Schema {
    let edges = |edges: String| format!("counts per bin; upper bin edges {edges}, a last bin above them");
    let seconds = super::profile::LATENESS_EDGES_S.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    let magnitudes = super::profile::MAGNITUDE_EDGES.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ");
    let distribution = Type::Struct(StructType::new(vec![
        NestedField::required(22, c::SOURCE_SYSTEM, string()).into(),
        NestedField::optional(23, c::MODEL_NAME, string()).into(),
        NestedField::required(24, c::PROCESSING_VERSION, string()).into(),
        NestedField::required(25, c::ROWS, long()).into(),
        NestedField::required(26, c::SCORES, counts(28)).into(),
        NestedField::required(27, c::MAGNITUDES, counts(29)).into(),
    ]));
    let fields = vec![
        NestedField::required(1, c::PROFILED_AT, Type::Primitive(PrimitiveType::Timestamptz)),
        NestedField::required(2, c::COMMIT_ID, string()),
        NestedField::optional(3, c::SNAPSHOT_ID, long()),
        NestedField::required(4, c::SOURCE, string()),
        NestedField::required(5, c::ROWS, long()),
        NestedField::required(6, c::DUPLICATES, long()),
        NestedField::required(7, c::DEAD_LETTERS, long()),
        NestedField::required(8, c::FUTURE_DATED, long()).with_doc("events more than 60 s after their batch's enqueued time"),
        NestedField::optional(9, c::DEAD_LETTERS_BY_RULE, count_map(14, 15)),
        NestedField::optional(10, c::DEAD_LETTERS_BY_FIELD, count_map(16, 17)),
        NestedField::optional(11, c::NULLS, count_map(18, 19)),
        NestedField::required(12, c::LATENESS, counts(20)).with_doc(edges(format!("{seconds} seconds (enqueued time minus event time)"))),
        // Docs on top-level fields only: a reader's Arrow fields carry no docs, and nested fields are compared
        // whole when files are rewritten.
        NestedField::optional(13, c::DISTRIBUTIONS, Type::List(ListType::new(NestedField::list_element(21, distribution, true).into()))).with_doc(
            format!("score_histogram: counts of sentiment_score in 20 bins of width 0.1 over [-1, 1]; magnitude_histogram: {}", edges(magnitudes)),
        ),
    ];
    Schema::builder().with_schema_id(0).with_fields(fields.into_iter().map(Arc::new)).build().expect("the quality schema is valid")
}

pub fn quality_partition_spec() -> UnboundPartitionSpec {
    crate::schema::partition_spec(&[(1, "profiled_at_day", Transform::Day)])
}

pub const SORT_COLUMNS: &[&str] = &[c::PROFILED_AT, c::SOURCE];

pub fn quality_arrow_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> =
        LazyLock::new(|| Arc::new(iceberg::arrow::schema_to_arrow_schema(&quality_schema()).expect("the quality schema converts to Arrow")));
    SCHEMA.clone()
}

fn schema_error(detail: String) -> ArrowError {
    ArrowError::SchemaError(detail)
}

fn list_element(field: &FieldRef) -> Result<FieldRef, ArrowError> {
    match field.data_type() {
        DataType::List(element) => Ok(element.clone()),
        other => Err(schema_error(format!("{} is {other}, not a list", field.name()))),
    }
}

/// A `list<long>` column of `field`'s type holding `lists`.
fn long_lists<'a>(field: &FieldRef, lists: impl Iterator<Item = &'a [u64]>) -> Result<ArrayRef, ArrowError> {
    let mut offsets = vec![0i32];
    let mut values: Vec<i64> = Vec::new();
    for list in lists {
        values.extend(list.iter().map(|&n| i64::try_from(n).unwrap_or(i64::MAX)));
        offsets.push(i32::try_from(values.len()).map_err(|_| schema_error("a histogram column over 2^31 values".into()))?);
    }
    Ok(Arc::new(ListArray::try_new(list_element(field)?, OffsetBuffer::new(offsets.into()), Arc::new(Int64Array::from(values)), None)?))
}

fn count_entries(map: &BTreeMap<String, u64>) -> impl Iterator<Item = (&str, i128)> {
    map.iter().map(|(k, n)| (k.as_str(), i128::from(*n)))
}

fn as_long(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `rows` as a batch of the quality table.
pub fn to_batch(rows: &[QualityRow]) -> Result<RecordBatch, ArrowError> {
    let schema = quality_arrow_schema();
    let n = rows.len();
    let mut profiled_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let (mut commit_id, mut source) = (StringBuilder::new(), StringBuilder::new());
    let mut snapshot = Int64Builder::with_capacity(n);
    let [mut total, mut duplicates, mut dead_letters, mut future] = std::array::from_fn(|_| Int64Builder::with_capacity(n));
    let (mut by_rule, mut by_field, mut nulls) = (IntMapColumn::default(), IntMapColumn::default(), IntMapColumn::default());
    for row in rows {
        let p = &row.profile;
        profiled_at.append_value(row.profiled_at.timestamp_micros());
        commit_id.append_value(&row.commit_id);
        snapshot.append_option(row.snapshot_id);
        source.append_value(&row.source);
        total.append_value(as_long(p.rows));
        duplicates.append_value(as_long(p.duplicates));
        dead_letters.append_value(as_long(p.dead_letters));
        future.append_value(as_long(p.future_dated));
        by_rule.push(Some(count_entries(&p.dead_letters_by_rule)));
        by_field.push(Some(count_entries(&p.dead_letters_by_field)));
        nulls.push(Some(count_entries(&p.nulls)));
    }
    let lateness = long_lists(field(&schema, c::LATENESS)?, rows.iter().map(|r| r.profile.lateness.as_slice()))?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(profiled_at.finish()),
        Arc::new(commit_id.finish()),
        Arc::new(snapshot.finish()),
        Arc::new(source.finish()),
        Arc::new(total.finish()),
        Arc::new(duplicates.finish()),
        Arc::new(dead_letters.finish()),
        Arc::new(future.finish()),
        by_rule.finish(&schema, c::DEAD_LETTERS_BY_RULE)?,
        by_field.finish(&schema, c::DEAD_LETTERS_BY_FIELD)?,
        nulls.finish(&schema, c::NULLS)?,
        lateness,
        distributions(&schema, rows)?,
    ];
    RecordBatch::try_new(schema, columns)
}

fn field<'a>(schema: &'a SchemaRef, name: &str) -> Result<&'a FieldRef, ArrowError> {
    schema.fields().find(name).map(|(_, f)| f).ok_or_else(|| schema_error(format!("the quality schema has no {name}")))
}

/// The `distributions` column: a list of structs per row.
fn distributions(schema: &SchemaRef, rows: &[QualityRow]) -> Result<ArrayRef, ArrowError> {
    let element = list_element(field(schema, c::DISTRIBUTIONS)?)?;
    let DataType::Struct(members) = element.data_type() else { return Err(schema_error("distributions hold no structs".into())) };
    let mut offsets = vec![0i32];
    let (mut systems, mut models, mut versions) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut counts = Int64Builder::new();
    let all: Vec<(&DistributionKey, &Distribution)> = rows.iter().flat_map(|r| r.profile.distributions.iter()).collect();
    for row in rows {
        let last = offsets.last().copied().unwrap_or(0);
        offsets.push(last + i32::try_from(row.profile.distributions.len()).map_err(|_| schema_error("too many distributions".into()))?);
    }
    for (key, distribution) in &all {
        systems.append_value(&key.source_system);
        models.append_option(key.model_name.as_deref());
        versions.append_value(&key.processing_version);
        counts.append_value(as_long(distribution.rows));
    }
    let member = |name: &str| members.iter().find(|m| m.name() == name).cloned().ok_or_else(|| schema_error(format!("distributions have no {name}")));
    let scores = long_lists(&member(c::SCORES)?, all.iter().map(|(_, d)| d.scores.as_slice()))?;
    let magnitudes = long_lists(&member(c::MAGNITUDES)?, all.iter().map(|(_, d)| d.magnitudes.as_slice()))?;
    let structs = StructArray::try_new(
        members.clone(),
        vec![Arc::new(systems.finish()), Arc::new(models.finish()), Arc::new(versions.finish()), Arc::new(counts.finish()), scores, magnitudes],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(element, OffsetBuffer::new(offsets.into()), Arc::new(structs), None)?))
}

fn longs_of(array: &dyn Array) -> Result<Vec<u64>, String> {
    let values = array.as_primitive_opt::<Int64Type>().ok_or_else(|| format!("a histogram holds {}", array.data_type()))?;
    Ok(values.iter().map(|v| v.map_or(0, |n| u64::try_from(n).unwrap_or(0))).collect())
}

fn list_of<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ListArray, String> {
    let column = batch.column_by_name(name).ok_or_else(|| format!("a quality batch has no {name} column"))?;
    column.as_list_opt::<i32>().ok_or_else(|| format!("{name} is {}, not a list", column.data_type()))
}

fn struct_member<'a>(structs: &'a StructArray, name: &str) -> Result<&'a ArrayRef, String> {
    structs.column_by_name(name).ok_or_else(|| format!("distributions have no {name}"))
}

/// The rows of a batch read from the quality table (every column selected).
pub fn read_batch(batch: &RecordBatch) -> Result<Vec<QualityRow>, String> {
    let text = |name: &str| read_strings(batch, "quality", name);
    let longs = |name: &str| read_primitives::<Int64Type>(batch, "quality", name);
    let at = read_primitives::<TimestampMicrosecondType>(batch, "quality", c::PROFILED_AT)?;
    let (commits, sources) = (text(c::COMMIT_ID)?, text(c::SOURCE)?);
    let (snapshots, totals, duplicates, dead, future) =
        (longs(c::SNAPSHOT_ID)?, longs(c::ROWS)?, longs(c::DUPLICATES)?, longs(c::DEAD_LETTERS)?, longs(c::FUTURE_DATED)?);
    let (by_rule, by_field, nulls) =
        (read_int_map(batch, c::DEAD_LETTERS_BY_RULE)?, read_int_map(batch, c::DEAD_LETTERS_BY_FIELD)?, read_int_map(batch, c::NULLS)?);
    let lateness = list_of(batch, c::LATENESS)?;
    let distributions = list_of(batch, c::DISTRIBUTIONS)?;
    let structs = distributions.values().as_struct_opt().ok_or_else(|| "distributions hold no structs".to_string())?;
    let (systems, models, versions) = (
        cast_to(struct_member(structs, c::SOURCE_SYSTEM)?, &DataType::Utf8)?,
        cast_to(struct_member(structs, c::MODEL_NAME)?, &DataType::Utf8)?,
        cast_to(struct_member(structs, c::PROCESSING_VERSION)?, &DataType::Utf8)?,
    );
    let (systems, models, versions) = (systems.as_string::<i32>(), models.as_string::<i32>(), versions.as_string::<i32>());
    let counts = cast_to(struct_member(structs, c::ROWS)?, &DataType::Int64)?;
    let counts = counts.as_primitive::<Int64Type>();
    let score_lists = struct_member(structs, c::SCORES)?.as_list_opt::<i32>().ok_or_else(|| "score_histogram is not a list".to_string())?;
    let magnitude_lists =
        struct_member(structs, c::MAGNITUDES)?.as_list_opt::<i32>().ok_or_else(|| "magnitude_histogram is not a list".to_string())?;
    let counted = |map: Option<&crate::schema::arrow::IntMap>, i| -> Result<BTreeMap<String, u64>, String> {
        Ok(int_map_row(map, i)?.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0))).collect())
    };
    let count = |a: &arrow_array::PrimitiveArray<Int64Type>, i: usize| if a.is_valid(i) { u64::try_from(a.value(i)).unwrap_or(0) } else { 0 };
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut profile = SourceProfile {
            rows: count(&totals, i),
            duplicates: count(&duplicates, i),
            dead_letters: count(&dead, i),
            dead_letters_by_rule: counted(by_rule.as_ref(), i)?,
            dead_letters_by_field: counted(by_field.as_ref(), i)?,
            future_dated: count(&future, i),
            nulls: counted(nulls.as_ref(), i)?,
            ..SourceProfile::default()
        };
        if lateness.is_valid(i) {
            let read = longs_of(lateness.value(i).as_ref())?;
            profile.lateness.iter_mut().zip(read).for_each(|(a, b)| *a = b);
        }
        if distributions.is_valid(i) {
            let offsets = distributions.value_offsets();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                let key = DistributionKey {
                    source_system: systems.value(j).to_string(),
                    model_name: models.is_valid(j).then(|| models.value(j).to_string()),
                    processing_version: versions.value(j).to_string(),
                };
                let mut distribution = Distribution { rows: count(counts, j), ..Distribution::default() };
                distribution.scores.iter_mut().zip(longs_of(score_lists.value(j).as_ref())?).for_each(|(a, b)| *a = b);
                distribution.magnitudes.iter_mut().zip(longs_of(magnitude_lists.value(j).as_ref())?).for_each(|(a, b)| *a = b);
                profile.distributions.entry(key).or_default().absorb(&distribution);
            }
        }
        rows.push(QualityRow {
            profiled_at: DateTime::from_timestamp_micros(at.value(i)).ok_or_else(|| format!("profiled_at {} is out of range", at.value(i)))?,
            commit_id: commits.value(i).to_string(),
            snapshot_id: snapshots.is_valid(i).then(|| snapshots.value(i)),
            source: sources.value(i).to_string(),
            profile,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::profile::Profiles;
    use crate::schema::tests_support::full_record;
    use crate::schema::RecordBatchBuilder;

    #[test]
    fn rows_read_back_as_written() {
        let mut builder = RecordBatchBuilder::with_capacity(3);
        for (score, model) in [(0.5, Some("vader")), (-0.2, None), (0.9, Some("finbert"))] {
            let mut record = full_record();
            record.sentiment_score = score;
            record.model_name = model.map(Into::into);
            builder.append(&record);
        }
        let mut profiles = Profiles::default();
        profiles.add_records("eventhubs://a/0", &builder.finish().unwrap(), None).unwrap();
        profiles.add_duplicates("eventhubs://a/0", 2);
        let letters = crate::schema::dead_letter::dead_letters_to_batch(&[crate::schema::dead_letter::DeadLetter {
            source: "eventhubs://a/1".into(),
            sequence_number: 1,
            offset: None,
            enqueued_time: None,
            partition_key: None,
            raw_body: b"{}".to_vec(),
            error_class: crate::schema::dead_letter::ErrorClass::Validation,
            error_field: Some("sentiment_score".into()),
            error_message: "7 is outside [-1, 1]".into(),
            dead_lettered_at: Utc::now(),
            invocation_id: None,
        }])
        .unwrap();
        profiles.add_dead_letters("eventhubs://a/1", &letters).unwrap();
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap();
        let rows: Vec<QualityRow> = profiles
            .by_source
            .into_iter()
            .map(|(source, profile)| QualityRow { profiled_at: at, commit_id: "c".into(), snapshot_id: Some(7), source, profile })
            .collect();
        let batch = to_batch(&rows).unwrap();
        assert_eq!(read_batch(&batch).unwrap(), rows);
        assert_eq!(rows[1].profile.dead_letters_by_field["sentiment_score"], 1);
        assert_eq!(rows[0].profile.distributions.len(), 3);
    }
}
