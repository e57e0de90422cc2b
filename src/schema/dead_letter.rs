//! The dead-letter table: every event that could not become a sentiment row, with its raw bytes, where it
//! came from and why it was refused. Kept as an Iceberg table next to the main one so that any engine that
//! reads the lake can also audit what was refused (the same idea as Redpanda's `<topic>~dlq` tables).

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{Int64Builder, LargeBinaryBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, Utc};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};

pub const SOURCE: &str = "source";
pub const SEQUENCE_NUMBER: &str = "sequence_number";
pub const ERROR_CLASS: &str = "error_class";
pub const ERROR_FIELD: &str = "error_field";
pub const DEAD_LETTERED_AT: &str = "dead_lettered_at";
pub const RAW_BODY: &str = "raw_body";

/// Why an event was refused. Stable strings: they are stored and filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The body is not UTF-8 JSON of the record shape.
    Decode,
    /// The record decoded but broke a field rule.
    Validation,
    /// The record lacks analysis fields and enrichment is off.
    Incomplete,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Validation => "validation",
            ErrorClass::Incomplete => "incomplete",
        }
    }
}

/// One refused event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub source: String,
    pub sequence_number: i64,
    pub offset: Option<String>,
    pub enqueued_time: Option<DateTime<Utc>>,
    pub partition_key: Option<String>,
    pub raw_body: Vec<u8>,
    pub error_class: ErrorClass,
    pub error_field: Option<String>,
    pub error_message: String,
    pub dead_lettered_at: DateTime<Utc>,
    pub invocation_id: Option<String>,
}

pub fn dead_letter_schema() -> Schema {
    let string = || Type::Primitive(PrimitiveType::String);
    let tstz = || Type::Primitive(PrimitiveType::Timestamptz);
    let fields = vec![
        NestedField::required(1, SOURCE, string()),
        NestedField::required(2, SEQUENCE_NUMBER, Type::Primitive(PrimitiveType::Long)),
        NestedField::optional(3, "offset", string()),
        NestedField::optional(4, "enqueued_time", tstz()),
        NestedField::optional(5, "partition_key", string()),
        NestedField::required(6, RAW_BODY, Type::Primitive(PrimitiveType::Binary)),
        NestedField::required(7, ERROR_CLASS, string()),
        NestedField::optional(8, ERROR_FIELD, string()),
        NestedField::required(9, "error_message", string()),
        NestedField::required(10, DEAD_LETTERED_AT, tstz()),
        NestedField::optional(11, "invocation_id", string()),
    ];
    Schema::builder().with_schema_id(0).with_fields(fields.into_iter().map(Arc::new)).build().expect("the dead-letter schema is statically valid")
}

pub fn dead_letter_partition_spec() -> UnboundPartitionSpec {
    super::table::partition_spec(&[(10, "dead_lettered_at_day", Transform::Day)])
}

pub fn dead_letter_arrow_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> =
        LazyLock::new(|| Arc::new(iceberg::arrow::schema_to_arrow_schema(&dead_letter_schema()).expect("converts to Arrow")));
    SCHEMA.clone()
}

pub fn dead_letters_to_batch(letters: &[DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let n = letters.len();
    let mut source = StringBuilder::with_capacity(n, n * 48);
    let mut seq = Int64Builder::with_capacity(n);
    let mut offset = StringBuilder::new();
    let mut enqueued = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let mut partition_key = StringBuilder::new();
    let mut raw = LargeBinaryBuilder::new();
    let mut class = StringBuilder::new();
    let mut field = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let mut invocation = StringBuilder::new();
    for l in letters {
        source.append_value(&l.source);
        seq.append_value(l.sequence_number);
        offset.append_option(l.offset.as_deref());
        enqueued.append_option(l.enqueued_time.map(|t| t.timestamp_micros()));
        partition_key.append_option(l.partition_key.as_deref());
        raw.append_value(&l.raw_body);
        class.append_value(l.error_class.as_str());
        field.append_option(l.error_field.as_deref());
        message.append_value(&l.error_message);
        at.append_value(l.dead_lettered_at.timestamp_micros());
        invocation.append_option(l.invocation_id.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(seq.finish()),
        Arc::new(offset.finish()),
        Arc::new(enqueued.finish()),
        Arc::new(partition_key.finish()),
        Arc::new(raw.finish()),
        Arc::new(class.finish()),
        Arc::new(field.finish()),
        Arc::new(message.finish()),
        Arc::new(at.finish()),
        Arc::new(invocation.finish()),
    ];
    RecordBatch::try_new(dead_letter_arrow_schema(), columns)
}

/// A dead letter as the table holds it, read back for a replay: its class as the text stored (a class this
/// version does not know is reported, not refused), without the invocation id a replay has no use for.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    pub source: String,
    pub sequence_number: i64,
    pub offset: Option<String>,
    pub enqueued_time: Option<DateTime<Utc>>,
    pub partition_key: Option<String>,
    pub raw_body: Vec<u8>,
    pub error_class: String,
    pub error_field: Option<String>,
    pub error_message: String,
    pub dead_lettered_at: DateTime<Utc>,
}

/// The dead letters of `batch` (the table's columns in any Arrow string, binary and timestamp encodings,
/// any order, extra columns ignored): an error for a batch without them, and per row the dead letter or why
/// that row cannot be one (a null where the table requires a value, a time out of range), so one bad row
/// leaves its neighbours readable.
pub fn dead_letters_from_batch(batch: &RecordBatch) -> Result<Vec<Result<StoredDeadLetter, String>>, ArrowError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_schema::{DataType, TimeUnit};

    let column = |name: &str, to: &DataType| -> Result<ArrayRef, ArrowError> {
        let found = batch.column_by_name(name).ok_or_else(|| ArrowError::SchemaError(format!("the dead letters have no column {name}")))?;
        arrow_cast::cast(found, to)
    };
    let text = DataType::Utf8;
    let instant = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let (source, offset, partition_key, class, field, message) = (
        column(SOURCE, &text)?,
        column("offset", &text)?,
        column("partition_key", &text)?,
        column(ERROR_CLASS, &text)?,
        column(ERROR_FIELD, &text)?,
        column("error_message", &text)?,
    );
    let (source, offset, partition_key, class, field, message) = (
        source.as_string::<i32>(),
        offset.as_string::<i32>(),
        partition_key.as_string::<i32>(),
        class.as_string::<i32>(),
        field.as_string::<i32>(),
        message.as_string::<i32>(),
    );
    let sequence = column(SEQUENCE_NUMBER, &DataType::Int64)?;
    let sequence = sequence.as_primitive::<Int64Type>();
    let raw = column(RAW_BODY, &DataType::LargeBinary)?;
    let raw = raw.as_binary::<i64>();
    let (enqueued, at) = (column("enqueued_time", &instant)?, column(DEAD_LETTERED_AT, &instant)?);
    let (enqueued, at) = (enqueued.as_primitive::<TimestampMicrosecondType>(), at.as_primitive::<TimestampMicrosecondType>());
    let optional = |array: &arrow_array::StringArray, row: usize| array.is_valid(row).then(|| array.value(row).to_string());
    let instant_at = |micros: i64| DateTime::from_timestamp_micros(micros).ok_or_else(|| format!("{micros} µs is out of range"));
    use arrow_array::Array as _;
    let required: [(&str, &dyn arrow_array::Array); 6] =
        [(SOURCE, source), (SEQUENCE_NUMBER, sequence), (RAW_BODY, raw), (ERROR_CLASS, class), ("error_message", message), (DEAD_LETTERED_AT, at)];
    Ok((0..batch.num_rows())
        .map(|row| {
            if let Some((name, _)) = required.iter().find(|(_, array)| array.is_null(row)) {
                return Err(format!("row {row} has no {name}"));
            }
            Ok(StoredDeadLetter {
                source: source.value(row).to_string(),
                sequence_number: sequence.value(row),
                offset: optional(offset, row),
                enqueued_time: enqueued.is_valid(row).then(|| instant_at(enqueued.value(row))).transpose()?,
                partition_key: optional(partition_key, row),
                raw_body: raw.value(row).to_vec(),
                error_class: class.value(row).to_string(),
                error_field: optional(field, row),
                error_message: message.value(row).to_string(),
                dead_lettered_at: instant_at(at.value(row))?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_read_back_as_written() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let letter = DeadLetter {
            source: "eventhubs://ns/hub/$Default/3".into(),
            sequence_number: 42,
            offset: Some("4096".into()),
            enqueued_time: Some(at),
            partition_key: None,
            raw_body: b"{\"ticker\": 7}".to_vec(),
            error_class: ErrorClass::Validation,
            error_field: Some("ticker".into()),
            error_message: "not a string".into(),
            dead_lettered_at: at,
            invocation_id: None,
        };
        let read = dead_letters_from_batch(&dead_letters_to_batch(std::slice::from_ref(&letter)).unwrap()).unwrap();
        assert_eq!(
            read,
            vec![Ok(StoredDeadLetter {
                source: letter.source.clone(),
                sequence_number: 42,
                offset: Some("4096".into()),
                enqueued_time: Some(at),
                partition_key: None,
                raw_body: letter.raw_body.clone(),
                error_class: "validation".into(),
                error_field: Some("ticker".into()),
                error_message: "not a string".into(),
                dead_lettered_at: at,
            })]
        );
        // A row whose time is out of range is refused alone.
        let batch = dead_letters_to_batch(&[letter.clone(), letter]).unwrap();
        let mut columns = batch.columns().to_vec();
        let times = arrow_array::TimestampMicrosecondArray::from(vec![i64::MAX, 1_700_000_000_000_000]).with_timezone("+00:00");
        columns[batch.schema().index_of(DEAD_LETTERED_AT).unwrap()] = Arc::new(times);
        let read = dead_letters_from_batch(&RecordBatch::try_new(batch.schema(), columns).unwrap()).unwrap();
        assert!(read[0].as_ref().is_err_and(|e| e.contains("out of range")), "{read:?}");
        assert!(read[1].is_ok());
        let without = dead_letters_to_batch(&[]).unwrap().project(&[0, 1]).unwrap();
        assert!(dead_letters_from_batch(&without).is_err(), "a batch without the columns is refused, not misread");
    }
}
