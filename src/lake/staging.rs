//! Staged segments: what an invocation has accepted but not yet committed.
//!
//! An ingest invocation writes one Parquet segment per target table (rows plus a `_sequence_number`
//! column, source coordinates in the file's key-value metadata) and only then acknowledges the batch. The
//! committer later folds many segments into few data files and one snapshot. A segment is deleted only after
//! the table's watermark covers it, so a crash at any point leaves either the segment or the committed rows,
//! never neither.
//!
//! Layout: `_staging/<table>/<source key>/<UUIDv7>.parquet`. The source key (a hash of the source id)
//! groups a source's segments so a commit pass can take whole sources, and UUIDv7 names are time-ordered,
//! so within a source listing order is staging order.

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

use sha2::{Digest, Sha256};

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

    fn source_dir(table: &str, source: &str) -> String {
        let digest = Sha256::digest(source.as_bytes());
        let key: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{key}/", Self::dir(table))
    }

    /// Durably stages a segment; returns its path.
    pub async fn write(&self, table: &str, segment: &Segment) -> Result<String, LakeError> {
        let bytes = encode(segment)?;
        let path = format!("{}{}.parquet", Self::source_dir(table, &segment.source), uuid::Uuid::now_v7());
        self.operator.write(&path, bytes).await.map_err(LakeError::storage)?;
        Ok(path)
    }

    /// Every staged segment of `table`, grouped by source, oldest first within a source.
    pub async fn list(&self, table: &str) -> Result<Vec<String>, LakeError> {
        let dir = Self::dir(table);
        let entries = match self.operator.lister_with(&dir).recursive(true).await {
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

/// Splits a [`Staging::list`] result into passes of whole sources, each pass holding at most
/// `max_segments` segments unless one source alone has more (it is then a pass of its own, so every pass
/// makes progress). A source is never split across passes: the committer drops rows at or below a source's
/// watermark, so committing a source's later segments before its earlier ones would lose the earlier ones.
pub fn passes(paths: &[String], max_segments: usize) -> Vec<Vec<String>> {
    let source_of = |path: &str| path.rsplit_once('/').map_or(String::new(), |(dir, _)| dir.to_string());
    let mut groups: Vec<Vec<String>> = Vec::new();
    for path in paths {
        match groups.last_mut() {
            Some(group) if source_of(&group[0]) == source_of(path) => group.push(path.clone()),
            _ => groups.push(vec![path.clone()]),
        }
    }
    let mut passes: Vec<Vec<String>> = Vec::new();
    for group in groups {
        match passes.last_mut() {
            Some(pass) if pass.len() + group.len() <= max_segments => pass.extend(group),
            _ => passes.push(group),
        }
    }
    passes
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_take_whole_sources_up_to_the_cap() {
        let paths: Vec<String> = ["t/a/1", "t/a/2", "t/a/3", "t/b/1", "t/c/1", "t/c/2", "t/d/1"].iter().map(|s| s.to_string()).collect();
        let as_str = |passes: Vec<Vec<String>>| passes.into_iter().map(|p| p.join(",")).collect::<Vec<_>>();
        assert_eq!(as_str(passes(&paths, 4)), vec!["t/a/1,t/a/2,t/a/3,t/b/1", "t/c/1,t/c/2,t/d/1"]);
        // A source larger than the cap is a pass of its own rather than being split.
        assert_eq!(as_str(passes(&paths, 2)), vec!["t/a/1,t/a/2,t/a/3", "t/b/1", "t/c/1,t/c/2", "t/d/1"]);
        assert_eq!(as_str(passes(&paths, 100)).len(), 1);
        assert!(passes(&[], 10).is_empty());
    }
}
