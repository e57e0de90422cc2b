//! Whether the writer can append to a table that may have been created by another tool (PyIceberg in the
//! seed's Phase 1, Dremio, Spark), and how its rows are shaped for it.
//!
//! Columns are matched by *name*, the contract the seed states; field ids are the table's own (a tool may
//! have numbered nested fields differently), so rows are re-shaped to the table's Arrow schema at commit
//! time ([`conform`]). The check happens when the lake opens, so an incompatible table is a clear start-up
//! error rather than a failed commit later.

use std::sync::Arc;

use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use iceberg::spec::{NestedFieldRef, PrimitiveType, Schema, StructType, Type};

/// Why the writer's rows cannot go into the table, naming the column.
pub fn check(writer: &Schema, table: &Schema) -> Result<(), String> {
    check_struct("", writer.as_struct(), table.as_struct())
}

fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_struct(prefix: &str, writer: &StructType, table: &StructType) -> Result<(), String> {
    for ours in writer.fields() {
        let name = path(prefix, &ours.name);
        let theirs = table.field_by_name(&ours.name).ok_or_else(|| format!("column `{name}` is missing from the table"))?;
        check_field(&name, ours, theirs)?;
    }
    for theirs in table.fields() {
        if writer.field_by_name(&theirs.name).is_none() && theirs.required {
            return Err(format!("column `{}` is required by the table but the writer has no value for it", path(prefix, &theirs.name)));
        }
    }
    Ok(())
}

fn check_field(name: &str, ours: &NestedFieldRef, theirs: &NestedFieldRef) -> Result<(), String> {
    if theirs.required && !ours.required {
        return Err(format!("column `{name}` is required by the table but may be null in the writer's rows"));
    }
    check_type(name, &ours.field_type, &theirs.field_type)
}

fn check_type(name: &str, ours: &Type, theirs: &Type) -> Result<(), String> {
    match (ours, theirs) {
        (Type::Primitive(a), Type::Primitive(b)) if a == b || promotes(a, b) => Ok(()),
        (Type::Struct(a), Type::Struct(b)) => check_struct(name, a, b),
        (Type::List(a), Type::List(b)) => check_field(&format!("{name}[]"), &a.element_field, &b.element_field),
        (Type::Map(a), Type::Map(b)) => {
            check_field(&format!("{name}.key"), &a.key_field, &b.key_field)?;
            check_field(&format!("{name}.value"), &a.value_field, &b.value_field)
        }
        _ => Err(format!("column `{name}` is `{theirs}` in the table, the writer has `{ours}`")),
    }
}

/// Iceberg's safe type promotions: the table may hold a wider type than the writer produces.
fn promotes(ours: &PrimitiveType, theirs: &PrimitiveType) -> bool {
    matches!((ours, theirs), (PrimitiveType::Float, PrimitiveType::Double) | (PrimitiveType::Int, PrimitiveType::Long))
}

/// `rows` (in the writer's Arrow schema) re-shaped to `table`: columns by name in the table's order, with
/// the table's field ids and types (a cast where only nested field metadata or a promotion differs), and
/// nulls for optional columns the writer does not have. Columns already identical are passed through
/// without copying.
pub fn conform(rows: &RecordBatch, table: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if rows.schema().fields() == table.fields() {
        return RecordBatch::try_new(table.clone(), rows.columns().to_vec());
    }
    let columns = table
        .fields()
        .iter()
        .map(|field| match rows.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            Some(column) => arrow_cast::cast(column, field.data_type()),
            None => Ok(new_null_array(field.data_type(), rows.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(Arc::clone(table), columns)
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{ListType, MapType, NestedField};

    use super::*;
    use crate::schema::{column as c, field_id, sentiment_arrow_schema, sentiment_schema};

    fn fields(schema: &Schema) -> Vec<NestedField> {
        schema.as_struct().fields().iter().map(|f| f.as_ref().clone()).collect()
    }

    fn build(fields: Vec<NestedField>) -> Schema {
        Schema::builder().with_fields(fields.into_iter().map(Arc::new)).build().unwrap()
    }

    /// Renumbers every nested id, as another tool assigning fresh ids might.
    fn renumbered() -> Schema {
        let string = || Type::Primitive(PrimitiveType::String);
        let float = || Type::Primitive(PrimitiveType::Float);
        let mut f = fields(&sentiment_schema());
        let map = |k, v| {
            Type::Map(MapType::new(NestedField::map_key_element(k, string()).into(), NestedField::map_value_element(v, float(), false).into()))
        };
        f[8] = NestedField::optional(field_id::EMOTION_INTENSITY_VECTOR, c::EMOTION_INTENSITY_VECTOR, map(101, 102));
        f[9] = NestedField::optional(
            field_id::ASPECT_TARGET_IDENTIFICATION,
            c::ASPECT_TARGET_IDENTIFICATION,
            Type::List(ListType::new(NestedField::list_element(103, string(), true).into())),
        );
        f[10] = NestedField::optional(field_id::ASPECT_BASED_SENTIMENT, c::ASPECT_BASED_SENTIMENT, map(104, 105));
        let entity = Type::Struct(StructType::new(vec![
            NestedField::required(107, "text", string()).into(),
            NestedField::required(108, "type", string()).into(),
        ]));
        f[14] = NestedField::optional(
            field_id::ENTITY_RECOGNITION,
            c::ENTITY_RECOGNITION,
            Type::List(ListType::new(NestedField::list_element(106, entity, true).into())),
        );
        f.push(NestedField::optional(109, "language", string()));
        build(f)
    }

    #[test]
    fn other_ids_optional_map_values_and_extra_optional_columns_are_compatible() {
        assert!(check(&sentiment_schema(), &sentiment_schema()).is_ok());
        assert!(check(&sentiment_schema(), &renumbered()).is_ok());
    }

    #[test]
    fn incompatibilities_name_the_column() {
        let ours = sentiment_schema();
        let mut f = fields(&ours);
        f[5] = NestedField::required(6, c::SENTIMENT_SCORE, Type::Primitive(PrimitiveType::String));
        assert!(check(&ours, &build(f)).unwrap_err().contains("`sentiment_score` is `string`"));

        let mut f = fields(&ours);
        f[18] = NestedField::required(19, c::TICKER, Type::Primitive(PrimitiveType::String));
        assert!(check(&ours, &build(f)).unwrap_err().contains("`ticker` is required by the table but may be null"));

        let mut f = fields(&ours);
        f.remove(4);
        assert!(check(&ours, &build(f)).unwrap_err().contains("`text_content` is missing"));

        let mut f = fields(&ours);
        f.push(NestedField::required(40, "tenant", Type::Primitive(PrimitiveType::String)));
        assert!(check(&ours, &build(f)).unwrap_err().contains("`tenant` is required by the table"));

        let mut f = fields(&ours);
        f[5] = NestedField::required(6, c::SENTIMENT_SCORE, Type::Primitive(PrimitiveType::Double));
        assert!(check(&ours, &build(f)).is_ok(), "float -> double is a promotion");
    }

    #[test]
    fn rows_are_reshaped_to_the_tables_ids_and_extra_columns() {
        let mut builder = crate::schema::RecordBatchBuilder::with_capacity(1);
        builder.append(&crate::schema::tests_support::full_record());
        let rows = builder.finish().unwrap();
        let table = Arc::new(iceberg::arrow::schema_to_arrow_schema(&renumbered()).unwrap());
        let shaped = conform(&rows, &table).unwrap();
        assert_eq!(shaped.schema(), table);
        assert_eq!(shaped.num_columns(), 23);
        assert!(shaped.column(22).is_null(0), "the table's extra optional column is null");
        assert_eq!(conform(&rows, &sentiment_arrow_schema()).unwrap().num_columns(), 22);
    }
}
