//! Legacy Parquet files read from any location of the storage layer, row group by row group: only the
//! footer and the byte ranges of the row group being decoded are ever in memory, never the whole file.
//!
//! Every read is pinned to the version listed (`If-Match` on its ETag: blob storage refuses a read of a
//! blob replaced since, and the local store compares the file's size, time and inode the same way), so a
//! file replaced during a migration fails the read instead of mixing two versions. The file's identity is a
//! hash of what it holds ([`Opened::identity`]): its size and its footer, which describes every row group,
//! column chunk and statistic, read anyway.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use sha2::{Digest, Sha256};

/// The 8 bytes that end a Parquet file: the footer's length and `PAR1`.
const TAIL: u64 = 8;
/// A footer longer than this is not one a writer of sentiment records makes: refused before it is read.
const MAX_FOOTER_BYTES: u64 = 64 * 1024 * 1024;

/// Rows per decoded batch: small enough that a batch of article-length texts stays a few MB.
pub const BATCH_ROWS: usize = 4_096;

/// One object, read in ranges, every range of the same version.
#[derive(Clone)]
pub struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    /// The ETag of the version being read; a read of any other version fails.
    version: Option<String>,
}

impl ObjectFile {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64, version: Option<String>) -> Self {
        Self { store, path, size, version }
    }

    async fn read(&self, range: Range<u64>) -> parquet::errors::Result<Bytes> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), if_match: self.version.clone(), ..GetOptions::default() };
        let got = self.store.get_opts(&self.path, options).await.map_err(|e| ParquetError::External(Box::new(e)))?;
        got.bytes().await.map_err(|e| ParquetError::External(Box::new(e)))
    }
}

impl AsyncFileReader for ObjectFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.read(range).await }.boxed()
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

/// An opened file: its identity, its row count (from the footer) and a way to stream its rows.
pub struct Opened {
    builder: ParquetRecordBatchStreamBuilder<ObjectFile>,
    /// The file and its decoded footer again, for reading a sample beside the stream.
    file: ObjectFile,
    metadata: ArrowReaderMetadata,
    identity: [u8; 32],
}

impl Opened {
    /// Reads the footer once: it gives the file's identity and its metadata. Types come from the Parquet
    /// schema alone, never from the Arrow schema a writer may embed in the footer: arrow-ipc 58 panics
    /// (`unimplemented!`) on a type id it does not know in that flatbuffer (found by tests/fuzz.rs), and a
    /// legacy file's Parquet types say all the layout needs.
    pub async fn new(file: ObjectFile) -> parquet::errors::Result<Self> {
        let size = file.size;
        if size < TAIL + 4 {
            return Err(ParquetError::General(format!("{size} bytes are too few for a Parquet file")));
        }
        let tail: [u8; TAIL as usize] =
            file.read(size - TAIL..size).await?.as_ref().try_into().map_err(|_| ParquetError::General("a short read of the file's end".into()))?;
        let length = FooterTail::try_new(&tail)?.metadata_length() as u64;
        if length > MAX_FOOTER_BYTES || length + TAIL + 4 > size {
            return Err(ParquetError::General(format!("the footer declares {length} bytes in a file of {size}")));
        }
        let footer = file.read(size - TAIL - length..size - TAIL).await?;
        let identity = identity(size, &footer, &tail);
        let decoding = std::panic::AssertUnwindSafe(async { ParquetMetaDataReader::decode_metadata(&footer) }).catch_unwind();
        let metadata = decoding.await.map_err(decoder_panicked)??;
        check_column_chunks(&metadata, size)?;
        let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), options)?;
        let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(file.clone(), metadata.clone());
        Ok(Self { builder, file, metadata, identity })
    }

    /// The first `rows` rows of the first row group (fewer in a smaller file): what layout inference reads.
    /// Always the same rows of the same bytes, so a resumed migration infers what the first run did. Reads
    /// at most that row group's column chunks.
    pub fn sample(&self, rows: usize) -> impl std::future::Future<Output = parquet::errors::Result<arrow_array::RecordBatch>> + Send + 'static {
        use futures::TryStreamExt;
        // Owned parts only: the builder is not `Sync`, so a future borrowing `self` could not be sent.
        let (file, metadata, schema) = (self.file.clone(), self.metadata.clone(), self.schema().clone());
        async move {
            if metadata.metadata().num_row_groups() == 0 || rows == 0 {
                return Ok(arrow_array::RecordBatch::new_empty(schema));
            }
            let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(file, metadata)
                .with_row_groups(vec![0])
                .with_limit(rows)
                .with_batch_size(rows.min(BATCH_ROWS))
                .build()?;
            let batches: Vec<_> = Decoded { inner: Some(stream) }.try_collect().await?;
            arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| ParquetError::General(e.to_string()))
        }
    }

    /// The file's path in its store.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Nulls in the column `name` by the footer's statistics, when every row group records them.
    pub fn null_count(&self, name: &str) -> Option<u64> {
        let metadata = self.metadata.metadata();
        let leaf = metadata.file_metadata().schema_descr().columns().iter().position(|c| c.path().string() == name)?;
        metadata.row_groups().iter().map(|group| group.column(leaf).statistics().and_then(|s| s.null_count_opt())).sum()
    }

    /// Per numeric top-level column, its smallest and largest value over every row group, where each row
    /// group's statistics record them.
    pub fn column_ranges(&self) -> std::collections::HashMap<String, (f64, f64)> {
        use parquet::file::statistics::Statistics as S;
        let metadata = self.metadata.metadata();
        let mut ranges = std::collections::HashMap::new();
        for (leaf, column) in metadata.file_metadata().schema_descr().columns().iter().enumerate() {
            let range = metadata.row_groups().iter().try_fold(None::<(f64, f64)>, |range, group| {
                let (lo, hi) = match group.column(leaf).statistics()? {
                    S::Int32(s) => (f64::from(*s.min_opt()?), f64::from(*s.max_opt()?)),
                    S::Int64(s) => (*s.min_opt()? as f64, *s.max_opt()? as f64),
                    S::Float(s) => (f64::from(*s.min_opt()?), f64::from(*s.max_opt()?)),
                    S::Double(s) => (*s.min_opt()?, *s.max_opt()?),
                    _ => return None,
                };
                Some(Some(range.map_or((lo, hi), |(a, b): (f64, f64)| (a.min(lo), b.max(hi)))))
            });
            let finite = range.flatten().filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
            if let (Some(range), 1) = (finite, column.path().parts().len()) {
                ranges.insert(column.name().to_string(), range);
            }
        }
        ranges
    }

    /// SHA-256 of the file's size and footer: the same bytes have the same identity wherever they lie and
    /// however their URL is spelt, and a file changed anywhere has another footer (its chunks' sizes,
    /// offsets or statistics change).
    pub fn identity(&self) -> [u8; 32] {
        self.identity
    }

    /// The value the writer put under `key` in the footer's key-value metadata.
    pub fn footer_value(&self, key: &str) -> Option<&str> {
        let pairs = self.builder.metadata().file_metadata().key_value_metadata()?;
        pairs.iter().find(|pair| pair.key == key).map(|pair| pair.value.as_deref().unwrap_or_default())
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

    /// Record batches of only the top-level `columns` (in schema order): the others' pages are not read.
    pub fn stream_columns(self, columns: &[usize]) -> parquet::errors::Result<Decoded> {
        let mask = parquet::arrow::ProjectionMask::roots(self.builder.parquet_schema(), columns.iter().copied());
        Ok(Decoded { inner: Some(self.builder.with_batch_size(BATCH_ROWS).with_projection(mask).build()?) })
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

fn identity(size: u64, footer: &[u8], tail: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"sentiment-lake legacy file v1\0");
    hash.update(size.to_le_bytes());
    hash.update(footer);
    hash.update(tail);
    hash.finalize().into()
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
