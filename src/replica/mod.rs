//! Disaster recovery: the lake's tables copied to another location, snapshot by snapshot, in commit order,
//! with every path inside their metadata, manifest lists and manifests moved to the replica, so the replica
//! is a table of its own that any Iceberg reader opens in its own catalog.
//!
//! Owns where a file goes in the replica ([`relocate`]), the rewriting of a table's files with the paths
//! moved ([`rewrite`], pure), the rounds that copy and publish ([`replicate`]), the app's replication with
//! its health ([`ReplicaService`]), a replica's promotion to primary ([`promote`]), a restore from it
//! into an empty place ([`restore`]) and the drill that restores it and proves parity ([`drill`]). Uses
//! [`crate::lake`] (the tables and catalogs), [`crate::storage`] and [`crate::observability`]; the CLI and
//! the `ReplicateLake` timer function call it.

pub mod drill;
mod error;
pub mod promote;
pub mod relocate;
pub mod replicate;
pub mod restore;
pub mod rewrite;
mod service;

pub use self::drill::{drill, DrillReport};
pub use self::error::ReplicaError;
pub use self::promote::{promote, PromotionReport};
pub use self::replicate::{ReplicaConfig, ReplicationReport, Replicator, Source, TableReport, Tables};
pub use self::restore::{replica_source, restore, RestorePoint, RestoreReport};
pub use self::service::ReplicaService;
