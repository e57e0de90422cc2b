//! The embedded lake: warehouse storage, the SQL catalog (SQLite by default) or an Iceberg REST catalog,
//! the sentiment and dead-letter tables, staging and the committer.
//!
//! Data enters only as [`Segment`]s through [`Lake::stage`] and reaches the tables only through
//! [`Lake::commit`]. This module knows nothing about Event Hubs or JSON: a source is an opaque id with
//! ordered sequence numbers.
//!
//! Its folders, in the order data flows (each uses only those before it): [`stage`] (segments staged,
//! the ledger, the next pass planned), [`files`] (rows written as data files), [`table`] (the next table
//! state: snapshot, manifests), [`catalog`] (where tables live and how a state is published), then
//! [`commit`] (passes that take staged entries to the table exactly once) and [`history`] (rollback,
//! added columns), then [`rollup`] (the rollup table kept in step with each commit) and [`tail`] (what is
//! staged above a snapshot, read by answers). [`Lake`] here opens them and hands out their parts; none of them imports it.

pub mod catalog;
pub mod commit;
mod error;
pub mod files;
pub mod history;
pub mod rollup;
pub mod stage;
pub mod table;
pub mod tail;
mod target;

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::Schema;
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

pub use self::catalog::{CatalogAuth, CatalogType, MetadataPointer, Outcome, RenewingCatalog, RestSettings, Secret};
use self::catalog::{CatalogSettings, RestEndpoint};
use self::commit::retired;
pub use self::commit::{CommitPolicy, CommitReport, ReplayCommit, ReplayRows, RetireReport, RetiredSource, StagedWriter};
pub use self::error::LakeError;
pub use self::history::{RollbackReport, SourceReset, EXTRA_COLUMNS_TTL};
pub use self::stage::{
    commit_landed, summary_watermarks, Awaited, Awaiting, CommittedState, EntryKind, Listing, PassBounds, Quarantine, QuarantineRecord, Segment,
    StagedEntry, Staging, StagingArea, StoredEnvelope, Watermarks, AWAITING_PROPERTY, COMMIT_ID_PROPERTY, LEDGER_FORMAT_PROPERTY, PARTIAL_SUMMARY,
    RECENT_COMMITS_PROPERTY, SEQUENCE_COLUMN, WATERMARKS_PROPERTY,
};
pub use self::stage::{Replayed, REPLAYED_PROPERTY};
pub use self::table::Change;
pub use self::target::{TableHandle, TableKind, TableTarget};
use crate::quality::Profiled;
use crate::schema::{self, dead_letter};
use crate::storage::{Location, StorageSettings, Warehouse};

/// How to open the lake.
#[derive(Clone)]
pub struct LakeConfig {
    /// Directory, `file://` or `abfss://` URL.
    pub warehouse: String,
    /// Which kind of catalog `catalog_uri` names.
    pub catalog_type: CatalogType,
    /// SQL catalog URI (defaults to `<warehouse>/catalog.db` for local warehouses), or the REST catalog's
    /// base URL (the part before `/v1/`; required).
    pub catalog_uri: Option<String>,
    /// A REST catalog's prefix, warehouse and sign-in (secrets redacted in `Debug`).
    pub rest: RestSettings,
    /// With a REST catalog, the SQL database maintenance leases live in; defaults to
    /// `<warehouse>/catalog.db` for local warehouses (a remote warehouse needs a shared PostgreSQL one).
    pub lease_uri: Option<String>,
    /// Catalog name recorded in the SQL catalog's rows (PyIceberg must open it with the same name).
    pub catalog_name: String,
    /// How the catalog database is signed in to (the URI's own credentials, or an Entra token).
    pub catalog_auth: CatalogAuth,
    pub namespace: String,
    pub table: String,
    pub dead_letter_table: String,
    /// Sources finished for good (migrated legacy files), kept out of the records table's watermarks.
    pub retired_table: String,
    /// One row per commit and source profiling what it committed (`crate::quality`).
    pub quality_table: String,
    /// How to reach a remote warehouse (credentials, endpoint).
    pub storage: StorageSettings,
    pub commit_policy: CommitPolicy,
    /// How the records table is partitioned when this lake creates it.
    pub layout: schema::Layout,
    /// Each records commit rolls up what it added ([`rollup::follow`]); off, the rollup table is left to
    /// maintenance or `rollup repair` (answers take what it lacks from raw rows meanwhile).
    pub follow_rollups: bool,
    /// Each commit profiles what it committed into the quality table (`crate::quality`); off, the table
    /// is still created but gets no rows, and the drift signal has nothing to judge.
    pub profile_quality: bool,
    /// A rollup rebuild keeps minute rows for the periods from this many days before it on (none: every
    /// period); older minutes are answered from raw rows ([`rollup::cover`]).
    pub rollup_minute_days: Option<u32>,
}

const RECORD_SORT: &[&str] = &[schema::column::TICKER, schema::column::EVENT_TIMESTAMP];

/// How long a commit call waits for its quality rows to be appended before giving up on them.
pub const QUALITY_APPEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Row groups of 16k rows: a one-ticker read of a month of hour rows skips the other tickers' groups.
const ROLLUP_PROPERTIES: &[(&str, &str)] = &[(files::ROW_GROUP_LIMIT_PROPERTY, "16384")];

impl std::fmt::Debug for LakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakeConfig")
            .field("warehouse", &self.warehouse)
            .field("catalog_type", &self.catalog_type)
            .field("rest", &self.rest)
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
    pub const DEFAULT_QUALITY_TABLE: &'static str = "sentiment_quality";

    pub fn local(warehouse: impl Into<String>) -> Self {
        Self {
            warehouse: warehouse.into(),
            catalog_type: CatalogType::default(),
            catalog_uri: None,
            rest: RestSettings::default(),
            lease_uri: None,
            catalog_name: Self::DEFAULT_CATALOG_NAME.into(),
            catalog_auth: CatalogAuth::default(),
            namespace: Self::DEFAULT_NAMESPACE.into(),
            table: Self::DEFAULT_TABLE.into(),
            dead_letter_table: Self::DEFAULT_DEAD_LETTER_TABLE.into(),
            retired_table: Self::DEFAULT_RETIRED_TABLE.into(),
            quality_table: Self::DEFAULT_QUALITY_TABLE.into(),
            storage: StorageSettings::default(),
            commit_policy: CommitPolicy::default(),
            layout: schema::Layout::default(),
            follow_rollups: true,
            profile_quality: true,
            rollup_minute_days: Some(rollup::DEFAULT_MINUTE_DAYS),
        }
    }
}

/// The rollup table beside a records table: `<records>_rollup`.
pub fn rollup_table_name(records: &str) -> String {
    format!("{records}_rollup")
}

/// The tables a lake opened with `config` keeps, as [`Lake::replicated_tables`] lists them (for a place
/// that is not opened as a lake: a replica being restored from).
pub fn replicated_idents(config: &LakeConfig) -> Vec<TableIdent> {
    let namespace = NamespaceIdent::new(config.namespace.clone());
    [config.table.clone(), config.dead_letter_table.clone(), config.retired_table.clone(), rollup_table_name(&config.table)]
        .into_iter()
        .map(|name| TableIdent::new(namespace.clone(), name))
        .collect()
}

/// The SQL database the lake connects to (the catalog's, or with a REST catalog the leases'), and the REST
/// catalog if there is one.
fn catalog_endpoints(config: &LakeConfig, warehouse: &Warehouse) -> Result<(String, Option<RestEndpoint>), LakeError> {
    let (uri, rest, flag) = match config.catalog_type {
        CatalogType::Sql => {
            if config.lease_uri.is_some() {
                tracing::warn!("--lease-uri is for REST catalogs; the SQL catalog keeps its leases in its own database");
            }
            let uri = config
                .catalog_uri
                .clone()
                .or_else(|| warehouse.default_catalog_uri())
                .ok_or_else(|| LakeError::Config("a remote warehouse needs --catalog-uri (the PostgreSQL catalog its instances share)".into()))?;
            (uri, None, "--catalog-uri")
        }
        CatalogType::Rest => {
            let rest_uri = config.catalog_uri.clone().ok_or_else(|| {
                LakeError::Config("--catalog-type rest needs --catalog-uri, the REST catalog's base URL (the part before /v1/)".into())
            })?;
            let uri = config.lease_uri.clone().or_else(|| warehouse.default_catalog_uri()).ok_or_else(|| {
                LakeError::Config(
                    "a remote warehouse with a REST catalog needs --lease-uri (the PostgreSQL database its instances share leases in)".into(),
                )
            })?;
            (uri, Some(RestEndpoint { uri: rest_uri, settings: config.rest.clone() }), "--lease-uri")
        }
    };
    if !warehouse.location().is_local() && uri.starts_with("sqlite:") {
        // Every Functions instance would keep its own database file, so each would have its own table (or
        // its own leases).
        return Err(LakeError::Config(format!(
            "a SQLite database cannot serve the remote warehouse {}: its instances must share one ({flag} postgres://...)",
            warehouse.url()
        )));
    }
    Ok((uri, rest))
}

/// The fields (by full name, nested ones too) whose id in `created` differs from the one in `requested`,
/// as "`name` requested → created", in the order of the requested ids.
fn renumbered(requested: &Schema, created: &Schema) -> Vec<String> {
    let mut ids: Vec<(&i32, &String)> = requested.field_id_to_name_map().iter().collect();
    ids.sort();
    ids.into_iter()
        .filter_map(|(&id, name)| match created.field_id_by_name(name) {
            Some(theirs) if theirs == id => None,
            Some(theirs) => Some(format!("`{name}` {id} → {theirs}")),
            None => Some(format!("`{name}` {id} → missing")),
        })
        .collect()
}

/// Whether the namespace exists. Asked with a GET, not `namespace_exists`: some REST servers answer no
/// HEAD requests (lakana answers 405).
async fn namespace_present(catalog: &dyn Catalog, namespace: &NamespaceIdent) -> Result<bool, LakeError> {
    match catalog.get_namespace(namespace).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == iceberg::ErrorKind::NamespaceNotFound => Ok(false),
        Err(e) => Err(LakeError::iceberg(format!("namespace {}", namespace.join(".")))(e)),
    }
}

/// The table, or `None` when the catalog has no such table (loaded, not asked with `table_exists`: see
/// [`namespace_present`]).
async fn load_if_present(catalog: &dyn Catalog, ident: &TableIdent) -> Result<Option<Table>, LakeError> {
    match catalog.load_table(ident).await {
        Ok(table) => Ok(Some(table)),
        Err(e) if matches!(e.kind(), iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound) => Ok(None),
        Err(e) => Err(LakeError::iceberg(format!("table {ident}"))(e)),
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
    rollup: Arc<TableTarget>,
    quality: Arc<TableTarget>,
    policy: CommitPolicy,
    /// The tables are in a REST catalog (which creates them its own way, see [`Lake::ensure_table`]).
    rest_catalog: bool,
    /// `--writer dremio`: records are merged by Dremio instead of committed here.
    records_writer: Option<Arc<dyn StagedWriter>>,
    /// The records table's added columns, as ingestion last looked them up.
    extras: history::ExtraColumnsCache,
    follow_rollups: bool,
    rollup_minute_days: Option<u32>,
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
        let (uri, rest) = catalog_endpoints(config, &warehouse)?;
        let catalog = Arc::new(
            RenewingCatalog::connect(CatalogSettings {
                uri,
                rest,
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
        if !namespace_present(catalog.as_ref(), &namespace).await? {
            // Another process may create it between the check and here; that is fine.
            if let Err(e) = catalog.create_namespace(&namespace, HashMap::new()).await {
                if !namespace_present(catalog.as_ref(), &namespace).await? {
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
            staging: StagingArea::of(&config.catalog_name, &namespace.clone().inner(), name),
            properties: &[],
            profiled: None,
        };
        let records = TableTarget {
            profiled: config.profile_quality.then_some(Profiled::Records),
            ..target(&config.table, schema::sentiment_schema(), schema::sentiment_arrow_schema(), config.layout.partition_spec(), RECORD_SORT)
        };
        let dead_letters = TableTarget {
            profiled: config.profile_quality.then_some(Profiled::DeadLetters),
            ..target(
                &config.dead_letter_table,
                dead_letter::dead_letter_schema(),
                dead_letter::dead_letter_arrow_schema(),
                dead_letter::dead_letter_partition_spec(),
                &[],
            )
        };
        let quality = target(
            &config.quality_table,
            crate::quality::quality_schema(),
            crate::quality::quality_arrow_schema(),
            crate::quality::quality_partition_spec(),
            crate::quality::table::SORT_COLUMNS,
        );
        let retired =
            target(&config.retired_table, retired::retired_schema(), retired::retired_arrow_schema(), retired::retired_partition_spec(), &[]);
        let rollup = TableTarget {
            properties: ROLLUP_PROPERTIES,
            ..target(
                &rollup_table_name(&config.table),
                crate::rollup::table::rollup_schema(),
                crate::rollup::table::rollup_arrow_schema(),
                crate::rollup::table::rollup_partition_spec(),
                crate::rollup::table::SORT_COLUMNS,
            )
        };
        let lake = Self {
            rest_catalog: config.catalog_type == CatalogType::Rest,
            storage: Arc::new(config.storage.clone()),
            staging: Staging::new(warehouse.store().clone()),
            quarantine: Quarantine::new(warehouse.store().clone()),
            warehouse,
            catalog,
            records: Arc::new(records),
            dead_letters: Arc::new(dead_letters),
            retired: Arc::new(retired),
            rollup: Arc::new(rollup),
            quality: Arc::new(quality),
            policy: config.commit_policy,
            records_writer: None,
            extras: Default::default(),
            follow_rollups: config.follow_rollups,
            rollup_minute_days: config.rollup_minute_days,
        };
        for target in [&lake.records, &lake.dead_letters, &lake.retired, &lake.rollup, &lake.quality] {
            lake.ensure_table(target).await?;
        }
        Ok(lake)
    }

    async fn ensure_table(&self, target: &TableTarget) -> Result<(), LakeError> {
        let in_catalog = || LakeError::iceberg(format!("table {}", target.ident));
        let incompatible = |detail| LakeError::IncompatibleTable { table: target.name.clone(), detail };
        let table = match load_if_present(self.catalog.as_ref(), &target.ident).await? {
            Some(table) => table,
            None => {
                let mut properties = vec![("write.parquet.compression-codec".to_string(), "zstd".to_string())];
                properties.extend(target.properties.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                if self.rest_catalog {
                    // A REST server picks the format version of a new table itself unless asked.
                    properties.push(("format-version".to_string(), "2".to_string()));
                }
                let creation = TableCreation::builder()
                    .name(target.name.clone())
                    .schema(target.schema.clone())
                    .partition_spec(target.partition_spec.clone())
                    .properties(properties)
                    .build();
                match self.catalog.create_table(target.ident.namespace(), creation).await {
                    Ok(table) => {
                        // The contract is the seed's field ids; a catalog that numbers the columns its own
                        // way on creation (REST servers may) made a table other tools will misread.
                        let renumbered = renumbered(&target.schema, table.metadata().current_schema());
                        if !renumbered.is_empty() {
                            return Err(incompatible(format!(
                                "the catalog created it with other field ids than the schema it was given ({}); \
                                 drop the table and create it with a catalog that keeps the ids",
                                renumbered.join(", ")
                            )));
                        }
                        table
                    }
                    // Lost a creation race with another process: use theirs.
                    Err(e) => match load_if_present(self.catalog.as_ref(), &target.ident).await? {
                        Some(table) => table,
                        None => return Err(in_catalog()(e)),
                    },
                }
            }
        };
        if table.metadata().format_version() != iceberg::spec::FormatVersion::V2 {
            return Err(incompatible(format!("format version {} (the writer commits v2 tables)", table.metadata().format_version())));
        }
        let missing: Vec<(String, String)> = target
            .properties
            .iter()
            .filter(|(k, v)| table.metadata().properties().get(*k).map(String::as_str) != Some(*v))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !missing.is_empty() {
            // A table created by an earlier version. Another process setting them first is fine: next time.
            let handle = TableHandle { catalog: &self.catalog, target };
            if let Err(e) = handle.commit(&table, Change { properties: missing, ..Change::default() }).await {
                tracing::warn!(table = %target.name, error = %e, "Could not set the table's properties; its files keep the writer's defaults.");
            }
        }
        table::compat::check(&target.schema, table.metadata().current_schema()).map_err(incompatible)
    }

    /// Hands the records table's commits to another writer (`--writer dremio`: `crate::dremio::DremioWriter`);
    /// dead letters and the migration ledger stay with this lake's catalog.
    pub fn with_records_writer(mut self, writer: Arc<dyn StagedWriter>) -> Self {
        self.records_writer = Some(writer);
        self
    }

    /// One of the lake's tables in its catalog.
    pub fn handle(&self, kind: TableKind) -> TableHandle<'_> {
        TableHandle { catalog: &self.catalog, target: self.target(kind) }
    }

    /// Every table a replica copies, in its order: records (with the ingestion ledger in its properties),
    /// dead letters, the migration ledger, the rollup. Not the quality profiles: they describe this lake's
    /// commits, and a restored lake starts its own.
    pub fn replicated_tables(&self) -> Vec<TableIdent> {
        self.replicated_handles().into_iter().map(|h| h.target.ident.clone()).collect()
    }

    /// [`Lake::replicated_tables`] as handles, to change them (a promoted replica).
    pub fn replicated_handles(&self) -> Vec<TableHandle<'_>> {
        [&self.records, &self.dead_letters, &self.retired, &self.rollup]
            .into_iter()
            .map(|target| TableHandle { catalog: &self.catalog, target })
            .collect()
    }

    pub fn target(&self, kind: TableKind) -> &TableTarget {
        match kind {
            TableKind::Records => &self.records,
            TableKind::DeadLetters => &self.dead_letters,
            TableKind::Rollup => &self.rollup,
            TableKind::Quality => &self.quality,
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

    /// What tells a reader whether the table moved without loading it.
    pub fn metadata_pointer(&self) -> Arc<dyn MetadataPointer> {
        self.catalog.clone()
    }

    pub fn policy(&self) -> CommitPolicy {
        self.policy
    }

    pub fn quarantine(&self) -> &Quarantine {
        &self.quarantine
    }

    /// Durably stages a segment for a table (a range marker when it has no rows); returns its path.
    /// Records segments are summarised when `summarise` says so, for answers that include what is staged
    /// ([`tail`]; they read a segment without one from its rows).
    pub async fn stage(&self, kind: TableKind, segment: &Segment, summarise: bool) -> Result<String, LakeError> {
        self.staging.write(&self.target(kind).staging, segment, summarise && kind == TableKind::Records).await
    }

    /// Reads what is staged above the records table's snapshots, for answers that include it ([`tail`]).
    pub fn tail_reader(&self) -> tail::TailReader {
        tail::TailReader::new(self.staging.clone(), self.catalog.clone(), self.records.clone(), self.retired.clone(), self.policy.pass.gap_grace)
    }

    /// What is staged for a table and not yet committed.
    pub async fn pending(&self, kind: TableKind) -> Result<Listing, LakeError> {
        self.staging.list(&self.target(kind).staging).await
    }

    /// Commits everything committable, records first, then dead letters, then appends what they committed
    /// to the quality table ([`Lake::record_quality`]), also when a later pass or table failed.
    pub async fn commit(&self) -> Result<Vec<CommitReport>, LakeError> {
        let landed = std::sync::Mutex::new(commit::Landed::default());
        let committed = self.commit_tables(&landed).await;
        self.record_quality(landed.into_inner().unwrap_or_else(|e| e.into_inner())).await;
        committed
    }

    async fn commit_tables(&self, landed: &std::sync::Mutex<commit::Landed>) -> Result<Vec<CommitReport>, LakeError> {
        let mut reports: Vec<CommitReport> = Vec::with_capacity(2);
        for kind in [TableKind::Records, TableKind::DeadLetters] {
            let cx = commit::CommitContext {
                catalog: &self.catalog,
                staging: &self.staging,
                quarantine: &self.quarantine,
                target: self.target(kind),
                retired: &self.retired,
                policy: self.policy,
                warehouse: self.warehouse.store(),
                landed: Some(landed),
            };
            let committed = match (&self.records_writer, kind) {
                (Some(writer), TableKind::Records) => writer.commit_staged(&cx).await,
                _ => commit::commit_staged(&cx).await,
            };
            let report = committed.inspect_err(|e| crate::observability::CommitFailed { retryable: e.is_retryable() }.emit())?;
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
            // Also when this pass landed nothing: a follow cut short earlier (a crash between the two
            // commits) is caught up at the next commit tick, not only at the next commit.
            if kind == TableKind::Records && self.follow_rollups {
                self.follow_after_commit().await;
            }
        }
        Ok(reports)
    }

    /// Appends one quality row per source the commit call's passes committed rows, duplicates or dead
    /// letters of. Best effort, bounded in time ([`QUALITY_APPEND_TIMEOUT`], a few attempts): a failure is
    /// logged and counted and never fails or holds up the commit (whose rows are in); that profile is then
    /// missing from the table (the metrics still have it).
    async fn record_quality(&self, landed: commit::Landed) {
        let profiles = landed.profiles;
        if profiles.is_empty() {
            return;
        }
        let total = profiles.total();
        // A commit id always: a call that failed before any commit landed may still have dropped duplicates.
        let commit_id = landed.commit_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let profiled_at = chrono::Utc::now();
        let rows: Vec<crate::quality::QualityRow> = profiles
            .by_source
            .into_iter()
            .map(|(source, profile)| crate::quality::QualityRow {
                profiled_at,
                commit_id: commit_id.clone(),
                snapshot_id: landed.snapshot_id,
                source,
                profile,
            })
            .collect();
        let started = std::time::Instant::now();
        let policy = CommitPolicy { max_attempts: self.policy.max_attempts.min(3), ..self.policy };
        let appended =
            match tokio::time::timeout(QUALITY_APPEND_TIMEOUT, commit::append_quality(self.handle(TableKind::Quality), policy, &rows)).await {
                Ok(appended) => appended.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {QUALITY_APPEND_TIMEOUT:?}")),
            };
        crate::observability::QualityProfiled {
            sources: rows.len(),
            rows: total.rows,
            duplicates: total.duplicates,
            future_dated: total.future_dated,
            dead_letters_by_rule: &total.dead_letters_by_rule,
            dead_letters_by_field: &total.dead_letters_by_field,
            nulls: &total.nulls,
            lateness: total.lateness_points(),
            models: total.distributions.iter().map(|(key, d)| (key.model_label(), d.score_points(), d.magnitude_points())).collect(),
            elapsed: started.elapsed(),
            error: appended.as_ref().err().map(|e| e as &dyn std::fmt::Display),
        }
        .emit();
    }

    /// Rolls up what the records table's commits added. A failure here fails no commit: the rollup stays
    /// behind (answers take what it lacks from raw rows) and the next follow catches up.
    async fn follow_after_commit(&self) {
        let started = std::time::Instant::now();
        let followed = self.follow_rollups(rollup::FollowOptions { max_attempts: self.policy.max_attempts, ..self.follow_options() }).await;
        let report = followed.as_ref().ok().cloned().unwrap_or_default();
        crate::observability::RollupFollowed {
            appends: report.appends,
            rows: report.rows,
            rollup_rows: report.rollup_rows,
            folded_files: report.folded_files,
            rebuilt: report.rebuilt,
            moved_back_to: report.moved_back_to,
            behind: report.behind.as_deref(),
            elapsed: started.elapsed(),
            error: followed.as_ref().err().map(|e| e as &dyn std::fmt::Display),
        }
        .emit();
    }

    /// Brings the rollup table up to the records table ([`rollup::follow`]).
    pub async fn follow_rollups(&self, options: rollup::FollowOptions) -> Result<rollup::FollowReport, LakeError> {
        rollup::follow(self.handle(TableKind::Records), self.handle(TableKind::Rollup), options).await
    }

    /// The default follow bounds, with this lake's days of minute rows ([`LakeConfig::rollup_minute_days`]).
    pub fn follow_options(&self) -> rollup::FollowOptions {
        rollup::FollowOptions { minute_days: self.rollup_minute_days, ..Default::default() }
    }

    /// Recomputes the rollup table from every live record ([`rollup::rebuild`]).
    pub async fn rebuild_rollups(&self) -> Result<rollup::FollowReport, LakeError> {
        rollup::rebuild(self.handle(TableKind::Records), self.handle(TableKind::Rollup), self.policy.max_attempts, self.rollup_minute_days).await
    }

    /// Checks the rollup rows of `window` (all without one) against raw rows ([`rollup::verify`]).
    pub async fn verify_rollups(&self, window: Option<(i64, i64)>) -> Result<rollup::VerifyReport, LakeError> {
        rollup::verify(self.handle(TableKind::Records), self.handle(TableKind::Rollup), window).await
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
        let (_, publisher) = self.catalog.current().await?;
        catalog::commit(&publisher, table, change).await
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
        files::write_data_files(table, batches, sort_columns, file_prefix, target_file_size).await
    }

    /// Deletes data files no commit references (best effort; orphan cleanup removes what this misses).
    pub async fn delete_unreferenced(&self, table: &Table, files: &[iceberg::spec::DataFile]) {
        files::delete(table, files).await
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
        self.retired_among(&[source]).await
    }

    /// The first of `sources` that is retired, read in one pass over the migration ledger.
    pub async fn retired_among(&self, sources: &[&str]) -> Result<Option<RetiredSource>, LakeError> {
        let mut all = retired::read_all(&self.catalog, &self.retired).await?;
        Ok(sources.iter().find_map(|source| all.remove(*source)))
    }

    /// Takes out of the migration ledger the rows `forget` picks (a promoted replica's ledger rows whose
    /// file the replica's records do not hold whole); returns them.
    pub async fn forget_retired(&self, forget: impl Fn(&RetiredSource) -> bool) -> Result<Vec<RetiredSource>, LakeError> {
        retired::forget(&self.catalog, &self.retired, self.policy, forget).await
    }

    /// Every retired source.
    pub async fn retired_sources(&self) -> Result<Vec<RetiredSource>, LakeError> {
        let mut all: Vec<RetiredSource> = retired::read_all(&self.catalog, &self.retired).await?.into_values().collect();
        all.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(all)
    }

    /// Tags `snapshot_id` of a table as `name` (expiry keeps it; replicas copy it).
    pub async fn create_tag(&self, kind: TableKind, name: &str, snapshot_id: i64) -> Result<history::Tag, LakeError> {
        history::create_tag(self.handle(kind), self.policy.max_attempts, name, snapshot_id).await
    }

    /// Points the records table at `to` with the ingestion ledger as it was then (recorded by a tag naming
    /// it, or worked out from the lineage), nothing awaited, and the rollup following: a restored lake
    /// starting over from a past state. Returns that ledger.
    pub async fn reset_to(&self, to: i64) -> Result<Watermarks, LakeError> {
        let table = self.load(TableKind::Records).await?;
        let name = &self.records.name;
        let watermarks = match history::tagged_watermarks(table.metadata(), to) {
            Some(watermarks) => watermarks,
            None => history::watermarks_at(name, table.metadata(), to).map_err(|e| LakeError::Ledger {
                table: name.clone(),
                detail: format!("the ingestion ledger at snapshot {to} cannot be known ({e}); restore the latest state, or a tagged snapshot"),
            })?,
        };
        history::reset(self.handle(TableKind::Records), self.policy.max_attempts, to, &watermarks).await?;
        if self.follow_rollups {
            self.follow_after_commit().await;
        }
        Ok(watermarks)
    }

    /// Points `kind`'s `main` at `to`, an ancestor of its current snapshot, with the ledger as it was then
    /// ([`history::rollback`]).
    pub async fn rollback(&self, kind: TableKind, to: i64) -> Result<Option<RollbackReport>, LakeError> {
        let report = history::rollback(self.handle(kind), self.policy.max_attempts, to).await?;
        if kind == TableKind::Records && report.is_some() && self.follow_rollups {
            // The rollup follows the records table back (and answers stay right even before it does).
            self.follow_after_commit().await;
        }
        Ok(report)
    }

    /// Stops awaiting the replay of what a rollback took out of `source` ([`history::release_awaited`]).
    pub async fn release_awaited(&self, kind: TableKind, source: &str) -> Result<Option<Awaited>, LakeError> {
        history::release_awaited(self.handle(kind), self.policy.max_attempts, source).await
    }

    /// The records table's added columns (cached for [`EXTRA_COLUMNS_TTL`]).
    pub async fn extra_columns(&self) -> Result<Vec<crate::schema::extension::ExtraColumn>, LakeError> {
        history::extra_columns(self.handle(TableKind::Records), &self.extras).await
    }

    /// Adds the optional column `name` of `column_type` to the records table ([`history::add_column`]).
    pub async fn add_column(&self, name: &str, column_type: crate::schema::extension::ColumnType, doc: Option<&str>) -> Result<Schema, LakeError> {
        history::add_column(self.handle(TableKind::Records), &self.extras, self.policy.max_attempts, name, column_type, doc).await
    }

    /// The rows of the current snapshot of `kind` that `predicate` may hold, `columns` only (all when
    /// `None`), as they are read: files and row groups outside the predicate are skipped, rows inside it
    /// are the caller's to check. `None` when the table has no snapshot.
    pub async fn scan(
        &self,
        kind: TableKind,
        predicate: iceberg::expr::Predicate,
        columns: Option<&[&str]>,
    ) -> Result<Option<iceberg::scan::ArrowRecordBatchStream>, LakeError> {
        let table = self.load(kind).await?;
        let Some(snapshot) = table.metadata().current_snapshot_id() else { return Ok(None) };
        let mut scan = table.scan().snapshot_id(snapshot).with_filter(predicate);
        if let Some(columns) = columns {
            scan = scan.select(columns.iter().copied());
        }
        let scan = scan.build().map_err(LakeError::iceberg("planning a scan"))?;
        Ok(Some(scan.to_arrow().await.map_err(LakeError::iceberg("scanning"))?))
    }

    /// Passes every quality row profiled at or after `since` to `each`, one scanned batch at a time.
    pub async fn quality_rows(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        mut each: impl FnMut(crate::quality::QualityRow),
    ) -> Result<(), LakeError> {
        use futures::TryStreamExt;
        let since = iceberg::expr::Reference::new(crate::quality::table::column::PROFILED_AT)
            .greater_than_or_equal_to(iceberg::spec::Datum::timestamptz_micros(since.timestamp_micros()));
        let Some(mut batches) = self.scan(TableKind::Quality, since, None).await? else { return Ok(()) };
        while let Some(batch) = batches.try_next().await.map_err(LakeError::iceberg("reading the quality table"))? {
            let rows = crate::quality::table::read_batch(&batch)
                .map_err(|detail| LakeError::IncompatibleTable { table: self.quality.name.clone(), detail })?;
            rows.into_iter().for_each(&mut each);
        }
        Ok(())
    }

    /// Commits rows decoded again from dead letters, each dead letter once ([`commit::commit_replay`]),
    /// then brings the rollup up to them.
    pub async fn commit_replay(
        &self,
        parts: &[ReplayRows],
        others: &HashMap<String, Vec<i64>>,
        listed_against: &Replayed,
    ) -> Result<ReplayCommit, LakeError> {
        let report = commit::commit_replay(self.handle(TableKind::Records), self.policy, parts, others, listed_against).await?;
        if report.snapshot_id.is_some() && self.follow_rollups {
            self.follow_after_commit().await;
        }
        Ok(report)
    }
}
