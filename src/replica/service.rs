//! Replication as the running app does it: the replica opened on first use, one round at a time (the
//! `ReplicateLake` timer, or `serve`'s own loop), and the last round's outcome kept for `health`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use super::error::ReplicaError;
use super::replicate::{ReplicaConfig, ReplicationReport, Replicator, Source};
use crate::lake::Lake;

/// How a round ended, for `health`.
#[derive(Debug, Clone)]
struct LastRound {
    at: DateTime<Utc>,
    outcome: Result<ReplicationReport, String>,
}

/// The app's replication: configured, opened lazily, its last round remembered.
pub struct ReplicaService {
    lake: Lake,
    config: ReplicaConfig,
    /// Lag above which `health` says degraded.
    max_lag: Duration,
    replicator: OnceCell<Replicator>,
    /// One round at a time in this process (the replica's lease keeps other processes out).
    running: AsyncMutex<()>,
    last: Mutex<Option<LastRound>>,
}

impl std::fmt::Debug for ReplicaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaService").field("replica", &self.config.location).finish_non_exhaustive()
    }
}

impl ReplicaService {
    pub fn new(lake: Lake, config: ReplicaConfig, max_lag: Duration) -> Self {
        Self { lake, config, max_lag, replicator: OnceCell::new(), running: AsyncMutex::new(()), last: Mutex::new(None) }
    }

    /// One round (the replica opened first if it is not yet).
    pub async fn round(&self) -> Result<ReplicationReport, ReplicaError> {
        let _one = self.running.lock().await;
        let outcome = match self.replicator.get_or_try_init(|| Replicator::open(Source::lake(&self.lake), &self.config)).await {
            Ok(replicator) => replicator.round().await,
            Err(e) => Err(e),
        };
        let remembered = match &outcome {
            Ok(report) => Ok(report.clone()),
            Err(e) => Err(e.to_string()),
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(LastRound { at: Utc::now(), outcome: remembered });
        outcome
    }

    /// Rounds every `every` until the process ends; failures are logged (by the round) and retried.
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.round().await {
                    tracing::warn!(error = %e, retryable = e.is_retryable(), "Replication round failed; the next one tries again.");
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// What `health` shows, and whether the replica is within its lag: the lag at the last round plus the
    /// time since it (a replica no round has reached for a while is as far behind as that).
    pub fn health(&self, now: DateTime<Utc>) -> (bool, serde_json::Value) {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let max = self.max_lag.as_secs_f64();
        let Some(last) = last else {
            return (true, json!({"replica": self.config.location, "status": "no round yet", "max_lag_seconds": max}));
        };
        let since = (now - last.at).num_milliseconds().max(0) as f64 / 1000.0;
        match last.outcome {
            Ok(report) => {
                let lag = if report.lag_seconds() > 0.0 || report.failed() { report.lag_seconds() + since } else { 0.0 };
                let stale = since > max;
                let ok = lag <= max && !stale;
                let failures: Vec<_> = report.tables.iter().filter_map(|t| t.error.as_ref().map(|e| json!({"table": t.table, "error": e}))).collect();
                (
                    ok,
                    json!({
                        "replica": report.replica,
                        "status": if ok { "ok" } else if stale { "no round lately" } else { "behind" },
                        "lag_seconds": lag,
                        "max_lag_seconds": max,
                        "last_round_seconds_ago": since,
                        "tables": report.tables.iter().map(|t| json!({"table": t.table, "primary_snapshot": t.primary_snapshot, "replica_snapshot": t.replica_snapshot, "lag_seconds": t.lag_seconds})).collect::<Vec<_>>(),
                        "failures": failures,
                    }),
                )
            }
            Err(error) => (
                since <= max,
                json!({"replica": self.config.location, "status": "failing", "error": error, "last_round_seconds_ago": since, "max_lag_seconds": max}),
            ),
        }
    }
}
