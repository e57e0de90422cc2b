//! Tags: names for snapshots that must outlive expiry (a month end that was audited, the state before a
//! migration). Created once, never moved; expiry keeps what any ref names, and a replica copies the refs.
//! A tag also records the ingestion ledger as it was at its snapshot (a table property), so a restore to
//! it knows where each source resumes even after expiry took the snapshots in between.

use iceberg::spec::TableMetadata;

use super::rollback::watermarks_at;
use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::stage::Watermarks;
use crate::lake::table::Change;
use crate::lake::target::TableHandle;

/// A tag as the table's refs hold it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tag {
    pub name: String,
    pub snapshot_id: i64,
    /// When the tagged snapshot was committed (milliseconds since the epoch), if the table still has it.
    pub snapshot_timestamp_ms: Option<i64>,
    /// The ledger at the snapshot was known when it was tagged, and is recorded with it.
    pub ledger_recorded: bool,
}

/// The table property a tag's ledger is recorded in.
fn ledger_property(name: &str) -> String {
    format!("sentiment-lake.tag.{name}.watermarks")
}

/// The watermarks a tag naming `snapshot_id` recorded, if one did.
pub fn tagged_watermarks(metadata: &TableMetadata, snapshot_id: i64) -> Option<Watermarks> {
    tags(metadata)
        .into_iter()
        .filter(|t| t.snapshot_id == snapshot_id)
        .find_map(|t| serde_json::from_str(metadata.properties().get(&ledger_property(&t.name))?).ok())
}

/// The table's tags, by name.
pub fn tags(metadata: &TableMetadata) -> Vec<Tag> {
    // The metadata has no public accessor for its refs: they are read from its JSON form.
    let refs = serde_json::to_value(metadata).ok().and_then(|doc| doc.get("refs").cloned()).unwrap_or_default();
    let mut tags: Vec<Tag> = refs
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.get("type").and_then(|t| t.as_str()) == Some("tag"))
        .filter_map(|(name, r)| {
            let snapshot_id = r.get("snapshot-id")?.as_i64()?;
            Some(Tag {
                name: name.clone(),
                snapshot_id,
                snapshot_timestamp_ms: metadata.snapshot_by_id(snapshot_id).map(|s| s.timestamp_ms()),
                ledger_recorded: metadata.properties().contains_key(&ledger_property(name)),
            })
        })
        .collect();
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    tags
}

/// Tags `snapshot_id` of the table as `name`. A tag of that name that names the same snapshot already is
/// success (a retried command); one naming another snapshot is refused.
pub async fn create_tag(handle: TableHandle<'_>, max_attempts: u32, name: &str, snapshot_id: i64) -> Result<Tag, LakeError> {
    if name.is_empty() || name == "main" || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(LakeError::Config(format!("{name:?} cannot be a tag name")));
    }
    for _ in 0..max_attempts.max(1) {
        let table = handle.load().await?;
        if let Some(existing) = tags(table.metadata()).into_iter().find(|t| t.name == name) {
            if existing.snapshot_id == snapshot_id {
                return Ok(existing);
            }
            return Err(LakeError::Config(format!("tag {name} names snapshot {} already; tags are never moved", existing.snapshot_id)));
        }
        // Unknown when the lineage back to the snapshot is expired: the tag still keeps the data.
        let ledger = watermarks_at(&handle.target.name, table.metadata(), snapshot_id).ok();
        let properties = ledger.iter().map(|w| (ledger_property(name), w.to_property())).collect();
        let change = Change { tags: vec![(name.to_string(), snapshot_id)], properties, ..Change::default() };
        if let Outcome::Landed { .. } = handle.commit(&table, change).await? {
            let timestamp = table.metadata().snapshot_by_id(snapshot_id).map(|s| s.timestamp_ms());
            return Ok(Tag { name: name.to_string(), snapshot_id, snapshot_timestamp_ms: timestamp, ledger_recorded: ledger.is_some() });
        }
    }
    Err(LakeError::Conflict { table: handle.target.name.clone() })
}
