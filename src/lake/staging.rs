//! Staged segments: what an invocation has accepted but not yet committed.
//!
//! An ingest invocation writes one Parquet segment per target table (rows plus a `_sequence_number`
//! column, source coordinates in the file's key-value metadata) and only then acknowledges the batch. The
//! committer later folds many segments into few data files and one snapshot. A segment is deleted only after
//! the table's watermark covers it, so a crash at any point leaves either the segment or the committed rows,
//! never neither.
//!
//! Segment names are UUIDv7 (time-ordered), so listing order is staging order.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::LakeError;

pub const SEQUENCE_COLUMN: &str = "_sequence_number";
const STAGING_DIR: &str = "_staging";
const SOURCE_KEY: &str = "sentiment-lake.source";
const INVOCATION_KEY: &str = "sentiment-lake.invocation-id";

/// Rows bound for one table from one source, with the source sequence number of each row.
#[derive(Debug, Clone)]
pub struct Segment {
    pub source: String,
    pub invocation_id: Option<String>,
    pub rows: RecordBatch,
    pub sequence_numbers: Vec<i64>,
}

/// A segment read back from storage, with the path it must be deleted by.
#[derive(Debug, Clone)]
pub struct StagedSegment {
    pub path: String,
    pub segment: Segment,
}

/// Reads and writes segments under `_staging/<table>/` of the warehouse.
#[derive(Clone)]
pub struct Staging {
    operator: opendal::Operator,
}

impl Staging {
    pub fn new(operator: opendal::Operator) -> Self {
        Self { operator }
    }

    fn dir(table: &str) -> String {
        format!("{STAGING_DIR}/{table}/")
    }

    /// Durably stages a segment; returns its path.
    pub async fn write(&self, table: &str, segment: &Segment) -> Result<String, LakeError> {
        let bytes = encode(segment)?;
        let path = format!("{}{}.parquet", Self::dir(table), uuid::Uuid::now_v7());
        self.operator.write(&path, bytes).await.map_err(LakeError::storage)?;
        Ok(path)
    }

    /// Every staged segment of `table`, oldest first.
    pub async fn list(&self, table: &str) -> Result<Vec<String>, LakeError> {
        let dir = Self::dir(table);
        let entries = match self.operator.lister(&dir).await {
            Ok(lister) => lister.try_collect::<Vec<_>>().await.map_err(LakeError::storage)?,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LakeError::storage(e)),
        };
        let mut paths: Vec<String> =
            entries.into_iter().map(|e| e.path().to_string()).filter(|p| p.ends_with(".parquet")).collect();
        paths.sort();
        Ok(paths)
    }

    pub async fn read(&self, path: &str) -> Result<StagedSegment, LakeError> {
        let bytes = self.operator.read(path).await.map_err(LakeError::storage)?.to_bytes();
        let segment = decode(bytes).map_err(|e| LakeError::Corrupt(format!("staged segment {path}: {e}")))?;
        Ok(StagedSegment { path: path.to_string(), segment })
    }

    /// Removes committed segments. A segment already gone (another committer removed it) is fine.
    pub async fn delete(&self, paths: &[String]) -> Result<(), LakeError> {
        for path in paths {
            match self.operator.delete(path).await {
                Ok(()) => {}
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                Err(e) => return Err(LakeError::storage(e)),
            }
        }
        Ok(())
    }
}

fn encode(segment: &Segment) -> Result<Bytes, LakeError> {
    let rows = &segment.rows;
    let mut fields: Vec<Arc<Field>> = rows.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(SEQUENCE_COLUMN, DataType::Int64, false)));
    let mut columns = rows.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(segment.sequence_numbers.clone())));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(LakeError::arrow)?;
    let mut metadata = vec![KeyValue::new(SOURCE_KEY.to_string(), segment.source.clone())];
    if let Some(id) = &segment.invocation_id {
        metadata.push(KeyValue::new(INVOCATION_KEY.to_string(), id.clone()));
    }
    // Segments live for a commit interval: favour write speed over size.
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid")))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props)).map_err(LakeError::parquet)?;
    writer.write(&batch).map_err(LakeError::parquet)?;
    writer.close().map_err(LakeError::parquet)?;
    Ok(Bytes::from(buffer))
}

fn decode(bytes: Bytes) -> Result<Segment, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
    let kv = builder.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let lookup = |key: &str| kv.iter().find(|e| e.key == key).and_then(|e| e.value.clone());
    let source = lookup(SOURCE_KEY).ok_or("no source in metadata")?;
    let invocation_id = lookup(INVOCATION_KEY);
    let reader = builder.build().map_err(|e| e.to_string())?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let Some(first) = batches.first() else { return Err("no row groups".into()) };
    let schema = first.schema();
    let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    let seq_index = schema.index_of(SEQUENCE_COLUMN).map_err(|e| e.to_string())?;
    let sequence_numbers = batch
        .column(seq_index)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("sequence column is not int64")?
        .values()
        .to_vec();
    let mut rows = batch;
    rows.remove_column(seq_index);
    Ok(Segment { source, invocation_id, rows, sequence_numbers })
}
