//! Which engine answers queries, which writer commits records, who maintains the table, and how Dremio is
//! reached when any of them is Dremio.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::app::{DremioSetup, QueryEngineChoice};
use crate::dremio::sql::TablePath;
use crate::dremio::DremioWriter;
use crate::dremio::{DremioAuth, DremioConfig, FlightSqlClient};
use crate::lake::{Lake, LakeConfig};
use crate::maintain::dremio::DremioCatalog;
use crate::maintain::{DremioMaintainer, MaintenanceBackend};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// DataFusion over the Iceberg table, in this process.
    #[default]
    Embedded,
    /// Dremio over Arrow Flight SQL.
    Dremio,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WriterKind {
    /// This process commits to the catalog (SQL or REST) with the exactly-once ledger.
    #[default]
    Direct,
    /// Dremio merges each staged batch into its table (idempotent by message_id).
    Dremio,
}

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Who answers queries.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_ENGINE", value_enum, default_value_t = EngineKind::Embedded)]
    pub engine: EngineKind,
    /// Who commits ingested records.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_WRITER", value_enum, default_value_t = WriterKind::Direct)]
    pub writer: WriterKind,
    /// Who compacts and expires the records table.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_MAINTENANCE", value_enum, default_value_t = EngineKind::Embedded)]
    pub maintenance: EngineKind,
    /// Dremio's Flight endpoint: grpc://host:32010, or grpc+tls://host:32010 with TLS on.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_URL")]
    pub dremio_url: Option<String>,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_USER")]
    pub dremio_user: Option<String>,
    /// The user's password (an app setting, e.g. a Key Vault reference; never logged).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_PASSWORD", hide_env_values = true)]
    pub dremio_password: Option<String>,
    /// A personal access token instead of a password (Dremio Enterprise and Cloud; never logged).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_TOKEN", hide_env_values = true)]
    pub dremio_token: Option<String>,
    /// The records table as Dremio names it; defaults to `nessie.<namespace>.<table>`.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_TABLE")]
    pub dremio_table: Option<String>,
    /// The kind of Dremio source holding the table: decides VACUUM's form and metadata refreshes.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_CATALOG", value_enum, default_value_t = DremioCatalog::Nessie)]
    pub dremio_catalog: DremioCatalog,
    /// The warehouse root as Dremio names it (a filesystem source over the same container), through which
    /// `--writer dremio` has Dremio read its staged files, e.g. `lake`.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_WAREHOUSE")]
    pub dremio_warehouse: Option<String>,
    /// Default schema of Dremio sessions (Dremio's `schema` header).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_SCHEMA")]
    pub dremio_schema: Option<String>,
    /// Workload management: Dremio's routing tag and queue for this service's queries.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_ROUTING_TAG")]
    pub dremio_routing_tag: Option<String>,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_ROUTING_QUEUE")]
    pub dremio_routing_queue: Option<String>,
    /// PEM file of extra trusted roots for grpc+tls (beside the system's).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_TLS_CA")]
    pub dremio_tls_ca: Option<String>,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub dremio_connect_timeout_secs: u64,
    /// Longest one statement may take, planning and reading its result together.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_QUERY_TIMEOUT_SECS", default_value_t = 120)]
    pub dremio_query_timeout_secs: u64,
    /// Further attempts after a transient failure.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_RETRIES", default_value_t = 3)]
    pub dremio_retries: u32,
    /// Read the current snapshot id from this lake's catalog (a catalog Dremio shares, such as Nessie's
    /// REST API) instead of asking Dremio.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_SNAPSHOTS_FROM_CATALOG")]
    pub dremio_snapshots_from_catalog: bool,
    /// Do not query `AT SNAPSHOT` (for Flight SQL servers without Dremio's time travel).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_NO_SNAPSHOT_PINNING")]
    pub dremio_no_snapshot_pinning: bool,
    /// Days back `OPTIMIZE` compacts (0: the whole table).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DREMIO_COMPACT_DAYS", default_value_t = 3)]
    pub dremio_compact_days: u64,
}

/// The choices, with one Dremio connection shared by all that use it.
#[derive(Clone, Default)]
pub struct Backends {
    pub engine: EngineKind,
    pub writer: WriterKind,
    pub maintenance: EngineKind,
    pub dremio: Option<Arc<DremioSetup>>,
}

/// A setting that is present and not empty (Terraform writes unused app settings as empty strings).
fn given(value: &Option<String>) -> Option<&String> {
    value.as_ref().filter(|v| !v.trim().is_empty())
}

impl BackendArgs {
    pub fn dremio_config(&self) -> anyhow::Result<Option<DremioConfig>> {
        let Some(url) = given(&self.dremio_url) else { return Ok(None) };
        let auth = match (given(&self.dremio_user), given(&self.dremio_password), given(&self.dremio_token)) {
            (_, _, Some(token)) => DremioAuth::Token(token.clone()),
            (Some(user), Some(password), None) => DremioAuth::Basic { user: user.clone(), password: password.clone() },
            (Some(_), None, None) => anyhow::bail!("--dremio-user needs --dremio-password (SENTIMENT_LAKE_DREMIO_PASSWORD)"),
            (None, _, None) => DremioAuth::None,
        };
        let mut config = DremioConfig::new(url.clone(), auth);
        config.tls_ca_file = given(&self.dremio_tls_ca).cloned();
        config.schema = given(&self.dremio_schema).cloned();
        config.routing_tag = given(&self.dremio_routing_tag).cloned();
        config.routing_queue = given(&self.dremio_routing_queue).cloned();
        config.connect_timeout = Duration::from_secs(self.dremio_connect_timeout_secs.max(1));
        config.query_timeout = Duration::from_secs(self.dremio_query_timeout_secs.max(1));
        config.max_retries = self.dremio_retries;
        Ok(Some(config))
    }

    /// Builds the choices; Dremio is connected (lazily) only when something uses it.
    pub fn backends(&self, lake: &LakeConfig) -> anyhow::Result<Backends> {
        let uses_dremio = self.engine == EngineKind::Dremio || self.writer == WriterKind::Dremio || self.maintenance == EngineKind::Dremio;
        let dremio = match self.dremio_config()? {
            Some(config) if uses_dremio => Some(Arc::new(self.setup(config, lake)?)),
            None if uses_dremio => anyhow::bail!("--engine, --writer or --maintenance dremio needs --dremio-url (SENTIMENT_LAKE_DREMIO_URL)"),
            _ => None,
        };
        if self.writer == WriterKind::Dremio && dremio.as_ref().is_some_and(|d| d.warehouse.is_none()) {
            anyhow::bail!("--writer dremio needs --dremio-warehouse: the Dremio source over the warehouse, through which Dremio reads staged files");
        }
        Ok(Backends { engine: self.engine, writer: self.writer, maintenance: self.maintenance, dremio })
    }

    pub fn setup(&self, config: DremioConfig, lake: &LakeConfig) -> anyhow::Result<DremioSetup> {
        let table = match given(&self.dremio_table) {
            Some(path) => TablePath::parse(path)?,
            None => TablePath::parse(&format!("nessie.{}.{}", lake.namespace, lake.table))?,
        };
        let warehouse = given(&self.dremio_warehouse).map(|w| TablePath::parse(w)).transpose()?;
        Ok(DremioSetup {
            client: Arc::new(FlightSqlClient::new(config).context("Dremio settings")?),
            table,
            warehouse,
            catalog: self.dremio_catalog,
            snapshots_from_catalog: self.dremio_snapshots_from_catalog,
            pin_snapshots: !self.dremio_no_snapshot_pinning,
            compact_window: Duration::from_secs(self.dremio_compact_days.saturating_mul(86_400)),
        })
    }
}

impl Backends {
    fn dremio(&self) -> anyhow::Result<&Arc<DremioSetup>> {
        self.dremio.as_ref().context("Dremio is not configured (--dremio-url)")
    }

    pub fn query_engine(&self) -> anyhow::Result<QueryEngineChoice> {
        Ok(match self.engine {
            EngineKind::Embedded => QueryEngineChoice::Embedded,
            EngineKind::Dremio => QueryEngineChoice::Dremio(self.dremio()?.clone()),
        })
    }

    /// The lake with its records writer as chosen.
    pub fn attach_writer(&self, lake: Lake) -> anyhow::Result<Lake> {
        Ok(match self.writer {
            WriterKind::Direct => lake,
            WriterKind::Dremio => {
                let dremio = self.dremio()?;
                let warehouse = dremio.warehouse.clone().context("--writer dremio needs --dremio-warehouse")?;
                lake.with_records_writer(std::sync::Arc::new(DremioWriter { client: dremio.client.clone(), table: dremio.table.clone(), warehouse }))
            }
        })
    }

    pub fn maintenance_backend(&self) -> anyhow::Result<MaintenanceBackend> {
        Ok(match self.maintenance {
            EngineKind::Embedded => MaintenanceBackend::Embedded,
            EngineKind::Dremio => {
                let dremio = self.dremio()?;
                MaintenanceBackend::Dremio(Arc::new(DremioMaintainer {
                    client: dremio.client.clone(),
                    table: dremio.table.clone(),
                    catalog: dremio.catalog,
                    compact_window: dremio.compact_window,
                }))
            }
        })
    }
}
