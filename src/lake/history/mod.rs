//! A table's history moved on purpose: `main` rolled back to an earlier snapshot with the ranges it takes
//! out awaited from a replay ([`rollback`]), optional columns added to the records table ([`evolve`]),
//! and snapshots named so that expiry keeps them ([`tags`]).
//!
//! Uses [`crate::lake::catalog`], [`crate::lake::table`] and [`crate::lake::stage`] (the ledger); the
//! lake's door uses it.

mod evolve;
mod rollback;
mod tags;

pub use self::evolve::{add_column, extra_columns, ExtraColumnsCache, EXTRA_COLUMNS_TTL};
pub use self::rollback::{release_awaited, reset, rollback, watermarks_at, RollbackReport, SourceReset};
pub use self::tags::{create_tag, tagged_watermarks, tags, Tag};
