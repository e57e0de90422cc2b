//! The embedded lake: warehouse storage, the SQL catalog (SQLite by default), the sentiment and
//! dead-letter tables, staging and the committer.
//!
//! Data enters only as [`Segment`]s through [`Lake::stage`] and reaches the tables only through
//! [`Lake::commit`]. This module knows nothing about Event Hubs or JSON: a source is an opaque id with
//! ordered sequence numbers.

mod catalog;
mod commit;
mod committer;
pub mod compat;
mod error;
mod ledger;
pub mod paths;
pub mod plan;
mod quarantine;
pub mod retired;
mod staging;
mod swap;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use iceberg::spec::{Schema, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

use self::catalog::CatalogSettings;
pub use self::catalog::{CatalogAuth, RenewingCatalog, OSSRDBMS_RESOURCE};
pub use self::commit::{CommitPolicy, CommitReport};
pub use self::committer::{Committer, OnCommit};
pub use self::error::LakeError;
pub use self::ledger::{
    CommittedState, Watermarks, COMMIT_ID_PROPERTY, LEDGER_FORMAT_PROPERTY, PARTIAL_SUMMARY, RECENT_COMMITS_PROPERTY, WATERMARKS_PROPERTY,
};
pub use self::plan::PassBounds;
pub use self::quarantine::{Quarantine, QuarantineRecord, StoredEnvelope};
pub use self::retired::{RetireReport, RetiredSource};
pub use self::staging::{EntryKind, Listing, Segment, StagedEntry, Staging, SEQUENCE_COLUMN};
pub use self::swap::{Change, Outcome};
use crate::schema::{self, dead_letter};
use crate::storage::{Location, StorageSettings, Warehouse};

/// Which of the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Records,
    DeadLetters,
}

/// One table the lake writes: identity, the schema its rows are built in and the spec it is created with.
#[derive(Debug, Clone)]
pub struct TableTarget {
    pub ident: TableIdent,
    pub name: String,
    pub schema: Schema,
    pub arrow_schema: SchemaRef,
    pub partition_spec: UnboundPartitionSpec,
    /// Rows are sorted by these columns within each data file (prunes time and ticker filters well).
    pub sort_columns: &'static [&'static str],
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
    /// How the catalog database is signed in to (the URI's own credentials, or an Entra token).
    pub catalog_auth: CatalogAuth,
    pub namespace: String,
    pub table: String,
    pub dead_letter_table: String,
    /// Sources finished for good (migrated legacy files), kept out of the records table's watermarks.
    pub retired_table: String,
    /// How to reach a remote warehouse (credentials, endpoint).
    pub storage: StorageSettings,
    pub commit_policy: CommitPolicy,
    /// How the records table is partitioned when this lake creates it.
    pub layout: schema::Layout,
}

const RECORD_SORT: &[&str] = &[schema::column::TICKER, schema::column::EVENT_TIMESTAMP];

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeConfig")
            .field("warehouse", &self.warehouse)
            .field("catalog_name", &self.catalog_name)
            .field("catalog_auth", &self.catalog_auth)
            .field("namespace", &self.namespace)
            .field("table", &self.table)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl LakeConfig {
    pub const DEFAULT_CATALOG_NAME: &'static str = "sentiment_lake";
    pub const DEFAULT_NAMESPACE: &'static str = "sentiment";
    pub const DEFAULT_TABLE: &'static str = "sentiment_records";
    pub const DEFAULT_DEAD_LETTER_TABLE: &'static str = "sentiment_dead_letter";
    pub const DEFAULT_RETIRED_TABLE: &'static str = "migration_ledger";

    pub fn local(warehouse: impl Into<String>) -> Self {
        Self {
            warehouse: warehouse.into(),
            catalog_uri: None,
            catalog_name: Self::DEFAULT_CATALOG_NAME.into(),
            catalog_auth: CatalogAuth::default(),
            namespace: Self::DEFAULT_NAMESPACE.into(),
            table: Self::DEFAULT_TABLE.into(),
            dead_letter_table: Self::DEFAULT_DEAD_LETTER_TABLE.into(),
            retired_table: Self::DEFAULT_RETIRED_TABLE.into(),
            storage: StorageSettings::default(),
            commit_policy: CommitPolicy::default(),
            layout: schema::Layout::default(),
        }
    }
}

/// The opened lake. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Lake {
    warehouse: Warehouse,
    /// How storage is reached, for other locations than the warehouse (legacy uploads).
    storage: Arc<StorageSettings>,
    catalog: Arc<RenewingCatalog>,
    staging: Staging,
    quarantine: Quarantine,
    records: Arc<TableTarget>,
    dead_letters: Arc<TableTarget>,
    retired: Arc<TableTarget>,
    policy: CommitPolicy,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("warehouse", &self.warehouse)
            .field("records", &self.records.ident)
            .field("dead_letters", &self.dead_letters.ident)
            .finish_non_exhaustive()
    }
}

impl Lake {
    /// Opens the warehouse and catalog, creating the namespace and both tables on first use.
    pub async fn open(config: &LakeConfig) -> Result<Self, LakeError> {
        let warehouse = Warehouse::open(Location::parse(&config.warehouse)?, &config.storage)?;
        tracing::info!(warehouse = %warehouse.url(), access = warehouse.access(), "warehouse opened");
        let uri = config
            .catalog_uri
            .clone()
            .or_else(|| warehouse.default_catalog_uri())
            .ok_or_else(|| LakeError::Config("a remote warehouse needs --catalog-uri (the PostgreSQL catalog its instances share)".into()))?;
        if !warehouse.location().is_local() && uri.starts_with("sqlite:") {
            // Every Functions instance would keep its own catalog file, so each would have its own table.
            return Err(LakeError::Config(format!(
                "a SQLite catalog cannot serve the remote warehouse {}: its instances must share one catalog (--catalog-uri postgres://...)",
                warehouse.url()
            )));
        }
        let catalog = Arc::new(
            RenewingCatalog::connect(CatalogSettings {
                uri,
                catalog_name: config.catalog_name.clone(),
                warehouse_url: warehouse.url(),
                storage_factory: warehouse.storage_factory(),
                auth: config.catalog_auth,
                identity: config.storage.azure.clone(),
            })
            .await?,
        );
        let namespace = NamespaceIdent::new(config.namespace.clone());
        let in_catalog = LakeError::iceberg(format!("namespace {}", config.namespace));
        if !catalog.namespace_exists(&namespace).await.map_err(LakeError::iceberg("catalog"))? {
            // Another process may create it between the check and here; that is fine.
            if let Err(e) = catalog.create_namespace(&namespace, HashMap::new()).await {
                if !catalog.namespace_exists(&namespace).await.map_err(LakeError::iceberg("catalog"))? {
                    return Err(in_catalog(e));
                }
            }
        }
        let target = |name: &str, schema: Schema, arrow_schema, spec, sort_columns| TableTarget {
            ident: TableIdent::new(namespace.clone(), name.to_string()),
            name: name.to_string(),
            schema,
            arrow_schema,
            partition_spec: spec,
            sort_columns,
        };
        let records =
            target(&config.table, schema::sentiment_schema(), schema::sentiment_arrow_schema(), config.layout.partition_spec(), RECORD_SORT);
        let dead_letters = target(
            &config.dead_letter_table,
            dead_letter::dead_letter_schema(),
            dead_letter::dead_letter_arrow_schema(),
            dead_letter::dead_letter_partition_spec(),
            &[],
        );
        let retired =
            target(&config.retired_table, retired::retired_schema(), retired::retired_arrow_schema(), retired::retired_partition_spec(), &[]);
        let lake = Self {
            storage: Arc::new(config.storage.clone()),
            staging: Staging::new(warehouse.store().clone()),
            quarantine: Quarantine::new(warehouse.store().clone()),
            warehouse,
            catalog,
            records: Arc::new(records),
            dead_letters: Arc::new(dead_letters),
            retired: Arc::new(retired),
            policy: config.commit_policy,
        };
        for target in [lake.target(TableKind::Records), lake.target(TableKind::DeadLetters), &lake.retired] {
            lake.ensure_table(target).await?;
        }
        Ok(lake)
    }

    async fn ensure_table(&self, target: &TableTarget) -> Result<(), LakeError> {
        let in_catalog = || LakeError::iceberg(format!("table {}", target.ident));
        let table = if self.catalog.table_exists(&target.ident).await.map_err(in_catalog())? {
            self.catalog.load_table(&target.ident).await.map_err(in_catalog())?
        } else {
            let creation = TableCreation::builder()
                .name(target.name.clone())
                .schema(target.schema.clone())
                .partition_spec(target.partition_spec.clone())
                .properties([("write.parquet.compression-codec".to_string(), "zstd".to_string())])
                .build();
            match self.catalog.create_table(target.ident.namespace(), creation).await {
                Ok(table) => table,
                // Lost a creation race with another process: use theirs.
                Err(_) if self.catalog.table_exists(&target.ident).await.map_err(in_catalog())? => {
                    self.catalog.load_table(&target.ident).await.map_err(in_catalog())?
                }
                Err(e) => return Err(in_catalog()(e)),
            }
        };
        let incompatible = |detail| LakeError::IncompatibleTable { table: target.name.clone(), detail };
        if table.metadata().format_version() != iceberg::spec::FormatVersion::V2 {
            return Err(incompatible(format!("format version {} (the writer commits v2 tables)", table.metadata().format_version())));
        }
        compat::check(&target.schema, table.metadata().current_schema()).map_err(incompatible)
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

    /// The storage settings the lake was opened with (credentials stay redacted in `Debug`).
    pub fn storage_settings(&self) -> &StorageSettings {
        &self.storage
    }

    /// The catalog, renewing its own sign-in: safe to keep for the life of the process.
    pub fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    pub fn policy(&self) -> CommitPolicy {
        self.policy
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// Durably stages a segment for a table (a range marker when it has no rows); returns its path.
    pub async fn stage(&self, kind: TableKind, segment: &Segment) -> Result<String, LakeError> {
        self.staging.write(&self.target(kind).name, segment).await
    }

    /// What is staged for a table and not yet committed.
    pub async fn pending(&self, kind: TableKind) -> Result<Listing, LakeError> {
        self.staging.list(&self.target(kind).name).await
    }

    /// Commits everything committable, records first, then dead letters.
    pub async fn commit(&self) -> Result<Vec<CommitReport>, LakeError> {
        let mut reports = Vec::with_capacity(2);
        for kind in [TableKind::Records, TableKind::DeadLetters] {
            let cx = commit::CommitContext {
                catalog: &self.catalog,
                staging: &self.staging,
                quarantine: &self.quarantine,
                target: self.target(kind),
                retired: &self.retired,
                policy: self.policy,
            };
            let report = commit::commit_staged(&cx).await?;
            let r = &report;
            crate::observability::BatchCommitted {
                table: &r.table,
                segments: r.segments,
                staged_bytes: r.staged_bytes,
                rows: r.rows_committed,
                duplicates: r.duplicates_dropped,
                data_files: r.data_files,
                snapshots: r.snapshots,
                attempts: r.attempts,
                snapshot_id: r.snapshot_id,
                latency: r.latency,
            }
            .emit();
            reports.push(report);
        }
        Ok(reports)
    }

    pub async fn load(&self, kind: TableKind) -> Result<Table, LakeError> {
        let ident = &self.target(kind).ident;
        self.catalog.load_table(ident).await.map_err(LakeError::iceberg(format!("loading {ident}")))
    }

    pub async fn committed_state(&self, kind: TableKind) -> Result<CommittedState, LakeError> {
        CommittedState::read(&self.target(kind).name, self.load(kind).await?.metadata())
    }

    /// Commits `change` on top of exactly `table` (one of the lake's tables, as loaded): the catalog's
    /// compare-and-swap publishes it, or refuses it when another commit landed first
    /// ([`Outcome::Conflict`]). Table properties, and with them the ledger, are carried over.
    pub async fn commit_change(&self, table: &Table, change: Change) -> Result<Outcome, LakeError> {
        let (_, catalog_swap) = self.catalog.current().await?;
        swap::commit(&catalog_swap, table, change).await
    }

    /// Writes rows (in `table`'s Arrow schema) as data files of `table`'s default spec, sorted by
    /// `sort_columns`, rolling over at `target_file_size` bytes (the table's property when `None`).
    pub async fn write_data_files(
        &self,
        table: &Table,
        batches: &[arrow_array::RecordBatch],
        sort_columns: &[&str],
        file_prefix: &str,
        target_file_size: Option<usize>,
    ) -> Result<Vec<iceberg::spec::DataFile>, LakeError> {
        writer::write_data_files(table, batches, sort_columns, file_prefix, target_file_size).await
    }

    /// Deletes data files no commit references (best effort; orphan cleanup removes what this misses).
    pub async fn delete_unreferenced(&self, table: &Table, files: &[iceberg::spec::DataFile]) {
        writer::delete(table, files).await
    }

    /// Takes (or extends) the lease `name` for `holder` for `ttl`, if no one else holds it: one per catalog,
    /// for work that must never run twice at once (maintenance).
    pub async fn try_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool, LakeError> {
        let (_, catalog_swap) = self.catalog.current().await?;
        let now = chrono::Utc::now().timestamp_millis();
        catalog_swap.try_lease(name, holder, now, now.saturating_add(ttl.as_millis() as i64)).await
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), LakeError> {
        let (_, catalog_swap) = self.catalog.current().await?;
        catalog_swap.release_lease(name, holder).await
    }

    /// The table of retired sources (the migration ledger).
    pub fn retired_target(&self) -> &TableTarget {
        &self.retired
    }

    /// Retires the finished ones among `candidates` ([`retired`]): their rows go to the migration ledger,
    /// their keys leave the records table's watermarks.
    pub async fn retire(&self, candidates: Vec<RetiredSource>) -> Result<RetireReport, LakeError> {
        retired::retire(&self.catalog, &self.records, (&self.dead_letters, &self.staging), &self.retired, self.policy, candidates).await
    }

    /// The retired source `source`, if it is.
    pub async fn retired_source(&self, source: &str) -> Result<Option<RetiredSource>, LakeError> {
        Ok(retired::read_all(&self.catalog, &self.retired).await?.remove(source))
    }

    /// Every retired source.
    pub async fn retired_sources(&self) -> Result<Vec<RetiredSource>, LakeError> {
        let mut all: Vec<RetiredSource> = retired::read_all(&self.catalog, &self.retired).await?.into_values().collect();
        all.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(all)
    }
}
