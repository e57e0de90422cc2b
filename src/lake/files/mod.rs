//! Data files: rows written as Parquet under the table's partition paths ([`writer`]), described for the
//! manifest as iceberg's writer would ([`data_file`]), at paths where no partition value can escape the
//! table ([`paths`]).
//!
//! Uses [`crate::lake::error`] and the schema; the commit and maintenance use it.

mod data_file;
pub mod paths;
mod writer;

pub use self::writer::{delete, write_data_files, ROW_GROUP_LIMIT_PROPERTY};
