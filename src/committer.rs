//! When staged data becomes visible: every `interval`, or sooner once `threshold_rows` are pending. Peers
//! commit every 1–5 minutes; a commit per invocation would multiply snapshots and files.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

use crate::lake::{CommitReport, Lake, LakeError};

/// Called after every commit call with its reports (the query service warms its cache from it).
pub type OnCommit = Arc<dyn Fn(&[CommitReport]) + Send + Sync>;

/// The process's committer. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    inner: Arc<Inner>,
}

struct Inner {
    lake: Lake,
    wake: Notify,
    pending_rows: AtomicUsize,
    threshold_rows: usize,
    // One pass at a time per process; other processes are handled by the commit protocol itself.
    running: Mutex<()>,
    on_commit: Option<OnCommit>,
    /// Passes failed since the last one that worked, and why the latest failed: health reports them.
    failures: std::sync::Mutex<Failures>,
}

/// Commit passes failed in a row, for health.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Failures {
    pub consecutive: u64,
    pub last_error: Option<String>,
    pub last_failed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Committer {
    pub fn new(lake: Lake, threshold_rows: usize, on_commit: Option<OnCommit>) -> Self {
        Self {
            inner: Arc::new(Inner {
                lake,
                wake: Notify::new(),
                pending_rows: AtomicUsize::new(0),
                threshold_rows: threshold_rows.max(1),
                running: Mutex::new(()),
                on_commit,
                failures: Default::default(),
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
        let committed = self.inner.lake.commit().await;
        {
            let mut failures = self.inner.failures.lock().unwrap_or_else(|e| e.into_inner());
            match &committed {
                Ok(_) => failures.consecutive = 0,
                Err(e) => {
                    failures.consecutive += 1;
                    failures.last_error = Some(e.to_string());
                    failures.last_failed_at = Some(chrono::Utc::now());
                }
            }
        }
        let reports = committed?;
        if let Some(on_commit) = &self.inner.on_commit {
            on_commit(&reports);
        }
        Ok(reports)
    }

    /// Commit passes failed since the last that worked (zero when the latest worked).
    pub fn failures(&self) -> Failures {
        self.inner.failures.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
                    tracing::error!(error = %e, retryable = e.is_retryable(), "Commit pass failed; staged data is kept for the next pass.");
                }
            }
        })
    }
}
