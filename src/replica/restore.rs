//! Restore: a replica's tables copied into an empty location (a new primary), optionally moved back to an
//! earlier snapshot (an id, an instant, or a tag that kept it from expiry), and promoted there.
//!
//! The copy is a replication round from the replica into the new place ([`Replicator`], the same rewrite of
//! every path); the move back points `main` at the snapshot with the ingestion ledger as it was then
//! (recorded by its tag, or worked out from the lineage), so replays from there land once; promotion says
//! where each source resumes.

use std::sync::Arc;

use iceberg::Catalog;

use super::error::ReplicaError;
use super::promote::{promote, PromotionReport};
use super::replicate::{open_place, ReplicaConfig, ReplicationReport, Replicator, Source, Tables};
use crate::lake::history::{tagged_watermarks, watermarks_at};
use crate::lake::{replicated_idents, Lake, LakeConfig, LakeError, TableKind};

/// Which state of the records table to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestorePoint {
    /// The replica's current state.
    Latest,
    /// A snapshot id, already resolved against the replica's records table.
    Snapshot(i64),
}

#[derive(Debug, serde::Serialize)]
pub struct RestoreReport {
    pub copied: ReplicationReport,
    /// The records table's snapshot current after the restore.
    pub snapshot: Option<i64>,
    /// The earlier snapshot the records table was moved back to, if one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_back_to: Option<i64>,
    pub promoted: PromotionReport,
}

/// The replica at `from` as a [`Source`], with the tables a lake configured as `into` keeps.
pub async fn replica_source(from: &ReplicaConfig, into: &LakeConfig) -> Result<Source, ReplicaError> {
    let (warehouse, catalog) = open_place(from).await?;
    Ok(Source { warehouse, catalog: Arc::new(catalog) as Arc<dyn Catalog>, tables: Tables::of(replicated_idents(into))? })
}

/// Restores the replica `source` into the place `into` (its warehouse and SQL catalog), at `point`. The
/// place must be empty, or hold what an interrupted restore of the same replica copied (it goes on).
pub async fn restore(source: Source, into: &LakeConfig, point: RestorePoint) -> Result<RestoreReport, ReplicaError> {
    if into.catalog_type != crate::lake::CatalogType::Sql {
        return Err(ReplicaError::Config(
            "restore writes a SQL catalog (SQLite or PostgreSQL); register the tables in a REST catalog afterwards".into(),
        ));
    }
    // The ledger at the snapshot must be known before anything is copied (a tag recorded it, or the
    // lineage back to it is still there), or the restored place could not say where sources resume.
    if let RestorePoint::Snapshot(id) = point {
        let records = source.catalog.load_table(&source.tables.records).await.map_err(LakeError::iceberg("loading the replica's records table"))?;
        let metadata = records.metadata();
        if tagged_watermarks(metadata, id).is_none() {
            watermarks_at(&source.tables.records.to_string(), metadata, id).map_err(|e| LakeError::Ledger {
                table: source.tables.records.to_string(),
                detail: format!("the ingestion ledger at snapshot {id} cannot be known ({e}); restore the latest state, or a tagged snapshot"),
            })?;
        }
    }
    let target = ReplicaConfig {
        location: into.warehouse.clone(),
        catalog_uri: into.catalog_uri.clone(),
        catalog_name: into.catalog_name.clone(),
        catalog_auth: into.catalog_auth,
        storage: into.storage.clone(),
        lease: super::replicate::DEFAULT_LEASE,
    };
    let copier = Replicator::open(source, &target).await?;
    let copied = copier.round().await?;
    // The table that failed first (the others may only say they were not copied because of it).
    let failed = copied.tables.iter().filter(|t| t.error.is_some()).min_by_key(|t| t.error.as_deref().is_some_and(|e| e.starts_with("not copied")));
    if let Some(failed) = failed {
        return Err(ReplicaError::Incomplete {
            table: failed.table.clone(),
            detail: failed.error.clone().unwrap_or_default(),
            retryable: failed.retryable,
        });
    }
    let lake = Lake::open(into).await?;
    let moved_back_to = match point {
        RestorePoint::Latest => None,
        RestorePoint::Snapshot(id) => {
            lake.reset_to(id).await?;
            Some(id)
        }
    };
    let snapshot = lake.load(TableKind::Records).await?.metadata().current_snapshot_id();
    // Where each source resumes, with the ledger as the restored state has it.
    let promoted = promote(&lake).await?;
    Ok(RestoreReport { copied, snapshot, moved_back_to, promoted })
}
