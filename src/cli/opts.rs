//! The command line's flags: global options (the lake, Azure, the backends), each command's own, and the
//! option groups several commands share (the cache, the API, sizing, maintenance).

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};

use super::backends;
use crate::app::QueryOptions;
use crate::cache::{RedisCacheConfig, RedisSignIn};
use crate::enrich::IncompletePolicy;
use crate::functions::api::ApiConfig;
use crate::functions::payload::eventhub::EventDataType;
use crate::functions::routes::DEFAULT_MAX_INVOCATION_BYTES;
use crate::identity::IdentitySettings;
use crate::lake::{CatalogAuth, CatalogType, LakeConfig, RestSettings, Secret};
use crate::query::QueryServiceConfig;
use crate::storage::{AzureAuth, AzureSettings};

pub const MIB: usize = 1024 * 1024;

#[derive(Debug, Parser)]
#[command(name = "sentiment-lake", version, about = "Iceberg data tier for financial sentiment (Azure Functions custom handler and CLI)")]
pub struct Opts {
    #[command(flatten)]
    pub lake: LakeArgs,
    /// What to do with records that arrive without analysis fields.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_INCOMPLETE", value_enum, default_value_t = IncompletePolicy::default())]
    pub incomplete: IncompletePolicy,
    /// During the transition (dual-write), also write every ingested batch's rows to the legacy store in
    /// its per-ticker Parquet layout: a directory or an `abfss://` location. Migrations are never written
    /// back.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DUAL_WRITE")]
    pub dual_write: Option<String>,
    #[command(flatten)]
    pub backends: backends::BackendArgs,
    /// Log as JSON lines (default when running under the Functions host).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LakeArgs {
    /// Warehouse: a directory, file:// URL, or abfss://<container>@<account>.dfs.core.windows.net/<path>.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_WAREHOUSE", default_value = "./warehouse")]
    pub warehouse: String,
    /// `sql` (iceberg's SQL catalog in SQLite or PostgreSQL) or `rest` (an Iceberg REST catalog: Nessie,
    /// Polaris, Lakekeeper, ...).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_TYPE", value_enum, default_value_t = CatalogType::Sql)]
    pub catalog_type: CatalogType,
    /// SQL catalog URI (defaults to a SQLite file inside a local warehouse), or with `--catalog-type rest`
    /// the REST catalog's base URL, the part before `/v1/` (`http://host:19120/iceberg` for Nessie).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_URI")]
    pub catalog_uri: Option<String>,
    /// REST catalog: the prefix its routes are under (`/v1/{prefix}/...`), unless its /v1/config says one.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_PREFIX")]
    pub catalog_prefix: Option<String>,
    /// REST catalog: the warehouse to ask its /v1/config for (a name or location, as the server knows it).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_WAREHOUSE")]
    pub catalog_warehouse: Option<String>,
    /// REST catalog: a bearer token (never printed).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_TOKEN", hide_env_values = true)]
    pub catalog_token: Option<Secret>,
    /// REST catalog: OAuth2 client credentials `client_id:client_secret`, exchanged at {uri}/v1/oauth/tokens
    /// for a token that is renewed before it expires (never printed).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_CREDENTIAL", hide_env_values = true)]
    pub catalog_credential: Option<Secret>,
    /// REST catalog: the SQL database maintenance leases live in (PostgreSQL when instances share the
    /// warehouse); defaults to a SQLite file inside a local warehouse.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_LEASE_URI", hide_env_values = true)]
    pub lease_uri: Option<String>,
    /// How to sign in to the catalog database: `uri` (its own credentials) or `entra` (the URI's user with an
    /// Entra token of the managed identity as password, renewed before it expires: Azure Database for PostgreSQL).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_AUTH", value_enum, default_value_t = CatalogAuth::Uri)]
    pub catalog_auth: CatalogAuth,
    /// Catalog name stored in the SQL catalog (other engines must open it with the same name).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_CATALOG_NAME", default_value = LakeConfig::DEFAULT_CATALOG_NAME)]
    pub catalog_name: String,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_NAMESPACE", default_value = LakeConfig::DEFAULT_NAMESPACE)]
    pub namespace: String,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_TABLE", default_value = LakeConfig::DEFAULT_TABLE)]
    pub table: String,
    #[arg(long, global = true, env = "SENTIMENT_LAKE_DEAD_LETTER_TABLE", default_value = LakeConfig::DEFAULT_DEAD_LETTER_TABLE)]
    pub dead_letter_table: String,
    /// How a new records table is partitioned (an existing table keeps its own spec): `seed` is
    /// day(event_timestamp), ticker, source_system; see docs/maintenance.md for the layout study.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_LAYOUT", value_enum, default_value_t = crate::schema::Layout::default())]
    pub layout: crate::schema::Layout,
    /// The migration ledger: legacy files fully migrated, kept out of the records table's watermarks.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_RETIRED_TABLE", default_value = LakeConfig::DEFAULT_RETIRED_TABLE)]
    pub retired_table: String,
    /// One row per commit and source profiling what it committed (docs/quality.md).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_QUALITY_TABLE", default_value = LakeConfig::DEFAULT_QUALITY_TABLE)]
    pub quality_table: String,
    #[command(flatten)]
    pub azure: AzureArgs,
    /// Staged data (MiB, as stored) one commit pass reads; a larger backlog commits in several snapshots.
    /// A pass holds roughly 4-6 times this in memory (decoded rows plus the writer).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_COMMIT_PASS_MB", default_value_t = 64)]
    pub commit_pass_mb: u64,
    /// How long a gap in a source's sequence numbers may last before the watermark moves past it.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_GAP_GRACE_SECS", default_value_t = 300)]
    pub gap_grace_secs: u64,
    /// Commits leave the rollup table to another process (`rollup repair`, the maintenance timer) instead
    /// of rolling up what they added themselves.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_NO_ROLLUP_FOLLOW")]
    pub no_rollup_follow: bool,
    /// Commits do not profile what they commit into the quality table (docs/quality.md): the drift signal
    /// and the dashboard's quality panel then have nothing to show.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_NO_QUALITY_PROFILE")]
    pub no_quality_profile: bool,
    /// A rollup rebuild keeps minute rows for this many days before it (0: for all history); older
    /// minutes are answered from raw rows, hours and days from the rollup whatever their age.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_ROLLUP_MINUTE_DAYS", default_value_t = crate::lake::rollup::DEFAULT_MINUTE_DAYS)]
    pub rollup_minute_days: u32,
}

impl LakeArgs {
    pub fn config(&self) -> LakeConfig {
        let mut config = LakeConfig::local(&self.warehouse);
        config.commit_policy.pass.max_bytes = self.commit_pass_mb.max(1) * MIB as u64;
        config.commit_policy.pass.gap_grace = Duration::from_secs(self.gap_grace_secs);
        config.catalog_type = self.catalog_type;
        config.catalog_uri = self.catalog_uri.clone();
        config.rest = RestSettings {
            prefix: self.catalog_prefix.clone(),
            warehouse: self.catalog_warehouse.clone(),
            token: self.catalog_token.clone(),
            credential: self.catalog_credential.clone(),
        };
        config.lease_uri = self.lease_uri.clone();
        config.catalog_name = self.catalog_name.clone();
        config.catalog_auth = self.catalog_auth;
        config.namespace = self.namespace.clone();
        config.table = self.table.clone();
        config.dead_letter_table = self.dead_letter_table.clone();
        config.retired_table = self.retired_table.clone();
        config.quality_table = self.quality_table.clone();
        config.layout = self.layout;
        config.follow_rollups = !self.no_rollup_follow;
        config.profile_quality = !self.no_quality_profile;
        config.rollup_minute_days = (self.rollup_minute_days > 0).then_some(self.rollup_minute_days);
        config.storage.azure = self.azure.settings();
        config
    }
}

/// How to reach an Azure warehouse. The variable names are the ones Azure's SDKs and the Functions host
/// use, so an app's existing settings apply unchanged. Secrets are never printed (`--help` hides their values).
#[derive(Debug, Args)]
pub struct AzureArgs {
    /// Which credential to use; `auto` takes the first configured of: connection string, account key, SAS,
    /// service principal, workload identity, the platform's managed identity (when the Functions host's
    /// IDENTITY_ENDPOINT is set), then whichever of `az login` and the VM's managed identity answers. The
    /// Entra credential also signs in to the catalog database and the cache when they use Entra.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_AZURE_AUTH", value_enum, default_value_t = AzureAuth::Auto)]
    pub azure_auth: AzureAuth,
    #[arg(long, global = true, env = "AZURE_STORAGE_CONNECTION_STRING", hide_env_values = true)]
    pub azure_storage_connection_string: Option<String>,
    #[arg(long, global = true, env = "AZURE_STORAGE_ACCOUNT_KEY", hide_env_values = true)]
    pub azure_storage_account_key: Option<String>,
    #[arg(long, global = true, env = "AZURE_STORAGE_SAS_TOKEN", hide_env_values = true)]
    pub azure_storage_sas_token: Option<String>,
    /// Service principal or workload identity client id, or the user-assigned managed identity to use.
    #[arg(long, global = true, env = "AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,
    #[arg(long, global = true, env = "AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,
    #[arg(long, global = true, env = "AZURE_CLIENT_SECRET", hide_env_values = true)]
    pub azure_client_secret: Option<String>,
    #[arg(long, global = true, env = "AZURE_FEDERATED_TOKEN_FILE")]
    pub azure_federated_token_file: Option<String>,
    #[arg(long, global = true, env = "AZURE_AUTHORITY_HOST")]
    pub azure_authority_host: Option<String>,
    /// Blob endpoint of the storage account (Azurite, a private endpoint, a sovereign cloud).
    #[arg(long, global = true, env = "SENTIMENT_LAKE_AZURE_BLOB_ENDPOINT")]
    pub azure_blob_endpoint: Option<String>,
    /// PEM root certificate to trust besides the system's, for that endpoint and for token requests.
    #[arg(long, global = true, env = "SENTIMENT_LAKE_AZURE_CA_FILE")]
    pub azure_ca_file: Option<String>,
}

impl AzureArgs {
    fn settings(&self) -> AzureSettings {
        AzureSettings {
            auth: self.azure_auth,
            connection_string: self.azure_storage_connection_string.clone(),
            account_key: self.azure_storage_account_key.clone(),
            sas_token: self.azure_storage_sas_token.clone(),
            identity: IdentitySettings {
                client_id: self.azure_client_id.clone(),
                tenant_id: self.azure_tenant_id.clone(),
                client_secret: self.azure_client_secret.clone(),
                federated_token_file: self.azure_federated_token_file.clone(),
                authority_host: self.azure_authority_host.clone(),
                ca_file: None,
            },
            blob_endpoint: self.azure_blob_endpoint.clone(),
            ca_file: self.azure_ca_file.clone(),
            resolved: Default::default(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the custom-handler protocol (what the Functions host starts), committing on an interval.
    Serve(Box<ServeArgs>),
    /// Ingest an NDJSON file or JSON array through the Event Hubs pipeline, then commit.
    Ingest {
        file: PathBuf,
        /// Only stage; leave the commit to a running `serve` or a later `commit`.
        #[arg(long)]
        no_commit: bool,
    },
    /// Commit everything staged now.
    Commit,
    /// One maintenance run: compaction, manifest rewrite, snapshot expiry, orphan cleanup (reported only,
    /// unless --delete-orphans), then the table's health. Never runs twice at once (a lease).
    Maintain(MaintainArgs),
    /// The records table's health: files per partition, small files, snapshots, manifests, bytes, the age
    /// of the last commit, and warnings.
    Health,
    /// Compare legacy Parquet files with the table (counts per ticker and day, missing and extra ids, scores);
    /// exits non-zero on any difference.
    Reconcile {
        #[arg(required = true)]
        paths: Vec<String>,
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// The rules file the migration used.
        #[arg(long, conflicts_with = "mapping")]
        rules: Option<PathBuf>,
    },
    /// Migrate legacy Parquet files (files, directories or abfss:// prefixes) into the table, then commit.
    /// Running it again, or after a crash, commits nothing twice.
    Migrate {
        #[arg(required = true)]
        paths: Vec<String>,
        /// A JSON mapping file naming columns for every file of the run (see docs/migration.md).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// A JSON rules file: globs over the files' paths, each with the mapping its files take, so that
        /// exports of different layouts migrate in one run (see docs/migration.md). A rule that matches no
        /// file is an error.
        #[arg(long, conflicts_with = "mapping")]
        rules: Option<PathBuf>,
        /// Show what a run would do, file by file (layout inferred and its evidence, sample rows before and
        /// after mapping, dead letters to expect, what needs a rule), reading footers and a sample only;
        /// stage and commit nothing. Exits non-zero when a file needs a rule or cannot be read.
        #[arg(long)]
        plan: bool,
        /// Files migrated at once.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Only stage; leave the commit to a running `serve` or a later `commit` (no retirement, no
        /// verification).
        #[arg(long)]
        no_commit: bool,
        /// Skip reading the files again after the commit to verify the table against them.
        #[arg(long)]
        no_verify: bool,
        /// Where to write the JSON reports (one per file and one for the run, under `<run id>/`): a
        /// directory or an `abfss://` location.
        #[arg(long)]
        report: Option<String>,
        /// Skip (and count) rows whose (source_system, message_id) the table already holds for their
        /// ticker and day: for overlapping re-exports, or files holding rows the live writer also sent.
        /// Files go one at a time, each committed before the next is checked.
        #[arg(long, conflicts_with = "no_commit")]
        dedup_ids: bool,
        /// Migrate files this lake's dual-write wrote (refused otherwise: their rows are in the table).
        #[arg(long)]
        include_dual_write: bool,
    },
    /// Run the main job on generated data: synthetic events through the Event Hubs pipeline in host-sized
    /// batches across partitions, one commit, then a summary read back from the table.
    Demo {
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        #[arg(long, default_value_t = 4)]
        partitions: u64,
        #[arg(long, default_value_t = 100)]
        batch_size: u64,
    },
    /// Write generated events as NDJSON (for load tests and benchmarks).
    Generate {
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 50)]
        tickers: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Answer one API query from the command line, printing the same `{data, meta}` JSON as the HTTP API:
    /// `query timeseries 'ticker=AAPL&interval=hour&days=1'`.
    Query {
        /// tickers, timeseries, summary, entities, aspects, toxicity, intents or records.
        endpoint: String,
        /// The query string, as in the URL.
        #[arg(default_value = "")]
        params: String,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Point the records table back at an earlier snapshot of its lineage (an id, or the snapshot current at
    /// an instant), with the ingestion ledger as it was then: events replayed afterwards are committed again.
    /// See docs/time-travel.md.
    ///
    /// The ranges it takes out are awaited from a replay: newer entries of those sources wait until the
    /// replay is committed (docs/time-travel.md says how to replay). `--release <source>` stops awaiting one,
    /// when its events are gone for good.
    Rollback {
        /// A snapshot id (see `/api/sentiment/snapshots`) or an instant (RFC 3339 or YYYY-MM-DD).
        #[arg(long, required_unless_present = "release", conflicts_with = "release")]
        to: Option<String>,
        /// A source id (as `health` lists it under `awaiting_replay`) whose rolled-back range is no longer awaited.
        #[arg(long)]
        release: Option<String>,
    },
    /// Copy each new snapshot of the lake's tables (records with the ingestion ledger, dead letters, the
    /// migration ledger, the rollup) to a replica, in commit order, with every path in their metadata
    /// rewritten to the replica's, and register them in the replica's own catalog (docs/recovery.md).
    /// Incremental and resumable: a crash leaves the replica at its last complete state.
    Replicate {
        /// The replica: a directory, file:// URL or abfss:// location (another container or storage account,
        /// ideally in the paired region). Never the warehouse or a place inside it.
        #[arg(long = "to", env = "SENTIMENT_LAKE_REPLICA")]
        location: String,
        #[command(flatten)]
        replica: ReplicaArgs,
        /// Keep replicating, one round every this many seconds, until stopped (default: one round).
        #[arg(long)]
        every: Option<u64>,
    },
    /// Make the replica at `--warehouse` (with its own `--catalog-uri`) the primary: its tables are marked
    /// promoted, so no replication writes over them again, and the sequence number it holds per Event Hubs
    /// partition is printed: rewind the consumer group's checkpoints there (docs/recovery.md) and ingestion
    /// resumes exactly once.
    Promote,
    /// The monthly restore drill: restore the replica into a scratch place and compare it with the primary
    /// (`--warehouse`) at the snapshot the replica holds: rows per ticker and day, score checksums, ids,
    /// the ingestion ledger, the other tables' rows. Prints a PASS/FAIL table; exits non-zero on a FAIL.
    Drill {
        /// The replica: a directory, file:// URL or abfss:// location.
        #[arg(long, env = "SENTIMENT_LAKE_REPLICA")]
        replica: String,
        #[command(flatten)]
        access: ReplicaArgs,
        /// Where to restore (an empty place; default: a new directory under the system's temporary
        /// directory, removed afterwards).
        #[arg(long)]
        scratch: Option<String>,
        /// The scratch place's SQL catalog (default: SQLite inside a local scratch directory).
        #[arg(long)]
        scratch_catalog_uri: Option<String>,
    },
    /// Restore a replica into `--warehouse` (an empty location, with its own `--catalog-uri`): its tables are
    /// copied there with every path rewritten, moved back to `--snapshot` if given, and promoted.
    Restore {
        /// The replica: a directory, file:// URL or abfss:// location.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        replica: ReplicaArgs,
        /// A snapshot id of the replica's records table, an instant (RFC 3339 or YYYY-MM-DD: the snapshot
        /// current then), or a tag's name. Default: the replica's current state.
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// Name snapshots of the records table so that expiry keeps them (an audited month end, the state before
    /// a migration); replicas copy the tags.
    Tag {
        #[command(subcommand)]
        action: TagAction,
    },
    /// The dead-letter table: `replay` decodes dead letters again under today's rules and schema and commits
    /// those that now pass, each once (docs/dead-letters.md).
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// The rollup table the aggregate endpoints answer from (docs/rollups.md).
    Rollup {
        #[command(subcommand)]
        action: RollupAction,
    },
    /// Evolve the records table's schema.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Create the records table with the seed's schema and `--layout`'s partitioning: through Dremio
    /// (`CREATE TABLE IF NOT EXISTS` at `--dremio-table`) when `--writer dremio` is set, otherwise in the
    /// lake's catalog (SQL or REST), as every command does on first use. Prints the statement and the answer.
    CreateTable,
    /// Check warehouse, catalog, tables and (with --redis-url) the cache, and say what is wrong. With
    /// `--engine dremio`: the conformance check of a Dremio (connection, sign-in, the table's schema against
    /// the seed contract, a query, and an idempotent MERGE on a scratch table).
    Doctor {
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        sizing: SizingArgs,
        #[command(flatten)]
        limit: InvocationLimit,
        /// With `--engine dremio`: create the aggregate reflections matching the API's questions (on the
        /// records table and its rollup table) instead of only printing them.
        #[arg(long)]
        create_reflections: bool,
    },
    /// What one Functions instance holds in memory at worst (every partition on one instance) with
    /// host.json's Event Hubs limits, against the instance's memory; exits non-zero when it does not fit.
    Sizing {
        #[command(flatten)]
        sizing: SizingArgs,
        #[command(flatten)]
        limit: InvocationLimit,
    },
}

/// How the replica is reached (`replicate`, and `serve` with `--replica`).
#[derive(Debug, Clone, Args)]
pub struct ReplicaArgs {
    /// The replica's own SQL catalog (default: a SQLite file inside a local replica; a remote replica needs
    /// a PostgreSQL database of its own, in its region).
    #[arg(id = "replica_catalog_uri", long = "replica-catalog-uri", env = "SENTIMENT_LAKE_REPLICA_CATALOG_URI")]
    pub catalog_uri: Option<String>,
    /// The replica account's connection string, when its credential is not the warehouse's (another
    /// account's key); otherwise the warehouse's credential (an Entra identity with access to both) is used.
    #[arg(
        id = "replica_connection_string",
        long = "replica-connection-string",
        env = "SENTIMENT_LAKE_REPLICA_STORAGE_CONNECTION_STRING",
        hide_env_values = true
    )]
    pub connection_string: Option<String>,
    /// `health` says degraded when the replica lacks a commit older than this (the recovery point
    /// objective), or no round has run for this long.
    #[arg(id = "replica_max_lag_secs", long = "replica-max-lag-secs", env = "SENTIMENT_LAKE_REPLICA_MAX_LAG_SECS", default_value_t = 900)]
    pub max_lag_secs: u64,
    /// How long a replication round's lease lasts unless renewed: a replicator that dies keeps the next one
    /// waiting this long.
    #[arg(id = "replica_lease_secs", long = "replica-lease-secs", env = "SENTIMENT_LAKE_REPLICA_LEASE_SECS", default_value_t = crate::replica::replicate::DEFAULT_LEASE.as_secs())]
    pub lease_secs: u64,
}

/// The figures of the memory budget ([`crate::functions::sizing`]) that host.json does not hold.
#[derive(Debug, Clone, Args)]
pub struct SizingArgs {
    /// host.json with the Event Hubs limits (default: the Functions script root's, AzureWebJobsScriptRoot,
    /// else ./host.json).
    #[arg(long, env = "SENTIMENT_LAKE_HOST_JSON")]
    pub host_json: Option<PathBuf>,
    /// Event Hubs partitions: the most one instance can hold.
    #[arg(long, env = "SENTIMENT_LAKE_EVENTHUB_PARTITIONS")]
    pub partitions: Option<u64>,
    /// Instance memory, MiB (default: this process's cgroup limit).
    #[arg(long, env = "SENTIMENT_LAKE_INSTANCE_MEMORY_MB")]
    pub instance_memory_mb: Option<u64>,
    /// The largest event producers send, KB.
    #[arg(long, env = "SENTIMENT_LAKE_MAX_EVENT_KB", default_value_t = 64)]
    pub max_event_kb: u64,
}

/// `serve --max-invocation-mb`, for the commands that check the memory budget without serving.
#[derive(Debug, Clone, Args)]
pub struct InvocationLimit {
    /// Largest invocation body (MiB) the handler reads into memory (as `serve --max-invocation-mb`).
    #[arg(long, env = "SENTIMENT_LAKE_MAX_INVOCATION_MB", default_value_t = DEFAULT_MAX_INVOCATION_BYTES / MIB)]
    pub max_invocation_mb: usize,
}

impl SizingArgs {
    fn host_json(&self) -> Option<PathBuf> {
        self.host_json.clone().or_else(|| {
            let root = std::env::var_os("AzureWebJobsScriptRoot").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            Some(root.join("host.json")).filter(|p| p.is_file())
        })
    }

    /// The budget, or why it cannot be worked out (no host.json, no partition count, no memory limit).
    pub fn budget(&self, commit_pass_mb: u64, max_invocation_mb: usize) -> anyhow::Result<crate::functions::sizing::Budget> {
        use crate::functions::sizing::{cgroup_memory_limit, Budget, Deployment, EventHubLimits};
        let path = self.host_json().context("no host.json: pass --host-json")?;
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let hubs = EventHubLimits::from_host_json(&text).map_err(anyhow::Error::msg)?;
        let partitions = self.partitions.context("the partition count is unknown: pass --partitions (SENTIMENT_LAKE_EVENTHUB_PARTITIONS)")?;
        let instance_memory_mb = match self.instance_memory_mb {
            Some(mb) => mb,
            None => cgroup_memory_limit().map(|bytes| bytes / MIB as u64).context("the instance's memory is unknown: pass --instance-memory-mb")?,
        };
        Ok(Budget::new(
            hubs,
            Deployment {
                partitions: partitions.max(1),
                instance_memory_mb,
                max_event_kb: self.max_event_kb,
                commit_pass_mb,
                max_invocation_mb: max_invocation_mb.max(1) as u64,
            },
        ))
    }
}

#[derive(Debug, Subcommand)]
pub enum TagAction {
    /// Tag a snapshot (default: the current one). A tag is never moved.
    Create {
        name: String,
        /// A snapshot id, or an instant (RFC 3339 or YYYY-MM-DD): the snapshot current then.
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// The records table's tags, as JSON.
    List,
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// Decode the chosen dead letters' raw bytes again (after a producer fix, `schema add-column` or a
    /// relaxed rule such as `--incomplete enrich`) and commit those that now pass, exactly once: a dead
    /// letter is never replayed twice, and a redelivered original stays a duplicate. Prints what landed and
    /// what still fails, and why, as JSON.
    Replay {
        /// Only those refused by this rule (error class: decode, validation or incomplete).
        #[arg(long)]
        rule: Option<String>,
        /// Only those whose error names this field.
        #[arg(long)]
        field: Option<String>,
        /// Only those of this source (an Event Hubs partition id, a file's source id).
        #[arg(long = "source", id = "replay_source")]
        source: Option<String>,
        /// Only those dead-lettered at or after this instant (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Judge them again and report, committing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollupAction {
    /// Recompute the rollup rows from the raw rows and report every mismatch (exit code 1 if any).
    Verify {
        /// Only rows of periods inside `[from, to)` (RFC 3339); every row without.
        #[arg(long, requires = "to")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, requires = "from")]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Recreate the rollup from every live record (a table that had none, or one that cannot follow).
    Rebuild,
    /// Roll up the records commits not yet covered (what every commit does; after a crash between the
    /// two commits, or to catch up a rollup left behind).
    Repair,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SchemaAction {
    /// Add an optional column after the seed's 22: existing rows read it as null, records carrying a field
    /// of that name fill it (ingestion sees the new column within 30 s). See docs/time-travel.md.
    AddColumn {
        #[arg(long)]
        name: String,
        #[arg(long = "type", value_enum)]
        column_type: crate::schema::extension::ColumnType,
        /// A description kept in the table's schema.
        #[arg(long)]
        doc: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Redis for cached answers: redis://127.0.0.1:6379, rediss://<name>.<region>.redis.azure.net:10000
    /// (Azure Managed Redis) or rediss://:<key>@<name>.redis.cache.windows.net:6380. Without it every query
    /// goes to the engine.
    #[arg(long, env = "SENTIMENT_LAKE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How to sign in to Redis: `url` (the URL's password, if any) or `entra` (an Entra token of the
    /// process's identity, renewed before it expires; the user is the URL's or the token's object id).
    #[arg(long, env = "SENTIMENT_LAKE_REDIS_AUTH", value_enum, default_value_t = RedisAuth::Url)]
    pub redis_auth: RedisAuth,
    /// PEM CA certificate for a rediss:// server signed by a private CA (public CAs need nothing).
    #[arg(long, env = "SENTIMENT_LAKE_REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,
    /// Seconds an answer stays cached (it is only ever served for the snapshot it was computed at).
    #[arg(long, env = "SENTIMENT_LAKE_CACHE_TTL_SECS", default_value_t = 300)]
    pub cache_ttl_secs: u64,
    /// Seconds an answer for a past snapshot (`as_of`) stays cached; it never changes, so this only bounds
    /// memory.
    #[arg(long, env = "SENTIMENT_LAKE_CACHE_HISTORICAL_TTL_SECS", default_value_t = 86_400)]
    pub cache_historical_ttl_secs: u64,
    /// Longest wait for one Redis operation before answering from the engine instead.
    #[arg(long, env = "SENTIMENT_LAKE_CACHE_TIMEOUT_MS", default_value_t = 250)]
    pub cache_timeout_ms: u64,
    /// How long Redis is skipped after a failure.
    #[arg(long, env = "SENTIMENT_LAKE_CACHE_RETRY_AFTER_MS", default_value_t = 5_000)]
    pub cache_retry_after_ms: u64,
    /// Busiest tickers whose answers are precomputed after each commit (0: no warming).
    #[arg(long, env = "SENTIMENT_LAKE_WARM_TICKERS", default_value_t = 10)]
    pub warm_tickers: u32,
    /// Memory (MiB) all queries of the process may hold at once in the embedded engine; a query needing
    /// more is answered 503 instead of exhausting the instance.
    #[arg(long, env = "SENTIMENT_LAKE_QUERY_MEMORY_MB", default_value_t = 512)]
    pub query_memory_mb: usize,
    /// Engine queries computed at once (cache hits do not count); default two per core.
    #[arg(long, env = "SENTIMENT_LAKE_MAX_CONCURRENT_QUERIES")]
    pub max_concurrent_queries: Option<usize>,
    /// How long a query waits for an engine slot before it is answered 503 with Retry-After.
    #[arg(long, env = "SENTIMENT_LAKE_QUERY_QUEUE_WAIT_MS", default_value_t = 5000)]
    pub query_queue_wait_ms: u64,
    /// Answer aggregates (tickers, timeseries, summary, aspects, intents, entities) from the rollup table
    /// where it covers the table's snapshot (`auto`), or always from raw rows (`off`).
    #[arg(long, env = "SENTIMENT_LAKE_ROLLUPS", value_enum, default_value_t = RollupsArg::Auto)]
    pub rollups: RollupsArg,
    /// Whether answers include what is staged but not yet committed (`true`, within about a second of
    /// ingestion) unless a request says `fresh=`; `false` answers from the committed snapshot alone.
    #[arg(long, env = "SENTIMENT_LAKE_FRESH_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub fresh_reads: bool,
    /// Staged MiB above the snapshot an instance decodes for records and toxicity answers; beyond it (a
    /// committer stalled for long) answers leave the staged rows out and say so in `meta.freshness`.
    #[arg(long, env = "SENTIMENT_LAKE_TAIL_MAX_MB", default_value_t = 64)]
    pub tail_max_mb: u64,
}

/// See [`CacheArgs::rollups`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RollupsArg {
    Auto,
    Off,
}

/// See [`CacheArgs::redis_auth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisAuth {
    Url,
    Entra,
}

impl CacheArgs {
    pub fn options(&self, azure: &AzureSettings) -> anyhow::Result<QueryOptions> {
        let sign_in = match self.redis_auth {
            RedisAuth::Url => RedisSignIn::Url,
            RedisAuth::Entra => RedisSignIn::Entra(azure.entra_identity().context("--redis-auth entra")?),
        };
        Ok(QueryOptions {
            redis: self.redis_url.as_ref().map(|url| RedisCacheConfig {
                url: url.clone(),
                op_timeout: Duration::from_millis(self.cache_timeout_ms.max(1)),
                retry_after: Duration::from_millis(self.cache_retry_after_ms),
                ca_cert: self.redis_ca_cert.clone(),
                sign_in: sign_in.clone(),
            }),
            service: {
                let defaults = QueryServiceConfig::default();
                QueryServiceConfig {
                    ttl: Duration::from_secs(self.cache_ttl_secs.max(1)),
                    warm_tickers: self.warm_tickers,
                    historical_ttl: Duration::from_secs(self.cache_historical_ttl_secs.max(1)),
                    max_concurrent_queries: self.max_concurrent_queries.unwrap_or(defaults.max_concurrent_queries),
                    queue_wait: Duration::from_millis(self.query_queue_wait_ms),
                    rollups: match self.rollups {
                        RollupsArg::Auto => crate::query::RollupUse::Auto,
                        RollupsArg::Off => crate::query::RollupUse::Off,
                    },
                    fresh: self.fresh_reads,
                }
            },
            tail_max_bytes: self.tail_max_mb.saturating_mul(MIB as u64),
            engine_memory_bytes: self.query_memory_mb.max(1) * MIB,
            engine: Default::default(),
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Browser origins allowed to call the API (comma-separated, e.g. https://dash.example.com); none by default.
    #[arg(long, env = "SENTIMENT_LAKE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Sustained API requests per minute per client.
    #[arg(long, env = "SENTIMENT_LAKE_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once before the per-minute rate applies.
    #[arg(long, env = "SENTIMENT_LAKE_RATE_LIMIT_BURST", default_value_t = 60)]
    pub rate_limit_burst: u32,
    /// Longest time one API request may take (the Functions front end gives up at 230 s).
    #[arg(long, env = "SENTIMENT_LAKE_REQUEST_TIMEOUT_SECS", default_value_t = 25)]
    pub request_timeout_secs: u64,
}

impl ApiArgs {
    pub fn config(&self) -> anyhow::Result<ApiConfig> {
        let cors_origins = self
            .cors_origins
            .iter()
            .filter(|o| !o.trim().is_empty())
            .map(|o| HeaderValue::from_str(o.trim()).with_context(|| format!("CORS origin {o:?}")))
            .collect::<anyhow::Result<_>>()?;
        Ok(ApiConfig {
            cors_origins,
            requests_per_minute: NonZeroU32::new(self.rate_limit_per_minute).context("--rate-limit-per-minute must be positive")?,
            burst: NonZeroU32::new(self.rate_limit_burst).context("--rate-limit-burst must be positive")?,
            timeout: Duration::from_secs(self.request_timeout_secs.clamp(1, 229)),
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1; the host sets FUNCTIONS_CUSTOMHANDLER_PORT.
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT", default_value_t = 7072)]
    pub port: u16,
    /// How often staged data is committed (by the instance holding the commit lease). Answers include what
    /// is staged, so this sets file sizes and snapshot counts, not visibility (docs/freshness.md).
    #[arg(long, env = "SENTIMENT_LAKE_COMMIT_INTERVAL_SECS", default_value_t = 300)]
    pub commit_interval_secs: u64,
    /// Commit early once this many rows are staged.
    #[arg(long, env = "SENTIMENT_LAKE_COMMIT_THRESHOLD_ROWS", default_value_t = 200_000)]
    pub commit_threshold_rows: usize,
    /// `name` of the eventHubTrigger binding in function.json.
    #[arg(long, env = "SENTIMENT_LAKE_EVENTHUB_BINDING", default_value = "events")]
    pub eventhub_binding: String,
    /// `dataType` of the eventHubTrigger binding.
    #[arg(long, env = "SENTIMENT_LAKE_EVENTHUB_DATA_TYPE", value_enum, default_value_t = EventDataType::String)]
    pub eventhub_data_type: EventDataType,
    /// Namespace used in source ids when the host omits it.
    #[arg(long, env = "EventHubConnection__fullyQualifiedNamespace", default_value = "unknown-namespace")]
    pub eventhub_namespace: String,
    /// Event hub used in source ids when the host omits it.
    #[arg(long, env = "EVENTHUB_NAME", default_value = "unknown-hub")]
    pub eventhub_name: String,
    /// Largest invocation body (MiB) read into memory. Decoding holds about twice this at its peak; larger
    /// invocations are streamed to the quarantine and acknowledged, never retried forever.
    #[arg(long, env = "SENTIMENT_LAKE_MAX_INVOCATION_MB", default_value_t = DEFAULT_MAX_INVOCATION_BYTES / MIB)]
    pub max_invocation_mb: usize,
    /// The only place `MigrateBlob` migrates uploads from (abfss://<container>@<account>.dfs.core.windows.net[/<prefix>]);
    /// an Event Grid event naming any other blob is quarantined. Without it, any blob the identity can read.
    #[arg(long, env = "SENTIMENT_LAKE_LEGACY_LOCATION")]
    pub legacy_location: Option<String>,
    /// What `GET /api/doctor` checks the memory budget with.
    #[command(flatten)]
    pub sizing: SizingArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub maintenance: MaintainArgs,
    /// A replica the `ReplicateLake` timer keeps up to date (docs/recovery.md).
    #[arg(long, env = "SENTIMENT_LAKE_REPLICA")]
    pub replica: Option<String>,
    #[command(flatten)]
    pub replica_access: ReplicaArgs,
    /// Also replicate from `serve` itself, one round every this many seconds (outside Functions, where
    /// no timer calls `ReplicateLake`).
    #[arg(long, env = "SENTIMENT_LAKE_REPLICA_EVERY_SECS")]
    pub replica_every_secs: Option<u64>,
}

/// What a maintenance run does (the `maintain` command and the `MaintainTable` timer function).
#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Size compaction writes files at; files below 75 % of it are candidates.
    #[arg(long, env = "SENTIMENT_LAKE_COMPACT_TARGET_MB", default_value_t = 128)]
    pub compact_target_mb: u64,
    /// Candidates a partition needs before it is compacted.
    #[arg(long, env = "SENTIMENT_LAKE_COMPACT_MIN_FILES", default_value_t = 5)]
    pub compact_min_files: usize,
    /// Input one run compacts at most; the next run takes the rest.
    #[arg(long, env = "SENTIMENT_LAKE_COMPACT_MAX_INPUT_MB", default_value_t = 1024)]
    pub compact_max_input_mb: u64,
    #[arg(long, env = "SENTIMENT_LAKE_NO_COMPACTION")]
    pub no_compaction: bool,
    /// Rewrite the data manifests into one per spec once the current snapshot has more than this many.
    #[arg(long, env = "SENTIMENT_LAKE_REWRITE_MANIFESTS_ABOVE", default_value_t = 100)]
    pub rewrite_manifests_above: usize,
    /// Snapshots older than this expire (the table's `history.expire.max-snapshot-age-ms` wins).
    #[arg(long, env = "SENTIMENT_LAKE_EXPIRE_AFTER_HOURS", default_value_t = 5 * 24)]
    pub expire_after_hours: u64,
    /// Snapshots always kept, however old (the table's `history.expire.min-snapshots-to-keep` wins).
    #[arg(long, env = "SENTIMENT_LAKE_KEEP_SNAPSHOTS", default_value_t = 10)]
    pub keep_snapshots: usize,
    /// Snapshots kept at most, however young (the table's `sentiment-lake.history.max-snapshots` wins).
    #[arg(long, env = "SENTIMENT_LAKE_MAX_SNAPSHOTS", default_value_t = crate::maintain::expire::DEFAULT_MAX_SNAPSHOTS)]
    pub max_snapshots: usize,
    #[arg(long, env = "SENTIMENT_LAKE_NO_EXPIRY")]
    pub no_expiry: bool,
    /// Unreferenced files younger than this are never orphans (a commit may be in flight).
    #[arg(long, env = "SENTIMENT_LAKE_ORPHAN_AGE_HOURS", default_value_t = 72)]
    pub orphan_age_hours: u64,
    /// Delete orphan files; without it they are only reported.
    #[arg(long, env = "SENTIMENT_LAKE_DELETE_ORPHANS")]
    pub delete_orphans: bool,
    #[arg(long, env = "SENTIMENT_LAKE_NO_ORPHAN_CLEANUP")]
    pub no_orphan_cleanup: bool,
    /// How long a run holds its lease; a run that dies keeps others out for at most this long.
    #[arg(long, env = "SENTIMENT_LAKE_MAINTAIN_LEASE_SECS", default_value_t = 900)]
    pub lease_secs: u64,
}

impl MaintainArgs {
    pub fn policy(&self) -> crate::maintain::MaintenancePolicy {
        use crate::maintain::{compact::CompactionPolicy, expire::ExpiryPolicy, orphans::OrphanPolicy};
        crate::maintain::MaintenancePolicy {
            compaction: (!self.no_compaction).then(|| CompactionPolicy {
                target_file_bytes: self.compact_target_mb.max(1) << 20,
                min_input_files: self.compact_min_files.max(2),
                max_input_bytes: self.compact_max_input_mb.max(1) << 20,
                ..CompactionPolicy::default()
            }),
            rewrite_manifests_above: Some(self.rewrite_manifests_above),
            expiry: (!self.no_expiry).then(|| ExpiryPolicy {
                max_age: Duration::from_secs(self.expire_after_hours * 3600),
                min_snapshots: self.keep_snapshots.max(1),
                max_snapshots: self.max_snapshots.max(1),
            }),
            orphans: (!self.no_orphan_cleanup)
                .then(|| OrphanPolicy { older_than: Duration::from_secs(self.orphan_age_hours * 3600), delete: self.delete_orphans }),
            lease: Duration::from_secs(self.lease_secs.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn every_command_parses_without_clashing_argument_ids() {
        // Flattened argument groups share one namespace per command: a clash makes a command unusable.
        Opts::command().debug_assert();
    }

    #[test]
    fn the_replicas_catalog_is_never_the_warehouses() {
        let opts = Opts::try_parse_from([
            "sentiment-lake",
            "--catalog-uri",
            "postgres://primary/catalog",
            "replicate",
            "--to",
            "/replica",
            "--replica-catalog-uri",
            "sqlite:///replica/catalog.db",
        ])
        .unwrap();
        assert_eq!(opts.lake.catalog_uri.as_deref(), Some("postgres://primary/catalog"));
        let Command::Replicate { location, replica, every } = opts.command else { panic!("replicate") };
        assert_eq!((location.as_str(), replica.catalog_uri.as_deref(), every), ("/replica", Some("sqlite:///replica/catalog.db"), None));
        let opts = Opts::try_parse_from(["sentiment-lake", "--catalog-uri", "postgres://primary/catalog", "replicate", "--to", "/replica"]).unwrap();
        let Command::Replicate { replica, .. } = opts.command else { panic!("replicate") };
        assert_eq!(replica.catalog_uri, None, "the warehouse's catalog is not taken for the replica's");
        let opts = Opts::try_parse_from(["sentiment-lake", "serve", "--replica", "/replica", "--lease-secs", "60"]).unwrap();
        let Command::Serve(serve) = opts.command else { panic!("serve") };
        assert_eq!((serve.maintenance.lease_secs, serve.replica_access.lease_secs), (60, crate::replica::replicate::DEFAULT_LEASE.as_secs()));
    }
}
