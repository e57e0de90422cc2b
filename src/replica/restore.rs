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
use super::replicate::{open_place, ReplicaConfig, ReplicationReport, Replicator, Source};
use crate::lake::{replicated_idents, Lake, LakeConfig, TableKind};

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
    Ok(Source { warehouse, catalog: Arc::new(catalog) as Arc<dyn Catalog>, tables: replicated_idents(into) })
}

/// Restores the replica `source` into the empty place `into` (its warehouse and SQL catalog), at `point`.
pub async fn restore(source: Source, into: &LakeConfig, point: RestorePoint) -> Result<RestoreReport, ReplicaError> {
    let target = ReplicaConfig {
        location: into.warehouse.clone(),
        catalog_uri: into.catalog_uri.clone(),
        catalog_name: into.catalog_name.clone(),
        catalog_auth: into.catalog_auth,
        storage: into.storage.clone(),
    };
    if into.catalog_type != crate::lake::CatalogType::Sql {
        return Err(ReplicaError::Config(
            "restore writes a SQL catalog (SQLite or PostgreSQL); register the tables in a REST catalog afterwards".into(),
        ));
    }
    let tables = source.tables.clone();
    let copier = Replicator::open(source, &target).await?;
    for ident in &tables {
        if copier.catalog().load_table(ident).await.is_ok() {
            return Err(ReplicaError::Config(format!("{} holds table {ident} already: restore goes into an empty location", target.location)));
        }
    }
    let copied = copier.round().await?;
    if let Some(failed) = copied.tables.iter().find(|t| t.error.is_some()) {
        return Err(ReplicaError::Config(format!("copying {} failed: {}", failed.table, failed.error.as_deref().unwrap_or_default())));
    }
    let lake = Lake::open(into).await?;
    promote(&lake).await?;
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
