//! Legacy Parquet files read from any location of the storage layer, row group by row group: only the
//! footer and the byte ranges of the row group being decoded are ever in memory, never the whole file.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

/// Rows per decoded batch: small enough that a batch of article-length texts stays a few MB.
pub const BATCH_ROWS: usize = 4_096;

/// One object, read in ranges.
pub struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl ObjectFile {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        Self { store, path, size }
    }
}

impl AsyncFileReader for ObjectFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e))) }.boxed()
    }

    fn get_metadata<'a>(&'a mut self, _options: Option<&'a ArrowReaderOptions>) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new().load_and_finish(self, size).await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// An opened file: its row count (from the footer) and a way to stream its rows.
pub struct Opened {
    builder: ParquetRecordBatchStreamBuilder<ObjectFile>,
}

impl Opened {
    /// Types come from the Parquet schema alone, never from the Arrow schema a writer may embed in the
    /// footer: arrow-ipc 58 panics (`unimplemented!`) on a type id it does not know in that flatbuffer
    /// (found by tests/fuzz.rs), and a legacy file's Parquet types say all the layout needs.
    pub async fn new(file: ObjectFile) -> parquet::errors::Result<Self> {
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        Ok(Self { builder: ParquetRecordBatchStreamBuilder::new_with_options(file, options).await? })
    }

    pub fn rows(&self) -> u64 {
        self.builder.metadata().file_metadata().num_rows().max(0) as u64
    }

    pub fn schema(&self) -> &arrow_schema::SchemaRef {
        self.builder.schema()
    }

    /// Record batches from row `skip` on, row groups in order (earlier row groups are not read).
    pub fn stream(self, skip: u64) -> parquet::errors::Result<ParquetRecordBatchStream<ObjectFile>> {
        self.builder.with_batch_size(BATCH_ROWS).with_offset(skip as usize).build()
    }
}
