//! Staging and the exactly-once ledger: segments staged durably per table identity ([`staging`]), the
//! committed watermarks and awaited ranges kept in the table's properties ([`ledger`]), the dead letters
//! replays brought back ([`replayed`]), which staged
//! entries the next pass commits ([`plan`]), and where entries that cannot be committed are kept
//! ([`quarantine`]).
//!
//! Uses [`crate::lake::error`], storage and the schema; everything that commits uses it.

pub mod ledger;
pub mod plan;
mod quarantine;
pub mod replayed;
mod staging;

pub use self::ledger::{
    commit_landed, summary_watermarks, Awaited, Awaiting, CommittedState, Enqueued, Watermarks, ADDED_BY_SOURCE_SUMMARY, AWAITING_PROPERTY,
    COMMIT_ID_PROPERTY, ENQUEUED_PROPERTY, LEDGER_FORMAT_PROPERTY, PARTIAL_SUMMARY, RECENT_COMMITS_PROPERTY, WATERMARKS_PROPERTY,
};
pub use self::plan::{next_pass, rows_taken, PassBounds, PassPlan, SourcePass};
pub use self::quarantine::{Quarantine, QuarantineRecord, StoredEnvelope};
pub use self::replayed::{Replayed, REPLAYED_ADDED_SUMMARY, REPLAYED_PROPERTY};
pub(crate) use self::staging::{decode, decode_checked};
pub use self::staging::{summary_path, EntryKind, Listing, Segment, StagedEntry, Staging, StagingArea, Summary, SEQUENCE_COLUMN};
