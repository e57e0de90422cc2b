//! How hard a commit tries before giving up until the next tick, and how much one pass takes in.

use std::time::Duration;

use crate::lake::stage::PassBounds;

/// How hard a commit tries before giving up until the next tick, and how much one pass takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub pass: PassBounds,
    /// Ranges without rows (markers) are folded into the ledger by a properties-only commit once the table
    /// has not been committed for this long, so a table that rarely gets rows (the dead letters) does not
    /// keep them staged forever; until then they are merged into one marker per source.
    pub ledger_flush_after: Duration,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            min_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(5),
            pass: PassBounds { max_bytes: 64 * 1024 * 1024, max_entries: 5_000, gap_grace: Duration::from_secs(300) },
            ledger_flush_after: Duration::from_secs(600),
        }
    }
}

impl CommitPolicy {
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self.min_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
        // Full jitter: concurrent committers that conflicted must not retry in lock-step.
        let random = (uuid::Uuid::new_v4().as_u128() as u64) % (exponential.as_micros() as u64 + 1);
        Duration::from_micros(random)
    }
}
