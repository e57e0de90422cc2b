//! A table's history moved on purpose: `main` rolled back to an earlier snapshot with the ranges it takes
//! out awaited from a replay ([`rollback`]), and optional columns added to the records table
//! ([`evolve`]).
//!
//! Uses [`crate::lake::catalog`], [`crate::lake::table`] and [`crate::lake::stage`] (the ledger); the
//! lake's door uses it.

mod evolve;
mod rollback;

pub use self::evolve::{add_column, extra_columns, ExtraColumnsCache, EXTRA_COLUMNS_TTL};
pub use self::rollback::{release_awaited, rollback, RollbackReport, SourceReset};
