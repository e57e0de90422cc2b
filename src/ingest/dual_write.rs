//! Dual-write (the seed's 4.3): while the old system is still read, the rows each batch stages are also
//! written in its per-ticker Parquet layout, so its readers keep seeing new data until cutover and
//! `reconcile` can compare the two stores.
//!
//! Layout: `<root>/<TICKER>/<source hash>-<first>-<last>.parquet` with the old writer's columns (`id`,
//! `symbol`, `created_at` as UTC microseconds, `text`, `compound`, `source`), which the migrator reads
//! without a mapping file. A file's name is the batch's source and sequence range, so a redelivered batch
//! rewrites the same files instead of adding copies. The ticker is data: it is escaped as one path segment.
//!
//! Rows of migration sources are never written back: the legacy store would offer them for migration again.
//! Every file carries [`DUAL_WRITE_MARKER`] in its footer, so that the migrator (which reads this very
//! store, by blob trigger or at cutover) knows its rows are in the table already.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use object_store::path::{Path, PathPart};
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::file::hex;
use crate::lake::LakeError;
use crate::schema::column;
use crate::storage::{Location, OpenedLocation, StorageError, StorageSettings};

/// Sources that are migrations of the legacy store (`legacy+sha256:<content hash>`, and
/// `legacy+<file>#<version>` from earlier versions).
pub const MIGRATION_SOURCE_PREFIX: &str = "legacy+";
/// The footer key every dual-written file carries (its value: the batch's source and range): its rows
/// are in the table already, so `migrate` refuses the file unless told otherwise.
pub const DUAL_WRITE_MARKER: &str = "sentiment-lake.dual-write";
/// The folder of rows without a ticker.
const NO_TICKER: &str = "_no_ticker";

/// Where dual-written files go.
#[derive(Clone)]
pub struct DualWrite {
    root: OpenedLocation,
}

impl std::fmt::Debug for DualWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualWrite").field("root", &self.root.location.url()).finish()
    }
}

fn legacy_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("symbol", DataType::Utf8, true),
        Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("text", DataType::Utf8, false),
        Field::new("compound", DataType::Float64, true),
        Field::new("source", DataType::Utf8, false),
    ]))
}

impl DualWrite {
    /// A directory, `file://` or `abfss://` location (reached with the warehouse's credentials).
    pub fn open(location: &str, settings: &StorageSettings) -> Result<Self, StorageError> {
        Ok(Self { root: OpenedLocation::open(Location::parse(location)?, settings)? })
    }

    pub fn url(&self) -> String {
        self.root.location.url()
    }

    /// Writes `records` (rows in the table's Arrow schema) of one staged batch; returns the paths written.
    pub async fn write(&self, source: &str, range: (i64, i64), records: &RecordBatch) -> Result<Vec<String>, LakeError> {
        if source.starts_with(MIGRATION_SOURCE_PREFIX) || records.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let legacy = to_legacy(records)?;
        let tickers = legacy.column(1).as_string::<i32>();
        let mut groups: std::collections::BTreeMap<&str, Vec<u32>> = std::collections::BTreeMap::new();
        for row in 0..legacy.num_rows() {
            let ticker = if tickers.is_null(row) { NO_TICKER } else { tickers.value(row) };
            groups.entry(ticker).or_default().push(row as u32);
        }
        let stem = format!("{}-{}-{}.parquet", hex(&Sha256::digest(source.as_bytes())[..8]), range.0, range.1);
        let marker = KeyValue::new(DUAL_WRITE_MARKER.to_string(), format!("{source}#{}-{}", range.0, range.1));
        let properties = WriterProperties::builder().set_key_value_metadata(Some(vec![marker])).build();
        let mut written = Vec::with_capacity(groups.len());
        for (ticker, rows) in groups {
            let part = arrow_select::take::take_record_batch(&legacy, &UInt32Array::from(rows))?;
            let mut body = Vec::new();
            let mut writer = ArrowWriter::try_new(&mut body, part.schema(), Some(properties.clone()))
                .map_err(|e| LakeError::Config(format!("dual-write: {e}")))?;
            writer.write(&part).and_then(|_| writer.close()).map_err(|e| LakeError::Config(format!("dual-write: {e}")))?;
            let path = Path::from_iter([PathPart::from(ticker), PathPart::from(stem.as_str())]);
            self.root.store.put(&path, bytes::Bytes::from(body).into()).await.map_err(|e| LakeError::storage("put", path.to_string(), e))?;
            written.push(path.to_string());
        }
        Ok(written)
    }
}

/// The table's rows in the old writer's columns.
fn to_legacy(records: &RecordBatch) -> Result<RecordBatch, LakeError> {
    let get = |name: &str| -> Result<ArrayRef, LakeError> {
        records.column_by_name(name).cloned().ok_or_else(|| LakeError::Config(format!("dual-write: the batch has no {name} column")))
    };
    let cast = |array: ArrayRef, to: &DataType| arrow_cast::cast(&array, to).map_err(LakeError::from);
    let schema = legacy_schema();
    let columns = vec![
        get(column::MESSAGE_ID)?,
        get(column::TICKER)?,
        cast(get(column::EVENT_TIMESTAMP)?, schema.field(2).data_type())?,
        get(column::TEXT_CONTENT)?,
        cast(get(column::SENTIMENT_SCORE)?, &DataType::Float64)?,
        get(column::SOURCE_SYSTEM)?,
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticker_is_one_escaped_path_segment() {
        for ticker in ["../etc", "A/B", "..", "BRK.B"] {
            let path = Path::from_iter([PathPart::from(ticker), PathPart::from("x.parquet")]);
            assert_eq!(path.parts().count(), 2, "{ticker} -> {path}");
            assert!(!path.as_ref().starts_with("../") && path.as_ref() != "../x.parquet", "{path}");
        }
    }
}
