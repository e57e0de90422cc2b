//! The tail: what is staged for the records table above a snapshot's watermarks, read as part of answers,
//! so an acknowledged event is visible within seconds whatever the commit interval.
//!
//! The tail of a snapshot is exactly what the next commit would take from it: the committer's own planner
//! ([`crate::lake::stage::next_pass`]) over one listing, unbounded, with the snapshot's watermarks, awaited
//! ranges and retired sources, so entries behind a gap still in its grace period, inside a rolled-back
//! range or below a watermark are never shown; rows are selected as the commit selects them (above the
//! watermark, above a rollback's floor, a sequence number once). An answer is a snapshot plus its tail:
//! if the commit lands meanwhile, the snapshot still lacks those rows, so nothing is counted twice; an entry
//! that is gone when read ([`LakeError::TailMoved`]) is answered again from the newer snapshot.
//!
//! Aggregates read each segment's summary (its rows per minute, written beside it at staging), never the
//! segment, except where a window edge cuts a minute or an entry overlaps another or the watermark; records
//! and toxicity read the rows, decoded once per instance and bounded by bytes ([`TailReader::rows`]).
//!
//! Uses [`crate::lake::stage`], the retired sources of [`crate::lake::commit`], and the pure
//! [`crate::rollup`]; the embedded engine uses it.

mod reader;
mod receipt;

pub use self::reader::{Tail, TailEntry, TailReader, DEFAULT_MAX_TAIL_BYTES};
pub use self::receipt::{Receipt, SourceReceipt, TailReceipt};
