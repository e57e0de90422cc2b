//! The data's quality, measured at every commit (issue #36): what each source's committed rows and dead
//! letters looked like ([`profile`]), the `sentiment_quality` table that keeps one row per commit and source
//! ([`table`]), how far a model's score distribution moved from its trailing week ([`drift`]), and the
//! quality panel's series ([`series`]).
//!
//! Pure: no I/O. Uses the schema (records' and dead letters' columns); the lake (which profiles every
//! commit pass and appends the rows), maintenance (the drift signal) and the query API (the quality panel)
//! use it.

pub mod drift;
pub mod profile;
pub mod series;
pub mod table;

pub use self::drift::{drift, Drift, DriftPolicy, DriftSpans};
pub use self::profile::{Distribution, DistributionKey, Profiled, Profiles, SourceProfile};
pub use self::table::{quality_arrow_schema, quality_partition_spec, quality_schema, QualityRow};
