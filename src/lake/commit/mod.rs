//! The committer: staged entries of a table committed in bounded passes, exactly once ([`pass`]), and
//! finished migration sources retired into the migration ledger table ([`retired`]), replayed dead
//! letters committed once each ([`replay`]), and the passes' quality profiles appended ([`quality`]).
//!
//! Uses [`crate::lake::stage`] (what is staged and what the ledger says), [`crate::lake::files`] (rows
//! written), [`crate::lake::table`] and [`crate::lake::catalog`] (the new state published); the lake's
//! door and other writers of staged entries (the Dremio writer) use it.

mod pass;
mod policy;
mod quality;
mod replay;
pub mod retired;

pub use self::pass::{commit_staged, load_pass, tidy_listing, CommitContext, CommitReport, Landed, Loaded, StagedWriter};
pub use self::policy::CommitPolicy;
pub use self::quality::append_quality;
pub use self::replay::{commit_replay, ReplayCommit, ReplayRows};
pub use self::retired::{RetireReport, RetiredSource};
