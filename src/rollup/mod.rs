//! Rollups: the records pre-aggregated per minute, hour and day, ticker and source, so that a dashboard's
//! answer over any window reads a few thousand partial rows instead of every message.
//!
//! Owns the measures and how raw rows become them ([`partial`]), sums that merge exactly in any order
//! ([`exact`]), which grains answer a window ([`pieces`]) and the rollup table's schema and row encoding
//! ([`table`]). Pure: no I/O. Uses the schema; the lake (which keeps the rollup table in step with each
//! commit) and the engines and query service (which answer from it) use it.

pub mod exact;
pub mod partial;
pub mod pieces;
pub mod table;

pub use self::partial::{Dimension, Grain, Measures, Partials, RowFilter, RowKey};
pub use self::pieces::{pieces, pieces_from, Detail, Piece, Scope};
