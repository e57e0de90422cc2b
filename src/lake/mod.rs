//! The embedded lake: warehouse storage, the SQL catalog (SQLite by default), the sentiment and
//! dead-letter tables, staging and the committer.
//!
//! Data enters only as [`Segment`]s through [`Lake::stage`] and reaches the tables only through
//! [`Lake::commit`]. This module knows nothing about Event Hubs or JSON: a source is an opaque id with
//! ordered sequence numbers.

mod commit;
mod pinned;
mod staging;
mod warehouse;
mod watermark;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use iceberg::spec::{Schema, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder, SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE};

pub use self::commit::{CommitPolicy, CommitReport};
pub use self::staging::{Segment, Staging, SEQUENCE_COLUMN};
pub use self::warehouse::{Warehouse, WarehouseLocation};
pub use self::watermark::{CommittedState, Watermarks, COMMIT_ID_PROPERTY, WATERMARKS_PROPERTY};
use crate::schema::{self, dead_letter};

/// Table property that turns off iceberg-rust's own commit retries: they rebase without asking, and this
/// crate's committer retries itself after re-reading the watermark.
const COMMIT_RETRIES_PROPERTY: &str = "commit.retry.num-retries";

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("arrow: {0}")]
    Arrow(String),
    #[error("parquet: {0}")]
    Parquet(String),
    #[error("corrupt lake state: {0}")]
    Corrupt(String),
    #[error("table {table}: gave up after {attempts} commit attempts: {source}")]
    CommitExhausted { table: String, attempts: u32, source: Box<iceberg::Error> },
    #[error("table {table} is incompatible: {detail}")]
    IncompatibleTable { table: String, detail: String },
}

impl LakeError {
    pub(crate) fn storage(e: opendal::Error) -> Self {
        LakeError::Storage(e.to_string())
    }
    pub(crate) fn iceberg(e: iceberg::Error) -> Self {
        LakeError::Iceberg(e)
    }
    pub(crate) fn arrow(e: arrow_schema::ArrowError) -> Self {
        LakeError::Arrow(e.to_string())
    }
    pub(crate) fn parquet(e: parquet::errors::ParquetError) -> Self {
        LakeError::Parquet(e.to_string())
    }
}

/// Which of the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Records,
    DeadLetters,
}

/// One table the lake writes: identity, schema and the spec it is created with.
#[derive(Debug, Clone)]
pub struct TableTarget {
    pub ident: TableIdent,
    pub name: String,
    pub schema: Schema,
    pub arrow_schema: SchemaRef,
    pub partition_spec: UnboundPartitionSpec,
    pub sort_column: Option<&'static str>,
}

/// How to open the lake.
#[derive(Clone)]
pub struct LakeConfig {
    /// Directory, `file://` or `abfss://` URL.
    pub warehouse: String,
    /// SQL catalog URI; defaults to `<warehouse>/catalog.db` for local warehouses.
    pub catalog_uri: Option<String>,
    /// Catalog name recorded in the SQL catalog's rows (PyIceberg must open it with the same name).
    pub catalog_name: String,
    pub namespace: String,
    pub table: String,
    pub dead_letter_table: String,
    /// Iceberg storage keys for Azure (`adls.account-key`, ...).
    pub storage_props: HashMap<String, String>,
    pub commit_policy: CommitPolicy,
}

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeConfig")
            .field("warehouse", &self.warehouse)
            .field("catalog_name", &self.catalog_name)
            .field("namespace", &self.namespace)
            .field("table", &self.table)
            .field("storage_props", &self.storage_props.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LakeConfig {
    pub const DEFAULT_CATALOG_NAME: &'static str = "sentiment_lake";
    pub const DEFAULT_NAMESPACE: &'static str = "sentiment";
    pub const DEFAULT_TABLE: &'static str = "sentiment_records";
    pub const DEFAULT_DEAD_LETTER_TABLE: &'static str = "sentiment_dead_letter";

    pub fn local(warehouse: impl Into<String>) -> Self {
        Self {
            warehouse: warehouse.into(),
            catalog_uri: None,
            catalog_name: Self::DEFAULT_CATALOG_NAME.into(),
            namespace: Self::DEFAULT_NAMESPACE.into(),
            table: Self::DEFAULT_TABLE.into(),
            dead_letter_table: Self::DEFAULT_DEAD_LETTER_TABLE.into(),
            storage_props: HashMap::new(),
            commit_policy: CommitPolicy::default(),
        }
    }
}

/// The opened lake. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Lake {
    warehouse: Warehouse,
    catalog: Arc<dyn Catalog>,
    staging: Staging,
    records: Arc<TableTarget>,
    dead_letters: Arc<TableTarget>,
    policy: CommitPolicy,
}

impl Lake {
    /// Opens the warehouse and catalog, creating the namespace and both tables on first use.
    pub async fn open(config: &LakeConfig) -> Result<Self, LakeError> {
        let warehouse = Warehouse::open(WarehouseLocation::parse(&config.warehouse)?, config.storage_props.clone())?;
        let uri = config.catalog_uri.clone().or_else(|| warehouse.default_catalog_uri()).ok_or_else(|| {
            LakeError::Config("an Azure warehouse needs --catalog-uri (SQLite path or PostgreSQL URL)".into())
        })?;
        let mut props = warehouse.iceberg_props().clone();
        // PostgreSQL binds `$1..$n`; SQLite (and MySQL) bind `?`.
        let bind_style = if uri.starts_with("postgres") { SqlBindStyle::DollarNumeric } else { SqlBindStyle::QMark };
        props.insert(SQL_CATALOG_PROP_URI.into(), uri);
        props.insert(SQL_CATALOG_PROP_WAREHOUSE.into(), warehouse.url());
        props.insert(SQL_CATALOG_PROP_BIND_STYLE.into(), bind_style.to_string());
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(warehouse.storage_factory())
            .load(&config.catalog_name, props)
            .await?;
        let catalog: Arc<dyn Catalog> = Arc::new(catalog);
        let namespace = NamespaceIdent::new(config.namespace.clone());
        if !catalog.namespace_exists(&namespace).await? {
            // Another process may create it between the check and here; that is fine.
            if let Err(e) = catalog.create_namespace(&namespace, HashMap::new()).await {
                if !catalog.namespace_exists(&namespace).await? {
                    return Err(e.into());
                }
            }
        }
        let target = |name: &str, schema: Schema, arrow_schema, spec, sort_column| TableTarget {
            ident: TableIdent::new(namespace.clone(), name.to_string()),
            name: name.to_string(),
            schema,
            arrow_schema,
            partition_spec: spec,
            sort_column,
        };
        let records = target(
            &config.table,
            schema::sentiment_schema(),
            schema::sentiment_arrow_schema(),
            schema::default_partition_spec(),
            Some(schema::column::EVENT_TIMESTAMP),
        );
        let dead_letters = target(
            &config.dead_letter_table,
            dead_letter::dead_letter_schema(),
            dead_letter::dead_letter_arrow_schema(),
            dead_letter::dead_letter_partition_spec(),
            None,
        );
        let lake = Self {
            staging: Staging::new(warehouse.operator().clone()),
            warehouse,
            catalog,
            records: Arc::new(records),
            dead_letters: Arc::new(dead_letters),
            policy: config.commit_policy,
        };
        for kind in [TableKind::Records, TableKind::DeadLetters] {
            lake.ensure_table(lake.target(kind)).await?;
        }
        Ok(lake)
    }

    async fn ensure_table(&self, target: &TableTarget) -> Result<(), LakeError> {
        let table = if self.catalog.table_exists(&target.ident).await? {
            self.catalog.load_table(&target.ident).await?
        } else {
            let creation = TableCreation::builder()
                .name(target.name.clone())
                .schema(target.schema.clone())
                .partition_spec(target.partition_spec.clone())
                .properties([
                    (COMMIT_RETRIES_PROPERTY.to_string(), "0".to_string()),
                    ("write.parquet.compression-codec".to_string(), "zstd".to_string()),
                ])
                .build();
            match self.catalog.create_table(target.ident.namespace(), creation).await {
                Ok(table) => table,
                // Lost a creation race with another process: use theirs.
                Err(_) if self.catalog.table_exists(&target.ident).await? => self.catalog.load_table(&target.ident).await?,
                Err(e) => return Err(e.into()),
            }
        };
        check_compatible(target, table.metadata().current_schema())?;
        if table.metadata().properties().get(COMMIT_RETRIES_PROPERTY).map(String::as_str) != Some("0") {
            let tx = Transaction::new(&table);
            let tx = tx
                .update_table_properties()
                .set(COMMIT_RETRIES_PROPERTY.to_string(), "0".to_string())
                .apply(tx)?;
            tx.commit(self.catalog.as_ref()).await?;
        }
        Ok(())
    }

    pub fn target(&self, kind: TableKind) -> &TableTarget {
        match kind {
            TableKind::Records => &self.records,
            TableKind::DeadLetters => &self.dead_letters,
        }
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    pub fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    /// Durably stages rows for a table. Empty segments are not written.
    pub async fn stage(&self, kind: TableKind, segment: &Segment) -> Result<Option<String>, LakeError> {
        if segment.rows.num_rows() == 0 {
            return Ok(None);
        }
        self.staging.write(&self.target(kind).name, segment).await.map(Some)
    }

    /// Staged segment paths not yet committed, per table.
    pub async fn pending_segments(&self, kind: TableKind) -> Result<Vec<String>, LakeError> {
        self.staging.list(&self.target(kind).name).await
    }

    /// Commits everything staged, records first, then dead letters.
    pub async fn commit(&self) -> Result<Vec<CommitReport>, LakeError> {
        let mut reports = Vec::with_capacity(2);
        for kind in [TableKind::Records, TableKind::DeadLetters] {
            let report = commit::commit_staged(&self.catalog, &self.staging, self.target(kind), self.policy).await?;
            crate::observability::BatchCommitted { report: &report }.emit();
            reports.push(report);
        }
        Ok(reports)
    }

    pub async fn load(&self, kind: TableKind) -> Result<Table, LakeError> {
        Ok(self.catalog.load_table(&self.target(kind).ident).await?)
    }

    pub async fn committed_state(&self, kind: TableKind) -> Result<CommittedState, LakeError> {
        CommittedState::read(self.load(kind).await?.metadata())
    }
}

/// The writer produces batches in the project's schema; the table must resolve every one of those field ids
/// to the same name and type, and have no other columns (the batches could not fill them). Checked when the
/// lake opens, so an incompatible table is a clear start-up error rather than a failed commit later.
fn check_compatible(target: &TableTarget, actual: &Schema) -> Result<(), LakeError> {
    let expected: std::collections::HashSet<i32> = target.schema.as_struct().fields().iter().map(|f| f.id).collect();
    if let Some(extra) = actual.as_struct().fields().iter().find(|f| !expected.contains(&f.id)) {
        return Err(LakeError::IncompatibleTable {
            table: target.name.clone(),
            detail: format!("column `{}` (field id {}) is not written by this version", extra.name, extra.id),
        });
    }
    for field in target.schema.as_struct().fields() {
        match actual.field_by_id(field.id) {
            Some(found) if found.name == field.name && found.field_type == field.field_type => {}
            Some(found) => {
                return Err(LakeError::IncompatibleTable {
                    table: target.name.clone(),
                    detail: format!("field id {} is `{}: {}`, expected `{}: {}`", field.id, found.name, found.field_type, field.name, field.field_type),
                })
            }
            None => {
                return Err(LakeError::IncompatibleTable {
                    table: target.name.clone(),
                    detail: format!("field id {} (`{}`) is missing", field.id, field.name),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{NestedField, PrimitiveType, Type};

    use super::*;

    fn records_target() -> TableTarget {
        TableTarget {
            ident: TableIdent::from_strs(["ns", "t"]).unwrap(),
            name: "t".into(),
            schema: schema::sentiment_schema(),
            arrow_schema: schema::sentiment_arrow_schema(),
            partition_spec: schema::default_partition_spec(),
            sort_column: None,
        }
    }

    fn with_fields(fields: Vec<NestedField>) -> Schema {
        Schema::builder().with_fields(fields.into_iter().map(Arc::new)).build().unwrap()
    }

    #[test]
    fn compatibility_requires_the_same_fields_and_no_others() {
        let target = records_target();
        assert!(check_compatible(&target, &target.schema).is_ok());

        let mut fields: Vec<NestedField> = target.schema.as_struct().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(NestedField::optional(31, "language", Type::Primitive(PrimitiveType::String)));
        let err = check_compatible(&target, &with_fields(fields.clone())).unwrap_err().to_string();
        assert!(err.contains("column `language` (field id 31)"), "{err}");

        fields.pop();
        fields[5] = NestedField::required(6, "sentiment_score", Type::Primitive(PrimitiveType::Double));
        let err = check_compatible(&target, &with_fields(fields.clone())).unwrap_err().to_string();
        assert!(err.contains("field id 6 is `sentiment_score: double`"), "{err}");

        fields.remove(5);
        let err = check_compatible(&target, &with_fields(fields)).unwrap_err().to_string();
        assert!(err.contains("field id 6 (`sentiment_score`) is missing"), "{err}");
    }
}
