//! Promotion: a replica becomes the primary. Its tables are marked promoted (a metadata-only commit each),
//! so no replication from the old primary ever writes over them, and what ingestion needs to resume is
//! printed: per source, the last sequence number both the records and the dead-letter table hold. Events up
//! to it that arrive again are dropped as duplicates by the ledgers that travelled with the tables; the
//! Event Hubs checkpoints are rewound to it (docs/recovery.md) so the events the old primary committed
//! after the replica's last snapshot are read again and land. Migration ledger rows the replica's records
//! do not back (the ledger is copied before the records in a round) are taken out, so their files migrate
//! again from their watermark instead of being skipped.

use std::collections::HashSet;

use super::error::ReplicaError;
use super::replicate::{LEASE, PROMOTED_PROPERTY, REPLICA_OF_PROPERTY, SOURCE_METADATA_PROPERTY};
use crate::lake::{Change, CommittedState, Lake, Outcome, RetiredSource, TableKind, Watermarks};

/// One table as promotion found and left it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PromotedTable {
    pub table: String,
    pub snapshot: Option<i64>,
    /// The primary table it was a replica of, and the primary metadata it copied last.
    pub replica_of: String,
    pub copied_from: Option<String>,
    /// Promoted by an earlier run (nothing changed now).
    pub already: bool,
}

/// An Event Hubs partition named by a source id (`eventhubs://<namespace>/<hub>/<consumer group>/<partition>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventHubsPartition {
    pub namespace: String,
    pub hub: String,
    pub consumer_group: String,
    pub partition: String,
}

impl EventHubsPartition {
    pub fn parse(source: &str) -> Option<Self> {
        let mut parts = source.strip_prefix("eventhubs://")?.split('/');
        let partition = Self {
            namespace: parts.next()?.to_string(),
            hub: parts.next()?.to_string(),
            consumer_group: parts.next()?.to_string(),
            partition: parts.next()?.to_string(),
        };
        parts.next().is_none().then_some(partition)
    }
}

/// Where one source resumes. Each table keeps its own ledger, so the checkpoint is rewound to the lower of
/// the two: what the records table holds again is dropped there, and what the dead-letter table lacks lands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourcePosition {
    pub source: String,
    /// Rewind the checkpoint here: every event up to it is in both tables.
    pub sequence_number: i64,
    pub records: Option<i64>,
    pub dead_letters: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_hubs: Option<EventHubsPartition>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PromotionReport {
    pub tables: Vec<PromotedTable>,
    pub sources: Vec<SourcePosition>,
    /// Migration ledger rows taken out because the replica's records do not hold their file whole (the
    /// ledger was copied after the records): those files migrate again from their watermark, once.
    pub ledger_rows_forgotten: Vec<String>,
}

/// Whether a migration ledger row claims more than the records table (`watermarks`, its snapshots and the
/// current one's commit time) holds: its file then has to migrate again from its watermark.
///
/// Retiring appends the row, then takes the file's watermark out. So a file with a watermark below its
/// last row is not whole in the table; a file without a watermark either finished before the table's
/// state (the row names a snapshot the table has, or one expired before it) or never reached it (the row
/// names a snapshot the table does not know, and was written after its current snapshot).
fn claims_more(row: &RetiredSource, watermarks: &Watermarks, snapshots: &HashSet<i64>, current_at_ms: i64) -> bool {
    match watermarks.get(&row.source) {
        Some(watermark) => watermark < row.through,
        None => row.records_snapshot_id.is_some_and(|id| !snapshots.contains(&id)) && row.retired_at.timestamp_millis() >= current_at_ms,
    }
}

/// Promotes the lake `replica` (opened on the replica's location and catalog), under the replica's
/// replication lease so that no round runs meanwhile. Every table is checked to be a replica (or promoted
/// already) before any is changed.
pub async fn promote(replica: &Lake) -> Result<PromotionReport, ReplicaError> {
    let holder = format!("promote-{}", uuid::Uuid::now_v7());
    if !replica.try_lease(LEASE, &holder, std::time::Duration::from_secs(600)).await? {
        return Err(ReplicaError::Busy);
    }
    let promoted = promote_leased(replica).await;
    if let Err(e) = replica.release_lease(LEASE, &holder).await {
        tracing::warn!(error = %e, "Could not give the replication lease back; it expires by itself.");
    }
    promoted
}

async fn promote_leased(replica: &Lake) -> Result<PromotionReport, ReplicaError> {
    let handles = replica.replicated_handles();
    let mut tables = Vec::new();
    for handle in &handles {
        let table = handle.load().await?;
        let properties = table.metadata().properties();
        let already = properties.contains_key(PROMOTED_PROPERTY);
        let replica_of = properties.get(REPLICA_OF_PROPERTY).cloned().ok_or_else(|| ReplicaError::NotAReplica {
            table: handle.target.name.clone(),
            detail: "it carries no replica marker: this location is a primary already, not a replica".into(),
        })?;
        tables.push(PromotedTable {
            table: handle.target.name.clone(),
            snapshot: table.metadata().current_snapshot_id(),
            replica_of,
            copied_from: properties.get(SOURCE_METADATA_PROPERTY).cloned(),
            already,
        });
    }
    let records = replica.load(TableKind::Records).await?;
    let watermarks = CommittedState::read(&replica.target(TableKind::Records).name, records.metadata())?.watermarks;
    let mut ledger_rows_forgotten = Vec::new();
    if tables.iter().any(|t| !t.already) {
        let snapshots: HashSet<i64> = records.metadata().snapshots().map(|s| s.snapshot_id()).collect();
        let current_at = records.metadata().current_snapshot().map_or(i64::MIN, |s| s.timestamp_ms());
        let forgotten = replica.forget_retired(|row| claims_more(row, &watermarks, &snapshots, current_at)).await?;
        for row in forgotten {
            tracing::warn!(source = %row.source, through = row.through, "A migration ledger row of the replica is ahead of its records; the file migrates again from its watermark.");
            ledger_rows_forgotten.push(row.source);
        }
    }
    let at = chrono::Utc::now().to_rfc3339();
    for (handle, promoted) in handles.iter().zip(&tables) {
        if promoted.already {
            continue;
        }
        loop {
            let table = handle.load().await?;
            let change = Change { properties: vec![(PROMOTED_PROPERTY.to_string(), at.clone())], ..Change::default() };
            match handle.commit(&table, change).await? {
                Outcome::Landed { .. } => break,
                // Something else committed meanwhile (a first ingestion): mark the newer state.
                Outcome::Conflict => continue,
            }
        }
    }
    let letters = replica.committed_state(TableKind::DeadLetters).await?.watermarks;
    let names: std::collections::BTreeSet<&str> = watermarks.iter().chain(letters.iter()).map(|(source, _)| source).collect();
    let sources = names
        .into_iter()
        .map(|source| {
            let (records, dead_letters) = (watermarks.get(source), letters.get(source));
            SourcePosition {
                source: source.to_string(),
                sequence_number: records.into_iter().chain(dead_letters).min().unwrap_or_default(),
                records,
                dead_letters,
                event_hubs: EventHubsPartition::parse(source),
            }
        })
        .collect();
    Ok(PromotionReport { tables, sources, ledger_rows_forgotten })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_hubs_sources_name_their_partition() {
        let partition = EventHubsPartition::parse("eventhubs://ns.servicebus.windows.net/events/$Default/3").unwrap();
        assert_eq!((partition.hub.as_str(), partition.consumer_group.as_str(), partition.partition.as_str()), ("events", "$Default", "3"));
        assert_eq!(EventHubsPartition::parse("legacy+sha256:abc"), None);
        assert_eq!(EventHubsPartition::parse("eventhubs://ns/events/$Default/3/extra"), None);
    }
}
