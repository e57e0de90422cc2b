//! Columnar builder: validated [`SentimentRecord`]s -> an Arrow `RecordBatch` in the table's Arrow schema.
//!
//! Nested builders take their child fields from the schema itself so that every nested field keeps its
//! `PARQUET:field_id`; `RecordBatch::try_new` compares nested fields exactly, so a hand-written child field
//! would be rejected.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, FieldRef, Fields, SchemaRef};

use super::record::{Entity, FloatMap, SentimentRecord};
use super::table::sentiment_arrow_schema;

const UTC: &str = "+00:00";

type FloatMapBuilder = MapBuilder<StringBuilder, Float32Builder>;

/// Accumulates records column by column; `finish` yields one `RecordBatch`.
pub struct RecordBatchBuilder {
    schema: SchemaRef,
    message_id: StringBuilder,
    event_timestamp: TimestampMicrosecondBuilder,
    ingestion_timestamp: TimestampMicrosecondBuilder,
    source_system: StringBuilder,
    text_content: StringBuilder,
    sentiment_score: Float32Builder,
    sentiment_magnitude: Float32Builder,
    primary_emotion: StringBuilder,
    emotion_intensity_vector: FloatMapBuilder,
    aspect_target_identification: ListBuilder<StringBuilder>,
    aspect_based_sentiment: FloatMapBuilder,
    sarcasm_detection: BooleanBuilder,
    subjectivity_score: Float32Builder,
    toxicity_score: Float32Builder,
    entity_recognition: ListBuilder<StructBuilder>,
    user_intent: StringBuilder,
    influence_score: Float32Builder,
    processing_version: StringBuilder,
    ticker: StringBuilder,
    article_title: StringBuilder,
    source_url: StringBuilder,
    model_name: StringBuilder,
}

fn float_map_builder(field: &FieldRef) -> FloatMapBuilder {
    let DataType::Map(entries, _) = field.data_type() else { unreachable!("{} is a map", field.name()) };
    let DataType::Struct(kv) = entries.data_type() else { unreachable!("map entries are structs") };
    let names = MapFieldNames { entry: entries.name().clone(), key: kv[0].name().clone(), value: kv[1].name().clone() };
    MapBuilder::new(Some(names), StringBuilder::new(), Float32Builder::new()).with_keys_field(kv[0].clone()).with_values_field(kv[1].clone())
}

fn list_element(field: &FieldRef) -> FieldRef {
    let DataType::List(element) = field.data_type() else { unreachable!("{} is a list", field.name()) };
    element.clone()
}

fn timestamp_builder(capacity: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone(UTC)
}

impl RecordBatchBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        let schema = sentiment_arrow_schema();
        let f = schema.fields();
        let entity_element = list_element(&f[14]);
        let DataType::Struct(entity_fields) = entity_element.data_type() else { unreachable!("entity is a struct") };
        let entity_struct = StructBuilder::from_fields(Fields::clone(entity_fields), capacity);
        Self {
            message_id: StringBuilder::with_capacity(capacity, capacity * 36),
            event_timestamp: timestamp_builder(capacity),
            ingestion_timestamp: timestamp_builder(capacity),
            source_system: StringBuilder::with_capacity(capacity, capacity * 8),
            text_content: StringBuilder::with_capacity(capacity, capacity * 512),
            sentiment_score: Float32Builder::with_capacity(capacity),
            sentiment_magnitude: Float32Builder::with_capacity(capacity),
            primary_emotion: StringBuilder::new(),
            emotion_intensity_vector: float_map_builder(&f[8]),
            aspect_target_identification: ListBuilder::new(StringBuilder::new()).with_field(list_element(&f[9])),
            aspect_based_sentiment: float_map_builder(&f[10]),
            sarcasm_detection: BooleanBuilder::with_capacity(capacity),
            subjectivity_score: Float32Builder::with_capacity(capacity),
            toxicity_score: Float32Builder::with_capacity(capacity),
            entity_recognition: ListBuilder::new(entity_struct).with_field(entity_element),
            user_intent: StringBuilder::new(),
            influence_score: Float32Builder::with_capacity(capacity),
            processing_version: StringBuilder::new(),
            ticker: StringBuilder::new(),
            article_title: StringBuilder::new(),
            source_url: StringBuilder::new(),
            model_name: StringBuilder::new(),
            schema,
        }
    }

    pub fn append(&mut self, r: &SentimentRecord<'_>) {
        self.message_id.append_value(&r.message_id);
        self.event_timestamp.append_value(r.event_timestamp.timestamp_micros());
        self.ingestion_timestamp.append_value(r.ingestion_timestamp.timestamp_micros());
        self.source_system.append_value(&r.source_system);
        self.text_content.append_value(&r.text_content);
        self.sentiment_score.append_value(r.sentiment_score);
        self.sentiment_magnitude.append_value(r.sentiment_magnitude);
        self.primary_emotion.append_value(&r.primary_emotion);
        append_float_map(&mut self.emotion_intensity_vector, r.emotion_intensity_vector.as_ref());
        match &r.aspect_target_identification {
            Some(aspects) => {
                for aspect in aspects {
                    self.aspect_target_identification.values().append_value(aspect);
                }
                self.aspect_target_identification.append(true);
            }
            None => self.aspect_target_identification.append_null(),
        }
        append_float_map(&mut self.aspect_based_sentiment, r.aspect_based_sentiment.as_ref());
        self.sarcasm_detection.append_value(r.sarcasm_detection);
        self.subjectivity_score.append_value(r.subjectivity_score);
        self.toxicity_score.append_value(r.toxicity_score);
        append_entities(&mut self.entity_recognition, r.entity_recognition.as_deref());
        self.user_intent.append_value(&r.user_intent);
        self.influence_score.append_option(r.influence_score);
        self.processing_version.append_value(&r.processing_version);
        self.ticker.append_option(r.ticker.as_deref());
        self.article_title.append_option(r.article_title.as_deref());
        self.source_url.append_option(r.source_url.as_deref());
        self.model_name.append_option(r.model_name.as_deref());
    }

    pub fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.message_id.finish()),
            Arc::new(self.event_timestamp.finish()),
            Arc::new(self.ingestion_timestamp.finish()),
            Arc::new(self.source_system.finish()),
            Arc::new(self.text_content.finish()),
            Arc::new(self.sentiment_score.finish()),
            Arc::new(self.sentiment_magnitude.finish()),
            Arc::new(self.primary_emotion.finish()),
            Arc::new(self.emotion_intensity_vector.finish()),
            Arc::new(self.aspect_target_identification.finish()),
            Arc::new(self.aspect_based_sentiment.finish()),
            Arc::new(self.sarcasm_detection.finish()),
            Arc::new(self.subjectivity_score.finish()),
            Arc::new(self.toxicity_score.finish()),
            Arc::new(self.entity_recognition.finish()),
            Arc::new(self.user_intent.finish()),
            Arc::new(self.influence_score.finish()),
            Arc::new(self.processing_version.finish()),
            Arc::new(self.ticker.finish()),
            Arc::new(self.article_title.finish()),
            Arc::new(self.source_url.finish()),
            Arc::new(self.model_name.finish()),
        ];
        RecordBatch::try_new(self.schema, columns)
    }
}

fn append_float_map(builder: &mut FloatMapBuilder, map: Option<&FloatMap<'_>>) {
    match map {
        Some(map) => {
            for (key, value) in map {
                builder.keys().append_value(key);
                builder.values().append_value(*value);
            }
            builder.append(true).expect("keys and values are appended in pairs");
        }
        None => builder.append(false).expect("a null map has no entries"),
    }
}

fn append_entities(builder: &mut ListBuilder<StructBuilder>, entities: Option<&[Entity<'_>]>) {
    let Some(entities) = entities else {
        builder.append_null();
        return;
    };
    let structs = builder.values();
    for entity in entities {
        structs.field_builder::<StringBuilder>(0).expect("text column").append_value(&entity.text);
        structs.field_builder::<StringBuilder>(1).expect("type column").append_value(&entity.entity_type);
        structs.append(true);
    }
    builder.append(true);
}

/// A map column being built: keys, integer values (counts, or sums in units), offsets and validity.
#[derive(Default)]
pub struct IntMapColumn {
    keys: Vec<String>,
    values: Vec<i128>,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl IntMapColumn {
    pub fn push<'a>(&mut self, entries: Option<impl Iterator<Item = (&'a str, i128)>>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.valid.push(entries.is_some());
        for (key, value) in entries.into_iter().flatten() {
            self.keys.push(key.to_string());
            self.values.push(value);
        }
        self.offsets.push(self.keys.len() as i32);
    }

    /// The column, typed as `schema`'s field `name` says (long or decimal values).
    pub fn finish(mut self, schema: &SchemaRef, name: &str) -> Result<ArrayRef, arrow_schema::ArrowError> {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let field = schema.field_with_name(name)?;
        let DataType::Map(entries_field, sorted) = field.data_type() else {
            return Err(arrow_schema::ArrowError::SchemaError(format!("{name} is not a map")));
        };
        let DataType::Struct(members) = entries_field.data_type() else {
            return Err(arrow_schema::ArrowError::SchemaError(format!("{name}'s entries are not a struct")));
        };
        let keys: ArrayRef = Arc::new(arrow_array::StringArray::from(self.keys));
        let values: ArrayRef = match members[1].data_type() {
            DataType::Int64 => Arc::new(arrow_array::Int64Array::from(self.values.into_iter().map(|v| v as i64).collect::<Vec<_>>())),
            DataType::Decimal128(precision, scale) => {
                Arc::new(arrow_array::Decimal128Array::from(self.values).with_precision_and_scale(*precision, *scale)?)
            }
            other => return Err(arrow_schema::ArrowError::SchemaError(format!("{name}'s values are {other}"))),
        };
        let entries = arrow_array::StructArray::try_new(members.clone(), vec![keys, values], None)?;
        let offsets = arrow_buffer::OffsetBuffer::new(self.offsets.into());
        let nulls = arrow_buffer::NullBuffer::from(self.valid);
        Ok(Arc::new(arrow_array::MapArray::try_new(entries_field.clone(), offsets, entries, Some(nulls), *sorted)?))
    }
}

/// `column` in the type a reader works in: a scan may hand back another encoding of the same values (views,
/// dictionaries, a timestamp without its zone).
pub fn cast_to(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    arrow_cast::cast(column, to).map_err(|e| e.to_string())
}

/// Column `name` of a batch read back from table `table`, in `to` ([`cast_to`]).
pub fn read_column(batch: &RecordBatch, table: &str, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    cast_to(batch.column_by_name(name).ok_or_else(|| format!("a {table} batch has no {name} column"))?, to)
}

/// Column `name` of a batch read back, as text.
pub fn read_strings(batch: &RecordBatch, table: &str, name: &str) -> Result<arrow_array::StringArray, String> {
    Ok(read_column(batch, table, name, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Column `name` of a batch read back, as `T` (longs, floats, microsecond timestamps).
pub fn read_primitives<T: arrow_array::ArrowPrimitiveType>(
    batch: &RecordBatch,
    table: &str,
    name: &str,
) -> Result<arrow_array::PrimitiveArray<T>, String> {
    Ok(read_column(batch, table, name, &T::DATA_TYPE)?.as_primitive::<T>().clone())
}

/// A map column of string keys and integer values read back: the map, its keys as text, its values.
pub type IntMap = (arrow_array::MapArray, arrow_array::StringArray, ArrayRef);

/// The map column `name` of `batch` (`None` when the scan did not select it).
pub fn read_int_map(batch: &RecordBatch, name: &str) -> Result<Option<IntMap>, String> {
    let Some(column) = batch.column_by_name(name) else { return Ok(None) };
    let map = column.as_map_opt().ok_or_else(|| format!("column {name} is {}", column.data_type()))?.clone();
    let keys = cast_to(map.keys(), &DataType::Utf8)?.as_string::<i32>().clone();
    let values = map.values().clone();
    Ok(Some((map, keys, values)))
}

/// The entries of row `row` of a map column read back: keys and integer values (longs, or decimals in
/// units).
pub fn int_map_row(map: Option<&IntMap>, row: usize) -> Result<Vec<(String, i128)>, String> {
    let Some((map, keys, values)) = map else { return Ok(Vec::new()) };
    if !map.is_valid(row) {
        return Ok(Vec::new());
    }
    let offsets = map.value_offsets();
    (offsets[row] as usize..offsets[row + 1] as usize)
        .map(|i| {
            let value = match values.data_type() {
                DataType::Int64 => i128::from(values.as_primitive::<Int64Type>().value(i)),
                DataType::Decimal128(_, _) => values.as_primitive::<Decimal128Type>().value(i),
                other => return Err(format!("a map column holds {other}")),
            };
            Ok((keys.value(i).to_string(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use arrow_array::Array;

    use super::*;
    use crate::schema::tests_support::full_record;

    #[test]
    fn builds_a_batch_with_nested_columns_and_nulls() {
        let mut builder = RecordBatchBuilder::with_capacity(2);
        builder.append(&full_record());
        let mut sparse = full_record();
        sparse.emotion_intensity_vector = None;
        sparse.entity_recognition = None;
        sparse.aspect_target_identification = Some(vec![]);
        builder.append(&sparse);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let emotions = batch.column(8).as_map();
        assert!(emotions.is_valid(0) && emotions.is_null(1));
        assert_eq!(emotions.value(0).column(1).as_primitive::<Float32Type>().values(), &[0.1, 0.7]);
        let aspects = batch.column(9).as_list::<i32>();
        assert_eq!(aspects.value_length(0), 1);
        assert!(aspects.is_valid(1) && aspects.value_length(1) == 0);
        assert!(batch.column(14).is_null(1));
    }
}
