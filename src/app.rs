//! Wiring: shared state, the background committer, and the HTTP server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

use crate::cache::{QueryCache, RedisCache, RedisCacheConfig};
use crate::engine::EmbeddedEngine;
use crate::functions::api::ApiConfig;
use crate::functions::routes::{app, AppState, EventHubBinding};
use crate::ingest::Pipeline;
use crate::lake::{CommitReport, Lake, LakeError, TableKind};
use crate::query::{QueryService, QueryServiceConfig};

/// Decides when staged data becomes visible: every `interval`, or sooner once `threshold_rows` are
/// pending. Peers commit every 1–5 minutes; a commit per invocation would multiply snapshots and files.
#[derive(Clone)]
pub struct CommitterHandle {
    inner: Arc<CommitterInner>,
}

struct CommitterInner {
    lake: Lake,
    wake: Notify,
    pending_rows: AtomicUsize,
    threshold_rows: usize,
    // One pass at a time per process; other processes are handled by the commit protocol itself.
    running: Mutex<()>,
    /// Precomputes popular answers once new rows are visible.
    warmer: Option<Arc<QueryService>>,
}

impl CommitterHandle {
    pub fn new(lake: Lake, threshold_rows: usize, warmer: Option<Arc<QueryService>>) -> Self {
        Self {
            inner: Arc::new(CommitterInner {
                lake,
                wake: Notify::new(),
                pending_rows: AtomicUsize::new(0),
                threshold_rows: threshold_rows.max(1),
                running: Mutex::new(()),
                warmer,
            }),
        }
    }

    /// Called after each staged batch; wakes the committer early when the threshold is crossed.
    pub fn record_staged(&self, rows: usize) {
        let pending = self.inner.pending_rows.fetch_add(rows, Ordering::Relaxed) + rows;
        if pending >= self.inner.threshold_rows {
            self.inner.wake.notify_one();
        }
    }

    pub async fn commit_now(&self) -> Result<Vec<CommitReport>, LakeError> {
        let _guard = self.inner.running.lock().await;
        self.inner.pending_rows.store(0, Ordering::Relaxed);
        let reports = self.inner.lake.commit().await?;
        let records = &self.inner.lake.target(TableKind::Records).name;
        let new_rows = reports.iter().any(|r| &r.table == records && r.rows_committed > 0);
        if let (true, Some(warmer)) = (new_rows, &self.inner.warmer) {
            // In the background: the commit is done and its caller should not wait for dashboards' queries.
            let warmer = warmer.clone();
            tokio::spawn(async move {
                match warmer.warm().await {
                    Ok(answers) => tracing::debug!(answers, "Cache warmed after commit."),
                    Err(e) => tracing::warn!(error = %e, "Cache warming failed; answers will be computed on demand."),
                }
            });
        }
        Ok(reports)
    }

    /// Runs the interval/threshold loop until the task is dropped.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = handle.inner.wake.notified() => {}
                }
                if let Err(e) = handle.commit_now().await {
                    tracing::error!(error = %e, "Commit pass failed; staged data is kept for the next pass.");
                }
            }
        })
    }
}

/// Options of the `serve` mode.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    pub commit_interval: Duration,
    pub commit_threshold_rows: usize,
    pub binding: EventHubBinding,
    pub pipeline: Pipeline,
    pub query: QueryOptions,
    pub api: ApiConfig,
}

/// How queries are answered: the cache (Redis URL, TTL) and warming.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub redis: Option<RedisCacheConfig>,
    pub service: QueryServiceConfig,
}

/// The query service over the lake's records table with the embedded engine.
pub fn query_service(lake: &Lake, options: &QueryOptions) -> anyhow::Result<Arc<QueryService>> {
    let engine = Arc::new(EmbeddedEngine::new(lake.catalog(), lake.target(TableKind::Records).ident.clone()));
    let cache = match &options.redis {
        Some(config) => Some(Arc::new(RedisCache::new(config.clone())?) as Arc<dyn QueryCache>),
        None => None,
    };
    Ok(Arc::new(QueryService::new(engine, cache, options.service.clone())))
}

/// Serves the custom-handler protocol until SIGINT/SIGTERM, then commits what is staged and exits.
pub async fn serve(lake: Lake, options: ServeOptions) -> anyhow::Result<()> {
    let query = query_service(&lake, &options.query)?;
    let committer = CommitterHandle::new(lake.clone(), options.commit_threshold_rows, Some(query.clone()));
    let loop_task = committer.spawn(options.commit_interval);
    let state = AppState { lake, pipeline: options.pipeline, binding: Arc::new(options.binding), committer: committer.clone(), query };
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        interval_s = options.commit_interval.as_secs(),
        cache = ?options.query.redis,
        "Custom handler listening."
    );
    let router = app(state, &options.api).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    loop_task.abort();
    let reports = committer.commit_now().await?;
    tracing::info!(rows = reports.iter().map(|r| r.rows_committed).sum::<usize>(), "Final commit on shutdown done.");
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
