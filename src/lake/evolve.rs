//! Schema evolution of the records table: optional columns added after the seed's 22
//! ([`crate::schema::extension`]), and the cached view of them that ingestion fills from records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::spec::{NestedField, Schema, Type};

use super::{Change, Lake, LakeError, Outcome, TableKind};
use crate::schema::extension::{extra_columns, ColumnType, ExtraColumn};

/// How long ingestion trusts its view of the added columns: a column added elsewhere is filled from records
/// within this long (rows staged before that keep it null).
pub const EXTRA_COLUMNS_TTL: Duration = Duration::from_secs(30);

pub(super) type ExtraColumnsCache = Arc<tokio::sync::Mutex<Option<(Instant, Arc<Vec<ExtraColumn>>)>>>;

impl Lake {
    /// The records table's added columns (cached for [`EXTRA_COLUMNS_TTL`]).
    pub async fn extra_columns(&self) -> Result<Vec<ExtraColumn>, LakeError> {
        let mut cached = self.extras.lock().await;
        if let Some((at, columns)) = cached.as_ref() {
            if at.elapsed() < EXTRA_COLUMNS_TTL {
                return Ok(columns.as_ref().clone());
            }
        }
        let table = self.load(TableKind::Records).await?;
        let columns = Arc::new(extra_columns(table.metadata().current_schema()));
        *cached = Some((Instant::now(), columns.clone()));
        Ok(columns.as_ref().clone())
    }

    /// Adds the optional column `name` of `column_type` to the records table (a new current schema; data
    /// files already written read it as null). Refused for a name the table already has.
    pub async fn add_column(&self, name: &str, column_type: ColumnType, doc: Option<&str>) -> Result<Schema, LakeError> {
        let table_name = self.target(TableKind::Records).name.clone();
        if name.is_empty()
            || name.len() > 128
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(LakeError::Config(format!("column name {name:?}: use 1-128 letters, digits and underscores, not starting with a digit")));
        }
        for _attempt in 0..self.policy().max_attempts {
            let table = self.load(TableKind::Records).await?;
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
            match self.commit_change(&table, Change { schema: Some(schema.clone()), ..Change::default() }).await? {
                Outcome::Landed { .. } => {
                    *self.extras.lock().await = None;
                    tracing::info!(table = %table_name, column = name, schema_id = next_id, "Column added.");
                    return Ok(schema);
                }
                Outcome::Conflict => continue,
            }
        }
        Err(LakeError::Conflict { table: table_name })
    }
}
