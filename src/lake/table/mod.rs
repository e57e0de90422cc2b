//! A table's next state, built here and published by [`crate::lake::catalog`]: what one commit changes
//! ([`Change`]), the manifests, manifest list and snapshot that carry it ([`snapshot`], [`manifest`]), and
//! whether a table's schema fits the rows the writer builds ([`compat`]).
//!
//! Uses [`crate::lake::error`] and iceberg's types only; the catalog's publish step, the commit and
//! maintenance use it.

mod change;
pub mod compat;
mod manifest;
mod snapshot;

pub use self::change::Change;
pub use self::snapshot::{next_metadata, remove, write_snapshot, NewSnapshot};
