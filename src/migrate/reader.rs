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
        let size = file.size;
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let opening = std::panic::AssertUnwindSafe(ParquetRecordBatchStreamBuilder::new_with_options(file, options)).catch_unwind();
        let builder = opening.await.map_err(decoder_panicked)??;
        check_column_chunks(builder.metadata(), size)?;
        Ok(Self { builder })
    }

    pub fn rows(&self) -> u64 {
        self.builder.metadata().file_metadata().num_rows().max(0) as u64
    }

    pub fn schema(&self) -> &arrow_schema::SchemaRef {
        self.builder.schema()
    }

    /// Record batches from row `skip` on, row groups in order (earlier row groups are not read).
    pub fn stream(self, skip: u64) -> parquet::errors::Result<Decoded> {
        Ok(Decoded { inner: Some(self.builder.with_batch_size(BATCH_ROWS).with_offset(skip as usize).build()?) })
    }
}

/// A legacy file's record batches. parquet 58 and arrow 58 panic on some corrupt pages (bit-packed runs
/// longer than their buffer, validity bitmaps shorter than their arrays; tests/fuzz.rs finds them within a
/// few thousand mutated files) instead of returning an error: a panic while decoding ends this stream with
/// an error, so the file is refused as unreadable and the files beside it go on.
pub struct Decoded {
    inner: Option<ParquetRecordBatchStream<ObjectFile>>,
}

impl futures::Stream for Decoded {
    type Item = parquet::errors::Result<arrow_array::RecordBatch>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use futures::StreamExt;
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll_next_unpin(cx))) {
            Ok(polled) => polled,
            Err(panic) => {
                self.inner = None;
                std::task::Poll::Ready(Some(Err(decoder_panicked(panic))))
            }
        }
    }
}

fn decoder_panicked(panic: Box<dyn std::any::Any + Send>) -> ParquetError {
    let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
    ParquetError::General(format!("the Parquet decoder failed on this file: {message}"))
}

/// Refuses a footer whose column chunks lie outside the file: parquet 58 asserts on a negative offset or
/// length when it fetches a row group (a panic, found by tests/fuzz.rs) instead of returning an error.
fn check_column_chunks(metadata: &ParquetMetaData, file_size: u64) -> parquet::errors::Result<()> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, column) in group.columns().iter().enumerate() {
            let start = column.dictionary_page_offset().unwrap_or_else(|| column.data_page_offset());
            let length = column.compressed_size();
            let inside = start >= 0 && length >= 0 && (start as u64).checked_add(length as u64).is_some_and(|end| end <= file_size);
            if !inside {
                return Err(ParquetError::General(format!(
                    "row group {g}, column {c}: the footer places it at {start}..+{length}, outside the file's {file_size} bytes"
                )));
            }
        }
    }
    Ok(())
}
