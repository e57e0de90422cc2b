//! The rollup table kept in step with the records table: which rollup state answers which records
//! snapshot ([`cover`]), reading records files and rollup rows ([`read`]), following each commit and
//! rebuilding ([`follow`]), re-aggregating partial rows ([`compact`]), and checking the rollup against raw rows and answering a window from both
//! ([`verify`]).
//!
//! Uses the pure aggregates of [`crate::rollup`], and [`crate::lake::files`], [`crate::lake::table`],
//! [`crate::lake::catalog`] and the lake's targets; the lake's door, maintenance and the engines use it.

mod compact;
pub mod cover;
mod follow;
mod read;
mod verify;

pub use self::compact::{compact, RollupCompaction, RollupCompactionReport};
pub use self::cover::{base, Base, Uncovered, COVERS_PROPERTY, FLOORED_COVERS_PROPERTY, MINUTE_FLOOR_PROPERTY};
pub use self::follow::{commit_partials, follow, live_rollup_files, rebuild, rebuild_minute_floor, FollowOptions, FollowReport, DEFAULT_MINUTE_DAYS};
pub use self::read::{added_files, aggregate, live_files, rollup_rows};
pub use self::verify::{answer_partials, verify, AnsweredFrom, Mismatch, VerifyReport};
