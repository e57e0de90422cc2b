//! Columns added to the records table after the seed's 22 (`schema add-column`): optional top-level
//! primitives. A record carrying a field of that name fills it (of the column's type, or the record is
//! refused with the field named); a record without it leaves it null.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, TimestampMicrosecondBuilder};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, TimeUnit};
use serde_json::Value;

use super::table::sentiment_schema;

/// The types an added column may have (the seed's own primitive types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColumnType {
    String,
    Int,
    Long,
    Float,
    Double,
    Boolean,
    Timestamptz,
}

impl ColumnType {
    pub fn iceberg(self) -> iceberg::spec::PrimitiveType {
        use iceberg::spec::PrimitiveType as P;
        match self {
            ColumnType::String => P::String,
            ColumnType::Int => P::Int,
            ColumnType::Long => P::Long,
            ColumnType::Float => P::Float,
            ColumnType::Double => P::Double,
            ColumnType::Boolean => P::Boolean,
            ColumnType::Timestamptz => P::Timestamptz,
        }
    }
}

/// An added column as the table has it: its Arrow field (with the table's field id) for staged rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraColumn {
    pub field: Arc<Field>,
}

/// The table's columns beyond the seed's: optional top-level primitives (others are not filled from records).
pub fn extra_columns(table: &iceberg::spec::Schema) -> Vec<ExtraColumn> {
    let seed = sentiment_schema();
    let Ok(arrow) = iceberg::arrow::schema_to_arrow_schema(table) else { return Vec::new() };
    table
        .as_struct()
        .fields()
        .iter()
        .filter(|f| seed.field_by_name(&f.name).is_none() && !f.required && f.field_type.is_primitive())
        .filter_map(|f| arrow.field_with_name(&f.name).ok().map(|a| ExtraColumn { field: Arc::new(a.clone()) }))
        .filter(|c| supported(c.field.data_type()))
        .collect()
}

fn supported(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

/// Why a record's value cannot fill its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFieldError {
    pub field: String,
    pub message: String,
}

/// Builds the added columns of a batch, one record at a time.
pub struct ExtrasBuilder {
    columns: Vec<ExtraColumn>,
    values: Vec<Vec<Option<Value>>>,
}

impl ExtrasBuilder {
    pub fn new(columns: Vec<ExtraColumn>, capacity: usize) -> Self {
        let values = columns.iter().map(|_| Vec::with_capacity(capacity)).collect();
        Self { columns, values }
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = &Arc<Field>> {
        self.columns.iter().map(|c| &c.field)
    }

    /// The record's values for the added columns, checked against their types (nothing is appended).
    pub fn read(&self, body: &[u8]) -> Result<Vec<Option<Value>>, ExtraFieldError> {
        if self.columns.is_empty() {
            return Ok(Vec::new());
        }
        let object: serde_json::Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| ExtraFieldError { field: String::new(), message: format!("not a JSON object: {e}") })?;
        self.columns
            .iter()
            .map(|c| match object.get(c.field.name()) {
                None | Some(Value::Null) => Ok(None),
                Some(value) if fits(c.field.data_type(), value) => Ok(Some(value.clone())),
                Some(value) => Err(ExtraFieldError {
                    field: c.field.name().clone(),
                    message: format!("{value} is not a value of the added column's type {}", c.field.data_type()),
                }),
            })
            .collect()
    }

    pub fn append(&mut self, values: Vec<Option<Value>>) {
        for (column, value) in self.values.iter_mut().zip(values) {
            column.push(value);
        }
    }

    pub fn finish(self) -> Vec<ArrayRef> {
        self.columns.iter().zip(self.values).map(|(c, values)| build(c.field.data_type(), &values)).collect()
    }
}

fn timestamp_micros(value: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok().map(|t| t.timestamp_micros())
}

fn fits(t: &DataType, value: &Value) -> bool {
    match t {
        DataType::Utf8 => value.is_string(),
        DataType::Int32 => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        DataType::Int64 => value.as_i64().is_some(),
        DataType::Float32 | DataType::Float64 => value.as_f64().is_some_and(f64::is_finite),
        DataType::Boolean => value.is_boolean(),
        DataType::Timestamp(..) => timestamp_micros(value).is_some(),
        _ => false,
    }
}

/// Values were checked by [`fits`]; anything else becomes null.
fn build(t: &DataType, values: &[Option<Value>]) -> ArrayRef {
    match t {
        DataType::Utf8 => Arc::new(values.iter().map(|v| v.as_ref().and_then(Value::as_str)).collect::<arrow_array::StringArray>()),
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok())));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(Value::as_i64)));
            Arc::new(b.finish())
        }
        DataType::Float32 => {
            let mut b = Float32Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(Value::as_f64).map(|x| x as f32)));
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(Value::as_f64)));
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(Value::as_bool)));
            Arc::new(b.finish())
        }
        DataType::Timestamp(_, zone) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(v.as_ref().and_then(timestamp_micros)));
            Arc::new(b.finish().with_timezone_opt(zone.clone()))
        }
        _ => arrow_array::new_null_array(t, values.len()),
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};

    use super::*;

    fn evolved() -> Schema {
        let mut fields: Vec<_> = sentiment_schema().as_struct().fields().to_vec();
        fields.push(Arc::new(NestedField::optional(31, "analyst_rating", Type::Primitive(PrimitiveType::String))));
        fields.push(Arc::new(NestedField::optional(32, "price_target", Type::Primitive(PrimitiveType::Double))));
        fields.push(Arc::new(NestedField::required(33, "required_one", Type::Primitive(PrimitiveType::Long))));
        Schema::builder().with_schema_id(1).with_fields(fields).build().unwrap()
    }

    #[test]
    fn added_optional_primitives_are_filled_from_records_and_checked() {
        let columns = extra_columns(&evolved());
        let names: Vec<&str> = columns.iter().map(|c| c.field.name().as_str()).collect();
        assert_eq!(names, ["analyst_rating", "price_target"], "required columns are never filled from records");
        assert!(columns.iter().all(|c| c.field.metadata().contains_key("PARQUET:field_id")));
        let mut builder = ExtrasBuilder::new(columns, 3);
        builder.append(builder.read(br#"{"analyst_rating": "buy", "price_target": 212.5, "text_content": "x"}"#).unwrap());
        builder.append(builder.read(br#"{"text_content": "no extras"}"#).unwrap());
        let e = builder.read(br#"{"price_target": "high"}"#).unwrap_err();
        assert_eq!(e.field, "price_target");
        let arrays = builder.finish();
        assert_eq!(arrays[0].len(), 2);
        assert_eq!(arrays[0].null_count(), 1);
        assert_eq!(arrays[1].as_any().downcast_ref::<arrow_array::Float64Array>().unwrap().value(0), 212.5);
        assert!(extra_columns(&sentiment_schema()).is_empty());
    }
}
