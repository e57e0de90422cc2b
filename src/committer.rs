//! When staged data is committed: every `interval`, or sooner once `threshold_rows` are pending, by one
//! instance of the app at a time. Answers include what is staged ([`crate::lake::tail`]), so the interval
//! sets file sizes and snapshot counts, not visibility: peers commit every 1–5 minutes, and a commit per
//! invocation (or per instance) would multiply snapshots and small files.
//!
//! The instance that commits holds the table's commit lease in the catalog database (renewed every
//! [`heartbeat`], lapsing after three missed renewals), so however far the app scales out, the table gets
//! one commit per interval; when the holder dies another takes the lease over and commits what it staged.
//! The lease only saves work: the commit protocol itself keeps two committers from committing anything
//! twice, so an instance that cannot read the lease commits anyway.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};

use crate::lake::{CommitReport, Lake, LakeError, TableKind};

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
    /// The commit lease: its name, this instance's holder id, and whether it held it when last asked.
    lease: String,
    holder: String,
    leader: AtomicBool,
    /// How long a renewal holds the lease (three heartbeats of the loop's interval).
    lease_ttl: std::sync::Mutex<Duration>,
    /// The loop's interval, once it runs.
    interval: std::sync::Mutex<Option<Duration>>,
    /// When this process last committed (none yet: the loop counts from its start).
    last_commit: std::sync::Mutex<Option<Instant>>,
}

/// How often the commit lease is renewed for a commit `interval`: a third of it, between 200 ms and 10 s.
pub fn heartbeat(interval: Duration) -> Duration {
    (interval / 3).clamp(Duration::from_millis(200), Duration::from_secs(10))
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
        let lease = format!("commit/{}", lake.target(TableKind::Records).ident);
        let host = std::env::var("WEBSITE_INSTANCE_ID").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_default();
        let holder = format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4());
        Self {
            inner: Arc::new(Inner {
                lease,
                holder,
                leader: AtomicBool::new(false),
                lease_ttl: std::sync::Mutex::new(heartbeat(Duration::from_secs(300)) * 3),
                interval: std::sync::Mutex::new(None),
                last_commit: std::sync::Mutex::new(None),
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
        *self.inner.last_commit.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
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

    /// Whether this instance held the commit lease when it last asked.
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::Relaxed)
    }

    /// Takes or renews the commit lease for `ttl`; an instance that cannot read it counts as holding it.
    async fn renew(&self, ttl: Duration) -> bool {
        // Bounded: a hung database call must not freeze the holder's flag.
        let asked = tokio::time::timeout(ttl, self.inner.lake.try_lease(&self.inner.lease, &self.inner.holder, ttl)).await;
        let asked = asked.unwrap_or_else(|_| Err(LakeError::Config(format!("no answer from the lease database within {ttl:?}"))));
        let held = match asked {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, lease = %self.inner.lease, "The commit lease cannot be read; committing anyway (the commit protocol keeps it exactly once).");
                true
            }
        };
        let was = self.inner.leader.swap(held, Ordering::Relaxed);
        if held != was {
            tracing::info!(lease = %self.inner.lease, holder = %self.inner.holder, held, "Commit lease changed hands.");
        }
        held
    }

    /// Commits now if this instance holds (or can take) the commit lease; `None` when another instance
    /// does (what the commit timer calls, so it adds no commit beside the holder's).
    pub async fn commit_if_leader(&self) -> Result<Option<Vec<CommitReport>>, LakeError> {
        let ttl = *self.inner.lease_ttl.lock().unwrap_or_else(|e| e.into_inner());
        if !self.renew(ttl).await {
            return Ok(None);
        }
        // The holder's own loop committed within the interval: the timer adds no second commit to it.
        let interval = *self.inner.interval.lock().unwrap_or_else(|e| e.into_inner());
        let since = self.inner.last_commit.lock().unwrap_or_else(|e| e.into_inner()).map(|at| at.elapsed());
        if interval.zip(since).is_some_and(|(interval, since)| since < interval / 2) {
            return Ok(Some(Vec::new()));
        }
        self.commit_now().await.map(Some)
    }

    /// Gives the commit lease up (on shutdown), so another instance takes over at once.
    pub async fn release_lease(&self) {
        if let Err(e) = self.inner.lake.release_lease(&self.inner.lease, &self.inner.holder).await {
            tracing::warn!(error = %e, "The commit lease was not released; it lapses by itself.");
        }
        self.inner.leader.store(false, Ordering::Relaxed);
    }

    /// Runs the lease and the interval/threshold loop until the task is dropped: the lease is renewed every
    /// [`heartbeat`] (by a task of its own, so a long commit does not let it lapse), and the holder commits
    /// once `interval` has passed since the last commit, or when the threshold wakes it.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let handle = self.clone();
        let beat = heartbeat(interval);
        *self.inner.lease_ttl.lock().unwrap_or_else(|e| e.into_inner()) = beat * 3;
        *self.inner.interval.lock().unwrap_or_else(|e| e.into_inner()) = Some(interval);
        tokio::spawn(async move {
            let renewer = handle.clone();
            let renewal = tokio::spawn(async move {
                loop {
                    renewer.renew(beat * 3).await;
                    tokio::time::sleep(beat).await;
                }
            });
            // Stops the renewal when this loop is dropped (aborted at shutdown).
            let _renewal = AbortOnDrop(renewal);
            let started = Instant::now();
            loop {
                let woken = tokio::select! {
                    _ = tokio::time::sleep(beat) => false,
                    _ = handle.inner.wake.notified() => true,
                };
                let last = handle.inner.last_commit.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(started);
                let due = last.elapsed() >= interval;
                if !(handle.is_leader() && (woken || due)) {
                    continue;
                }
                if let Err(e) = handle.commit_now().await {
                    tracing::error!(error = %e, retryable = e.is_retryable(), "Commit pass failed; staged data is kept for the next pass.");
                }
            }
        })
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
