//! Replication as the running app does it: the replica opened on first use, one round at a time (the
//! `ReplicateLake` timer, or `serve`'s own loop), and the last round's outcome kept for `health`.

use std::collections::HashMap;
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
    /// The report, or the error with whether the next round can get past it.
    outcome: Result<ReplicationReport, (String, bool)>,
}

/// What `health` judges by.
#[derive(Debug, Default)]
struct Tracking {
    last: Option<LastRound>,
    /// Per table, when a round last brought it up to date without an error.
    succeeded: HashMap<String, DateTime<Utc>>,
}

/// The app's replication: configured, opened lazily, its rounds remembered.
pub struct ReplicaService {
    lake: Lake,
    config: ReplicaConfig,
    /// Lag above which `health` says degraded.
    max_lag: Duration,
    started: DateTime<Utc>,
    replicator: OnceCell<Replicator>,
    /// One round at a time in this process (the replica's lease keeps other processes out).
    running: AsyncMutex<()>,
    tracking: Mutex<Tracking>,
}

impl std::fmt::Debug for ReplicaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaService").field("replica", &self.config.location).finish_non_exhaustive()
    }
}

impl ReplicaService {
    pub fn new(lake: Lake, config: ReplicaConfig, max_lag: Duration) -> Self {
        Self { lake, config, max_lag, started: Utc::now(), replicator: OnceCell::new(), running: AsyncMutex::new(()), tracking: Mutex::default() }
    }

    /// One round (the replica opened first if it is not yet).
    pub async fn round(&self) -> Result<ReplicationReport, ReplicaError> {
        let _one = self.running.lock().await;
        let outcome = match self.replicator.get_or_try_init(|| async { Replicator::open(Source::lake(&self.lake)?, &self.config).await }).await {
            Ok(replicator) => replicator.round().await,
            Err(e) => Err(e),
        };
        let at = Utc::now();
        let mut tracking = self.tracking.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(report) = &outcome {
            for table in report.tables.iter().filter(|t| t.error.is_none()) {
                tracking.succeeded.insert(table.table.clone(), at);
            }
        }
        let remembered = match &outcome {
            Ok(report) => Ok(report.clone()),
            Err(e) => Err((e.to_string(), e.is_retryable())),
        };
        tracking.last = Some(LastRound { at, outcome: remembered });
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

    /// What `health` shows, and whether the replica is within its lag. Degraded when a table has not been
    /// brought up to date for longer than the allowed lag (a round that keeps failing, for any reason, is
    /// that), when the last round left a table further behind than that, or when it failed in a way the next
    /// round cannot get past by itself.
    pub fn health(&self, now: DateTime<Utc>) -> (bool, serde_json::Value) {
        let tracking = self.tracking.lock().unwrap_or_else(|e| e.into_inner());
        let max = self.max_lag.as_secs_f64();
        let seconds = |since: DateTime<Utc>| (now - since).num_milliseconds().max(0) as f64 / 1000.0;
        let Some(last) = &tracking.last else {
            let waiting = seconds(self.started);
            return (
                waiting <= max,
                json!({"replica": self.config.location, "status": "no round yet", "seconds_since_start": waiting, "max_lag_seconds": max}),
            );
        };
        let since_round = seconds(last.at);
        let tables: Vec<String> = self.lake.replicated_tables().into_iter().map(|t| t.to_string()).collect();
        let stale: Vec<&String> = tables.iter().filter(|t| seconds(*tracking.succeeded.get(*t).unwrap_or(&self.started)) > max).collect();
        let (lag, stuck, detail) = match &last.outcome {
            Ok(report) => {
                let lag = if report.lag_seconds() > 0.0 { report.lag_seconds() + since_round } else { 0.0 };
                let stuck = report.tables.iter().any(|t| t.error.is_some() && !t.retryable);
                let tables = report
                    .tables
                    .iter()
                    .map(|t| {
                        json!({"table": t.table, "primary_snapshot": t.primary_snapshot, "replica_snapshot": t.replica_snapshot,
                            "lag_seconds": t.lag_seconds, "error": t.error, "retryable": t.retryable})
                    })
                    .collect::<Vec<_>>();
                (lag, stuck, json!(tables))
            }
            Err((error, retryable)) => (f64::NAN, !retryable, json!({"error": error, "retryable": retryable})),
        };
        // A lag the last round could not measure (it failed before any table) counts as within: staleness judges that.
        let ok = stale.is_empty() && !stuck && (lag.is_nan() || lag <= max);
        let status = if ok {
            "ok"
        } else if stuck {
            "failing (needs a person)"
        } else if !stale.is_empty() {
            "not brought up to date lately"
        } else {
            "behind"
        };
        (
            ok,
            json!({
                "replica": self.config.location,
                "status": status,
                "lag_seconds": if lag.is_nan() { serde_json::Value::Null } else { json!(lag) },
                "max_lag_seconds": max,
                "last_round_seconds_ago": since_round,
                "stale_tables": stale,
                "last_round": detail,
            }),
        )
    }
}
