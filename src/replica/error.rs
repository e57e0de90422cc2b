//! What can stop a replication round. Each variant keeps its source and says whether the next round can
//! succeed where this one did not.

use crate::lake::LakeError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Wrong or missing configuration: fixing it needs a person.
    #[error("replication configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A table's metadata, manifest list or manifest could not be read or written.
    #[error("{what} {path}: {detail}")]
    Format { what: &'static str, path: String, detail: String },
    /// A path the primary's metadata names lies outside the primary warehouse: where it would go in the
    /// replica is unknown, so nothing is guessed.
    #[error("{path} is outside the primary warehouse {warehouse}; a replica can only hold the warehouse's own files")]
    OutsideWarehouse { path: String, warehouse: String },
    /// Position delete files name data files inside their rows; they would need rewriting too.
    #[error("{path} is a position delete file; tables with merge-on-read deletes are not replicated (compact them first)")]
    PositionDeletes { path: String },
    /// A file the primary's metadata names is gone: the primary moved on (expiry removed the snapshot
    /// that held it) while the round read it. The next round starts from the newer metadata.
    #[error("{path} is gone from the primary while it was replicated (the primary expired it meanwhile); the next round starts again from the newer metadata")]
    PrimaryMoved { path: String },
    /// A file in the replica's place differs from the primary's: something else wrote there.
    #[error("{path} exists in the replica with {found} bytes where the primary's has {expected}; it is not overwritten (remove it if it is not the replica's)")]
    SizeMismatch { path: String, expected: u64, found: u64 },
    /// The replica's table is not a replica of this primary's (another table, a promoted replica, a table
    /// created there by other means).
    #[error("table {table} in the replica is not a replica of the primary's: {detail}")]
    NotAReplica { table: String, detail: String },
    /// The replica's catalog pointer moved between reading and swapping it: another replicator wrote it.
    #[error("table {table}: the replica moved while this round wrote it (another replicator?)")]
    ReplicaMoved { table: String },
    /// A copy stopped short for one table (a restore cannot go on without it).
    #[error("copying {table} stopped short: {detail}")]
    Incomplete { table: String, detail: String, retryable: bool },
    /// Another `replicate` holds the replica's lease.
    #[error("another replicator holds the replica's lease; try again when it has finished")]
    Busy,
}

impl ReplicaError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ReplicaError::Lake(e) => e.is_retryable(),
            ReplicaError::Incomplete { retryable, .. } => *retryable,
            ReplicaError::Storage(e) => e.is_retryable(),
            ReplicaError::PrimaryMoved { .. } | ReplicaError::ReplicaMoved { .. } | ReplicaError::Busy => true,
            ReplicaError::Config(_)
            | ReplicaError::Format { .. }
            | ReplicaError::OutsideWarehouse { .. }
            | ReplicaError::PositionDeletes { .. }
            | ReplicaError::SizeMismatch { .. }
            | ReplicaError::NotAReplica { .. } => false,
        }
    }
}
