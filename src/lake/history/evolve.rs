//! Schema evolution of the records table: optional columns added after the seed's 22
//! ([`crate::schema::extension`]), and the cached view of them that ingestion fills from records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::spec::{NestedField, Schema, Type};

use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::table::Change;
use crate::lake::target::TableHandle;
use crate::schema::extension::{self, ColumnType, ExtraColumn};

/// How long ingestion trusts its view of the added columns: a column added elsewhere is filled from records
/// within this long (rows staged before that keep it null).
pub const EXTRA_COLUMNS_TTL: Duration = Duration::from_secs(30);

/// The records table's added columns, as ingestion last looked them up.
pub type ExtraColumnsCache = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Vec<ExtraColumn>>)>>>;

/// The records table's added columns (cached in `cache` for [`EXTRA_COLUMNS_TTL`]).
pub async fn extra_columns(records: TableHandle<'_>, cache: &ExtraColumnsCache) -> Result<Vec<ExtraColumn>, LakeError> {
    let mut cached = cache.lock().await;
    if let Some((at, columns)) = cached.as_ref() {
        if at.elapsed() < EXTRA_COLUMNS_TTL {
            return Ok(columns.as_ref().clone());
        }
    }
    let table = records.load().await?;
    let columns = Arc::new(extension::extra_columns(table.metadata().current_schema()));
    *cached = Some((Instant::now(), columns.clone()));
    Ok(columns.as_ref().clone())
}

/// Adds the optional column `name` of `column_type` to the records table (a new current schema; data
/// files already written read it as null) and forgets `cache`. Refused for a name the table already has.
pub async fn add_column(
    records: TableHandle<'_>,
    cache: &ExtraColumnsCache,
    max_attempts: u32,
    name: &str,
    column_type: ColumnType,
    doc: Option<&str>,
) -> Result<Schema, LakeError> {
    let table_name = records.target.name.clone();
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(LakeError::Config(format!("column name {name:?}: use 1-128 letters, digits and underscores, not starting with a digit")));
    }
    for _attempt in 0..max_attempts {
        let table = records.load().await?;
        let metadata = table.metadata();
        let current = metadata.current_schema();
        if current.field_by_name(name).is_some() {
            return Err(LakeError::Config(format!("{table_name} already has a column {name:?}")));
        }
        let mut field = NestedField::optional(metadata.last_column_id() + 1, name, Type::Primitive(column_type.iceberg()));
        if let Some(doc) = doc {
            field = field.with_doc(doc);
        }
        let mut fields = current.as_struct().fields().to_vec();
        fields.push(Arc::new(field));
        let next_id = metadata.schemas_iter().map(|s| s.schema_id()).max().unwrap_or(0) + 1;
        let schema = Schema::builder()
            .with_schema_id(next_id)
            .with_identifier_field_ids(current.identifier_field_ids())
            .with_fields(fields)
            .build()
            .map_err(LakeError::iceberg("the evolved schema"))?;
        match records.commit(&table, Change { schema: Some(schema.clone()), ..Change::default() }).await? {
            Outcome::Landed { .. } => {
                *cache.lock().await = None;
                tracing::info!(table = %table_name, column = name, schema_id = next_id, "Column added.");
                return Ok(schema);
            }
            Outcome::Conflict => continue,
        }
    }
    Err(LakeError::Conflict { table: table_name })
}
