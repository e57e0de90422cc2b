//! What one commit changes: new files, replaced files, expired snapshots, properties, a schema, or `main`
//! moved back.

use std::collections::{HashMap, HashSet};

use iceberg::spec::DataFile;

/// What one commit changes.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// Data files of a new append snapshot; none means no snapshot (a properties-only commit), unless
    /// the change replaces files or rewrites manifests.
    pub files: Vec<DataFile>,
    /// Paths of data files the new snapshot removes (a `replace` snapshot adding `files` for them). Every
    /// one must be live in the metadata the commit is built on, or the commit is refused as a conflict.
    pub replaces: HashSet<String>,
    /// Rewrite every data manifest into one per partition spec (a `replace` snapshot with no data change).
    pub rewrite_manifests: bool,
    /// Snapshots to remove from the metadata (expiry); none may be the target of a branch or tag.
    pub expire: Vec<i64>,
    /// Extra keys of the snapshot's summary.
    pub summary: HashMap<String, String>,
    /// Table properties to set.
    pub properties: Vec<(String, String)>,
    /// A new schema to add and make current (a column added); its id and field ids must be new.
    pub schema: Option<iceberg::spec::Schema>,
    /// Point `main` back at this existing snapshot (a rollback: no new snapshot, the snapshot log records
    /// the move). Not combined with files, replaces or a manifest rewrite.
    pub set_current: Option<i64>,
    /// Tags to create, each naming an existing snapshot: expiry keeps a tagged snapshot (an audited month
    /// end, the state before a migration) however old. A tag is never moved: one of the same name is refused.
    pub tags: Vec<(String, i64)>,
}
