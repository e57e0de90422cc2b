//! Promotion: a replica becomes the primary. Its tables are marked promoted (a metadata-only commit each),
//! so no replication from the old primary ever writes over them, and what ingestion needs to resume is
//! printed: per source, the last sequence number the replica holds. Events up to it that arrive again are
//! dropped as duplicates by the ledger that travelled with the tables; the Event Hubs checkpoints are
//! rewound to it (docs/recovery.md) so the events the old primary committed after the replica's last
//! snapshot are read again and land.

use super::error::ReplicaError;
use super::replicate::{PROMOTED_PROPERTY, REPLICA_OF_PROPERTY, SOURCE_METADATA_PROPERTY};
use crate::lake::{Change, Lake, Outcome, TableKind};

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

/// Where one source resumes: every sequence number up to `sequence_number` is in the promoted table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourcePosition {
    pub source: String,
    pub sequence_number: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_hubs: Option<EventHubsPartition>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PromotionReport {
    pub tables: Vec<PromotedTable>,
    pub sources: Vec<SourcePosition>,
}

/// Promotes the lake `replica` (opened on the replica's location and catalog). Every table is checked to be
/// a replica (or already promoted) before any is changed.
pub async fn promote(replica: &Lake) -> Result<PromotionReport, ReplicaError> {
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
                // Another promotion (or a first ingestion) moved it: check and mark again.
                Outcome::Conflict => continue,
            }
        }
    }
    let state = replica.committed_state(TableKind::Records).await?;
    let sources = state
        .watermarks
        .iter()
        .map(|(source, sequence_number)| SourcePosition {
            source: source.to_string(),
            sequence_number,
            event_hubs: EventHubsPartition::parse(source),
        })
        .collect();
    Ok(PromotionReport { tables, sources })
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
