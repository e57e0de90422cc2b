//! The sentiment table's schema: Iceberg field ids, names, types and nullability, the default partition
//! spec, and the Arrow schema derived from them.
//!
//! Field ids are part of the table's contract (readers such as PyIceberg, DuckDB and Dremio resolve columns by
//! id), so they are constants here and never renumbered. Nested ids (map keys/values, list elements, struct
//! members) follow the 22 top-level ids. This module does not validate values; see [`crate::ingest::validate`].

pub mod arrow;
pub mod dead_letter;
pub mod extension;
mod raw;
mod record;
mod table;

pub use self::arrow::RecordBatchBuilder;
pub use self::raw::{RawEntity, RawFloatMap, RawRecord, RawSourceMetadata, Text};
pub use self::record::{Entity, FloatMap, SentimentRecord};
#[cfg(test)]
pub(crate) use self::table::tests_support;
pub use self::table::{
    column, default_partition_spec, field_id, normalize_ticker, partition_spec, sentiment_arrow_schema, sentiment_schema, Layout, ENTITY_TEXT,
    ENTITY_TYPE, FIRST_PARTITION_FIELD_ID, MAX_TICKER_LEN,
};
