//! Wiring: the lake, the query service and the committer, the HTTP server, and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{QueryCache, RedisCache, RedisCacheConfig};
use crate::committer::{Committer, OnCommit};
use crate::dremio::sql::TablePath;
use crate::dremio::FlightSqlClient;
use crate::engine::{DremioEngine, EmbeddedEngine, QueryEngine, SnapshotSource, DEFAULT_MEMORY_LIMIT};
use crate::functions::api::ApiConfig;
use crate::functions::routes::{app, AppState, EventHubBinding};
use crate::ingest::Pipeline;
use crate::lake::{CommitReport, Lake, TableKind};
use crate::query::{QueryService, QueryServiceConfig};

/// After a commit that added rows, precomputes popular answers in the background: the commit is done and
/// its caller should not wait for dashboards' queries.
pub fn warm_after_commit(lake: &Lake, query: Arc<QueryService>) -> OnCommit {
    let records = lake.target(TableKind::Records).name.clone();
    Arc::new(move |reports: &[CommitReport]| {
        if !reports.iter().any(|r| r.table == records && r.rows_committed > 0) {
            return;
        }
        let query = query.clone();
        tokio::spawn(async move {
            match query.warm().await {
                Ok(Some(answers)) => tracing::debug!(answers, "Cache warmed after commit."),
                Ok(None) => {
                    tracing::debug!("A warming run is already going; this commit's is skipped.")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Cache warming failed; answers will be computed on demand.")
                }
            }
        });
    })
}

/// Options of the `serve` mode.
#[derive(Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub commit_interval: Duration,
    pub commit_threshold_rows: usize,
    pub binding: EventHubBinding,
    pub pipeline: Pipeline,
    pub query: QueryOptions,
    pub api: ApiConfig,
    /// Largest invocation body read into memory; larger ones are stored in the quarantine.
    pub max_invocation_bytes: usize,
    /// What the `MaintainTable` timer function runs, and who runs it.
    pub maintenance: crate::maintain::MaintenancePolicy,
    pub maintenance_backend: crate::maintain::MaintenanceBackend,
    /// Where `MigrateBlob` accepts legacy uploads from (`None`: any blob the identity can read).
    pub legacy_location: Option<crate::storage::AzureLocation>,
    /// `doctor` with the app's settings, for `GET /api/doctor`.
    pub doctor: Option<crate::functions::routes::Doctor>,
    /// Where the `ReplicateLake` timer (and the loop, every `replica_every`) copies the tables, if anywhere.
    pub replica: Option<ReplicaOptions>,
}

/// The app's replica: where, the lag `health` tolerates, and how often `serve` itself replicates.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub config: crate::replica::ReplicaConfig,
    pub max_lag: Duration,
    /// `None`: only the `ReplicateLake` timer runs rounds.
    pub every: Option<Duration>,
}

/// Dremio, as the query engine, the records writer or the maintainer uses it.
pub struct DremioSetup {
    pub client: Arc<FlightSqlClient>,
    /// The records table as Dremio names it.
    pub table: TablePath,
    /// The warehouse root as Dremio names it (a filesystem source over the same storage): where the
    /// writer's MERGE reads its staged files. Needed only by `--writer dremio`.
    pub warehouse: Option<TablePath>,
    pub catalog: crate::maintain::dremio::DremioCatalog,
    /// Read the current snapshot id from this lake's catalog instead of Dremio's `table_history` (the table
    /// is shared through a catalog both use, e.g. Nessie's REST API).
    pub snapshots_from_catalog: bool,
    /// Query `AT SNAPSHOT` (off only for Flight SQL servers without time travel).
    pub pin_snapshots: bool,
    pub compact_window: Duration,
}

/// Which engine answers queries.
#[derive(Clone, Default)]
pub enum QueryEngineChoice {
    #[default]
    Embedded,
    Dremio(Arc<DremioSetup>),
}

impl std::fmt::Debug for QueryEngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryEngineChoice::Embedded => f.write_str("Embedded"),
            QueryEngineChoice::Dremio(setup) => write!(f, "Dremio({})", setup.table),
        }
    }
}

/// How queries are answered: the cache (Redis URL, TTL), warming and the engine's memory.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    pub redis: Option<RedisCacheConfig>,
    pub service: QueryServiceConfig,
    /// Staged bytes above the snapshot the embedded engine decodes for records answers.
    pub tail_max_bytes: u64,
    pub engine_memory_bytes: usize,
    pub engine: QueryEngineChoice,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            redis: None,
            service: QueryServiceConfig::default(),
            tail_max_bytes: crate::lake::tail::DEFAULT_MAX_TAIL_BYTES,
            engine_memory_bytes: DEFAULT_MEMORY_LIMIT,
            engine: QueryEngineChoice::Embedded,
        }
    }
}

/// The query service over the lake's records table with the configured engine.
pub fn query_service(lake: &Lake, options: &QueryOptions) -> anyhow::Result<Arc<QueryService>> {
    let ident = lake.target(TableKind::Records).ident.clone();
    let engine: Arc<dyn QueryEngine> = match &options.engine {
        QueryEngineChoice::Embedded => {
            let engine = EmbeddedEngine::new(lake.catalog(), ident, options.engine_memory_bytes)?.with_pointer(lake.metadata_pointer());
            let tail = lake.tail_reader().with_max_bytes(options.tail_max_bytes);
            Arc::new(engine.with_rollups(lake.target(TableKind::Rollup).ident.clone()).with_tail(tail))
        }
        QueryEngineChoice::Dremio(dremio) => {
            let snapshots =
                if dremio.snapshots_from_catalog { SnapshotSource::Catalog { catalog: lake.catalog(), ident } } else { SnapshotSource::Dremio };
            Arc::new(DremioEngine::new(dremio.client.clone(), dremio.table.clone(), snapshots, dremio.pin_snapshots))
        }
    };
    let cache = match &options.redis {
        Some(config) => Some(Arc::new(RedisCache::new(config.clone())?) as Arc<dyn QueryCache>),
        None => None,
    };
    Ok(Arc::new(QueryService::new(engine, cache, options.service.clone())))
}

/// The app once its lake is open.
struct Running {
    router: axum::Router,
    committer: Committer,
    loop_task: tokio::task::JoinHandle<()>,
}

fn start(lake: Lake, options: &ServeOptions) -> anyhow::Result<Running> {
    let query = query_service(&lake, &options.query)?;
    let committer = Committer::new(lake.clone(), options.commit_threshold_rows, Some(warm_after_commit(&lake, query.clone())));
    let loop_task = committer.spawn(options.commit_interval);
    let signal_policy =
        crate::maintain::signals::SignalPolicy { interval: options.commit_interval, gap_grace: lake.policy().pass.gap_grace, ..Default::default() };
    // The data's signals are exported every interval (at least every minute), whether or not anyone asks
    // `health`: the alert rules read the gauges and log lines. Runs for the life of the process.
    drop(tokio::spawn({
        let lake = lake.clone();
        async move {
            loop {
                tokio::time::sleep(signal_policy.interval.clamp(Duration::from_secs(5), Duration::from_secs(60))).await;
                crate::maintain::signals::evaluate_and_export(&lake, &signal_policy).await;
            }
        }
    }));
    let replica = options.replica.as_ref().map(|r| {
        let service = Arc::new(crate::replica::ReplicaService::new(lake.clone(), r.config.clone(), r.max_lag));
        if let Some(every) = r.every {
            // Runs for the life of the process, as the committer's loop does.
            drop(service.clone().spawn(every));
        }
        service
    });
    let state = AppState {
        lake,
        pipeline: options.pipeline.clone(),
        binding: Arc::new(options.binding.clone()),
        committer: committer.clone(),
        query,
        max_invocation_bytes: options.max_invocation_bytes,
        maintenance: options.maintenance,
        maintenance_backend: options.maintenance_backend.clone(),
        legacy_location: options.legacy_location.clone(),
        doctor: options.doctor.clone(),
        replica,
        signals: signal_policy,
    };
    Ok(Running { router: app(state, &options.api), committer, loop_task })
}

impl ServeOptions {
    /// What a server needs that only says what is wrong (its configuration could not be used).
    pub fn waiting(addr: SocketAddr, doctor: Option<crate::functions::routes::Doctor>) -> Self {
        Self {
            addr,
            commit_interval: Duration::from_secs(300),
            commit_threshold_rows: usize::MAX,
            binding: EventHubBinding::default(),
            pipeline: Pipeline::default(),
            query: QueryOptions::default(),
            api: ApiConfig::default(),
            max_invocation_bytes: crate::functions::routes::DEFAULT_MAX_INVOCATION_BYTES,
            maintenance: Default::default(),
            maintenance_backend: Default::default(),
            legacy_location: None,
            doctor,
            replica: None,
        }
    }
}

/// Longest wait between two attempts to open the lake.
const OPEN_RETRY_MAX: Duration = Duration::from_secs(30);

/// Serves the custom-handler protocol until SIGINT/SIGTERM, then commits what is staged and exits.
///
/// The port is bound before the lake is opened: the host waits a limited time for it (30 s on Flex
/// Consumption), and a catalog that cannot be reached yet (a firewall, roles still propagating, a refused
/// sign-in) must not leave every function without an answer. Until `open` succeeds (tried again with a
/// growing pause), [`starting`](crate::functions::routes::starting) answers with the reason.
pub async fn serve<F, Fut>(open: F, options: ServeOptions) -> anyhow::Result<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Lake>> + Send,
{
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        interval_s = options.commit_interval.as_secs(),
        cache = ?options.query.redis,
        "Custom handler listening."
    );
    let running: Arc<std::sync::OnceLock<Running>> = Arc::default();
    let reason = Arc::new(std::sync::Mutex::new("opening the lake".to_string()));
    let opener = {
        let (running, reason, options) = (running.clone(), reason.clone(), options.clone());
        tokio::spawn(async move {
            let mut pause = Duration::from_secs(1);
            loop {
                let lake = match open().await {
                    Ok(lake) => lake,
                    Err(e) => {
                        let why = format!("{e:#}");
                        tracing::error!(error = %why, retry_in_s = pause.as_secs(), "The lake cannot be opened; functions answer 503 until it can.");
                        *reason.lock().unwrap_or_else(|e| e.into_inner()) = why;
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(OPEN_RETRY_MAX);
                        continue;
                    }
                };
                // Opened: what fails now is configuration (the cache's URL, the engine), which retrying
                // cannot mend; it is said until the app is restarted with settings that work.
                match start(lake, &options) {
                    Ok(app) => {
                        let _ = running.set(app);
                        tracing::info!("Lake open; every function answers.");
                    }
                    Err(e) => {
                        let why = format!("the configuration cannot be used: {e:#}");
                        tracing::error!(error = %why, "The app cannot start; functions answer 503 with the reason.");
                        *reason.lock().unwrap_or_else(|e| e.into_inner()) = why;
                    }
                }
                return;
            }
        })
    };
    let waiting = crate::functions::routes::starting(options.doctor.clone(), reason);
    let dispatch = {
        let running = running.clone();
        move |request: axum::extract::Request| {
            let router = running.get().map_or_else(|| waiting.clone(), |app| app.router.clone());
            async move {
                use tower::ServiceExt;
                match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    };
    let router = axum::Router::new().fallback(dispatch).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    opener.abort();
    if let Some(app) = running.get() {
        app.loop_task.abort();
        let reports = app.committer.commit_now().await?;
        app.committer.release_lease().await;
        tracing::info!(rows = reports.iter().map(|r| r.rows_committed).sum::<usize>(), "Final commit on shutdown done.");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
