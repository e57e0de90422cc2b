//! What a maintenance run does.

use std::time::Duration;

use super::compact::CompactionPolicy;
use super::expire::ExpiryPolicy;
use super::orphans::OrphanPolicy;

/// What a run does; each step can be turned off.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MaintenancePolicy {
    pub compaction: Option<CompactionPolicy>,
    /// Rewrite the current snapshot's data manifests into one per spec once there are more than this many.
    pub rewrite_manifests_above: Option<usize>,
    pub expiry: Option<ExpiryPolicy>,
    pub orphans: Option<OrphanPolicy>,
    /// How long a run may hold the lease (a crashed run's lease lapses after it).
    pub lease: Duration,
}

impl Default for MaintenancePolicy {
    fn default() -> Self {
        Self {
            compaction: Some(CompactionPolicy::default()),
            rewrite_manifests_above: Some(100),
            expiry: Some(ExpiryPolicy::default()),
            orphans: Some(OrphanPolicy::default()),
            lease: Duration::from_secs(15 * 60),
        }
    }
}
