//! Table maintenance (the seed's operational procedures and 5.3): bin-pack compaction ([`compact`]),
//! manifest rewrite, snapshot expiry ([`expire`]), orphan cleanup ([`orphans`]), table health
//! ([`health`]) and the data's signals an on-call engineer is paged for ([`signals`]), run by the `maintain` command and the `MaintainTable` timer function.
//!
//! A run holds a lease in the catalog database, so two never run at once; it never blocks ingestion: every
//! change is one compare-and-swap commit like the committer's, and whichever loses re-reads the table and
//! tries again. Table properties, and with them the ingestion ledger, are carried over by every commit.
//! Work per run is bounded (compaction input bytes), so a run fits a function's timeout and the next one
//! resumes.

pub mod compact;
pub mod dremio;
mod error;
pub mod expire;
pub mod files;
pub mod health;
pub mod orphans;
mod policy;
pub mod signals;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;

use self::compact::{CompactionReport, MAINTENANCE_PROPERTY};
pub use self::error::MaintainError;
use self::expire::ExpiryReport;
use self::health::TableHealth;
use self::orphans::OrphanReport;
pub use self::policy::MaintenancePolicy;
use crate::lake::{Change, Lake, LakeError, Outcome, TableKind, COMMIT_ID_PROPERTY};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MaintenanceReport {
    pub table: String,
    /// False when another run held the lease: this one did nothing.
    pub ran: bool,
    pub compaction: Option<CompactionReport>,
    pub manifests_rewritten: Option<usize>,
    pub expiry: Option<ExpiryReport>,
    pub orphans: Option<OrphanReport>,
    pub health: Option<TableHealth>,
    /// `--maintenance dremio`: the statements Dremio ran and their answers.
    pub dremio: Option<dremio::DremioMaintenanceReport>,
    /// The rollup table: caught up (rebuilt if it cannot follow), its partial rows re-aggregated, its old
    /// snapshots expired and its orphans removed.
    pub rollup: Option<RollupMaintenance>,
    /// The quality table: its per-commit files compacted, old snapshots expired, orphans removed.
    pub quality: Option<TableMaintenance>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableMaintenance {
    pub compaction: Option<CompactionReport>,
    pub expiry: Option<ExpiryReport>,
    pub orphans: Option<OrphanReport>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RollupMaintenance {
    pub follow: crate::lake::rollup::FollowReport,
    pub compaction: Option<crate::lake::rollup::RollupCompactionReport>,
    pub expiry: Option<ExpiryReport>,
    pub orphans: Option<OrphanReport>,
}

/// Who carries out the policy.
#[derive(Clone, Default)]
pub enum MaintenanceBackend {
    /// This process, on the tables of the lake's own catalog.
    #[default]
    Embedded,
    /// Dremio's OPTIMIZE and VACUUM, for the table Dremio writes.
    Dremio(std::sync::Arc<DremioMaintainer>),
}

impl std::fmt::Debug for MaintenanceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaintenanceBackend::Embedded => f.write_str("Embedded"),
            MaintenanceBackend::Dremio(d) => write!(f, "Dremio({}, {:?})", d.table, d.catalog),
        }
    }
}

/// What `--maintenance dremio` needs.
pub struct DremioMaintainer {
    pub client: std::sync::Arc<crate::dremio::FlightSqlClient>,
    pub table: crate::dremio::sql::TablePath,
    pub catalog: dremio::DremioCatalog,
    /// How far back OPTIMIZE looks (recent days are where ingestion leaves small files).
    pub compact_window: Duration,
}

/// One maintenance run by `backend`, under the lease (in the lake's catalog database either way, so runs
/// never overlap).
pub async fn run_with(lake: &Lake, policy: &MaintenancePolicy, backend: &MaintenanceBackend) -> Result<MaintenanceReport, MaintainError> {
    let MaintenanceBackend::Dremio(dremio) = backend else { return run(lake, policy).await };
    let started = Instant::now();
    let name = lake.target(TableKind::Records).name.clone();
    let mut report = MaintenanceReport { table: name.clone(), ..MaintenanceReport::default() };
    let (lease, holder) = (format!("maintenance/{name}"), uuid::Uuid::new_v4().to_string());
    if !lake.try_lease(&lease, &holder, policy.lease).await? {
        tracing::info!(table = %name, "Another maintenance run holds the lease; nothing to do.");
        return Ok(report);
    }
    report.ran = true;
    let result = dremio::run(&dremio.client, &dremio.table, dremio.catalog, policy, dremio.compact_window).await;
    if result.is_ok() {
        // The quality table stays in the lake's own catalog: kept here as with the embedded backend, best
        // effort (the records table's report stands whatever happens to it).
        match quality_steps(lake, policy).await {
            Ok(quality) => report.quality = Some(quality),
            Err(e) => tracing::warn!(error = %e, "The quality table's maintenance failed; the next run tries again."),
        }
    }
    if let Err(e) = lake.release_lease(&lease, &holder).await {
        tracing::warn!(error = %e, "Could not release the maintenance lease; it lapses by itself.");
    }
    report.dremio = Some(result?);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One maintenance run over the records table, under the lease.
pub async fn run(lake: &Lake, policy: &MaintenancePolicy) -> Result<MaintenanceReport, MaintainError> {
    let started = Instant::now();
    let kind = TableKind::Records;
    let name = lake.target(kind).name.clone();
    let mut report = MaintenanceReport { table: name.clone(), ..MaintenanceReport::default() };
    let lease = format!("maintenance/{name}");
    let holder = uuid::Uuid::new_v4().to_string();
    if !lake.try_lease(&lease, &holder, policy.lease).await? {
        tracing::info!(table = %name, "Another maintenance run holds the lease; nothing to do.");
        return Ok(report);
    }
    report.ran = true;
    let result = steps(lake, kind, policy, &mut report).await;
    if let Err(e) = lake.release_lease(&lease, &holder).await {
        tracing::warn!(error = %e, "Could not release the maintenance lease; it lapses by itself.");
    }
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn steps(lake: &Lake, kind: TableKind, policy: &MaintenancePolicy, report: &mut MaintenanceReport) -> Result<(), MaintainError> {
    if let Some(compaction) = &policy.compaction {
        report.compaction = Some(compact::compact(lake, kind, compaction).await?);
    }
    if let Some(above) = policy.rewrite_manifests_above {
        report.manifests_rewritten = rewrite_manifests(lake, kind, above).await?;
    }
    if let Some(expiry) = &policy.expiry {
        report.expiry = Some(expire::expire(lake, kind, expiry, Utc::now()).await?);
    }
    if let Some(orphans) = &policy.orphans {
        report.orphans = Some(orphans::remove_orphans(lake, kind, orphans, Utc::now()).await?);
    }
    report.rollup = Some(rollup_steps(lake, policy).await?);
    report.quality = Some(quality_steps(lake, policy).await?);
    let compaction = policy.compaction.unwrap_or_default();
    report.health = Some(health::health(lake, kind, &compaction, Utc::now()).await?);
    Ok(())
}

/// The rollup table's share of a run: the records table is followed first (rebuilt from the live rows
/// whatever its size when it cannot be followed: only maintenance and `rollup rebuild` take that on),
/// then compacted, expired and cleaned like the records table.
async fn rollup_steps(lake: &Lake, policy: &MaintenancePolicy) -> Result<RollupMaintenance, MaintainError> {
    let options = crate::lake::rollup::FollowOptions {
        max_appends: 1024,
        rebuild_up_to_rows: u64::MAX,
        max_attempts: lake.policy().max_attempts,
        ..lake.follow_options()
    };
    let mut report = RollupMaintenance { follow: lake.follow_rollups(options).await?, ..RollupMaintenance::default() };
    if policy.compaction.is_some() {
        report.compaction = Some(crate::lake::rollup::compact(lake.handle(TableKind::Rollup), &Default::default()).await?);
    }
    (report.expiry, report.orphans) = expire_and_clean(lake, TableKind::Rollup, policy).await?;
    Ok(report)
}

/// The quality table's share: a small file per commit, compacted, expired and cleaned like the records
/// table (its rows are kept: a row per source and commit is a few megabytes a year).
async fn quality_steps(lake: &Lake, policy: &MaintenancePolicy) -> Result<TableMaintenance, MaintainError> {
    let kind = TableKind::Quality;
    let mut report = TableMaintenance::default();
    if let Some(compaction) = &policy.compaction {
        report.compaction = Some(compact::compact(lake, kind, compaction).await?);
    }
    (report.expiry, report.orphans) = expire_and_clean(lake, kind, policy).await?;
    Ok(report)
}

/// A side table's old snapshots expired and its orphans removed, as the policy asks.
async fn expire_and_clean(
    lake: &Lake,
    kind: TableKind,
    policy: &MaintenancePolicy,
) -> Result<(Option<ExpiryReport>, Option<OrphanReport>), MaintainError> {
    let expiry = match &policy.expiry {
        Some(expiry) => Some(expire::expire(lake, kind, expiry, Utc::now()).await?),
        None => None,
    };
    let orphans = match &policy.orphans {
        Some(orphans) => Some(orphans::remove_orphans(lake, kind, orphans, Utc::now()).await?),
        None => None,
    };
    Ok((expiry, orphans))
}

/// Rewrites the current snapshot's data manifests into one per spec when there are more than `above`:
/// planning reads every manifest, so thousands of one-commit manifests slow every query. Returns how many
/// manifests were rewritten, `None` when there were too few.
pub async fn rewrite_manifests(lake: &Lake, kind: TableKind, above: usize) -> Result<Option<usize>, MaintainError> {
    let commit_id = uuid::Uuid::new_v4().to_string();
    for _attempt in 0..5 {
        let table = lake.load(kind).await?;
        let manifests = files::current_manifests(&table).await?.len();
        if manifests <= above {
            return Ok(None);
        }
        let change = Change {
            rewrite_manifests: true,
            summary: HashMap::from([
                (MAINTENANCE_PROPERTY.to_string(), "manifest-rewrite".to_string()),
                (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
            ]),
            ..Change::default()
        };
        match lake.commit_change(&table, change).await? {
            Outcome::Landed { .. } => return Ok(Some(manifests)),
            Outcome::Conflict => continue,
        }
    }
    Err(MaintainError::Lake(LakeError::Conflict { table: lake.target(kind).name.clone() }))
}
