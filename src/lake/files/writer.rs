//! Rows -> Iceberg data files, partitioned by whatever default spec the loaded table has, one partition at a
//! time.
//!
//! Memory stays near the size of the rows themselves whatever the number of partitions a pass touches:
//! rows are grouped by partition as (batch, row) indices, and each partition is gathered, sorted and written
//! by one writer that is closed when the partition is done (a writer per open partition costs ~0.7 MB of
//! page buffers, which made a 7,000-partition pass need 4.8 GB); [`super::data_file`] encodes, uploads and
//! describes each file. Partitions are written in parallel, at most [`write_parallelism`] at once, each on
//! its own blocking thread, so a pass uses every core while holding only that many writers. Rows are
//! gathered in chunks of [`ROWS_PER_WRITE`], so no single array can reach Arrow's 2 GiB string-offset limit
//! however large the pass. Partition values come from the table's own spec (iceberg-rust's transforms), so a table created
//! with year/month/day, other columns or no partitioning gets correct values; directories are escaped
//! ([`super::paths`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;
use arrow_row::{RowConverter, SortField};
use futures::StreamExt;
use iceberg::arrow::{arrow_struct_to_literal, PartitionValueCalculator};
use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
use iceberg::table::Table;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, FileNameGenerator, LocationGenerator};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::data_file::DataFileSink;
use super::paths::{partition_path, EscapedLocationGenerator};
use crate::lake::error::LakeError;
use crate::schema::column::UNIQUE_PER_ROW;

/// Rows gathered into one Arrow batch at a time. With texts of at most 1 MiB, 1,024 rows stay far below
/// the 2 GiB a string column can hold.
pub const ROWS_PER_WRITE: usize = 1024;

/// Where each row of the pass goes: `(batch index, row index)` per partition.
type Rows = Vec<(usize, usize)>;

/// Writes `batches` (already in the table's Arrow schema, see `compat::conform`) as data files, sorted by
/// `sort_columns` within each file. `file_prefix` makes names traceable to the commit attempt. Files roll
/// over at `target_file_size` bytes, or the table's `write.target-file-size-bytes` when `None`.
pub async fn write_data_files(
    table: &Table,
    batches: &[RecordBatch],
    sort_columns: &[&str],
    file_prefix: &str,
    target_file_size: Option<usize>,
) -> Result<Vec<DataFile>, LakeError> {
    let batches: Arc<Vec<RecordBatch>> = Arc::new(batches.iter().filter(|b| b.num_rows() > 0).cloned().collect());
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let target_file_size = match target_file_size {
        Some(bytes) => bytes,
        None => metadata.table_properties().map_err(LakeError::iceberg("table properties"))?.write_target_file_size_bytes,
    };
    let locations = EscapedLocationGenerator::new(metadata).map_err(LakeError::iceberg("data location"))?;
    // One name generator for both: its counter is shared, so names stay unique.
    let names = DefaultFileNameGenerator::new(file_prefix.to_string(), None, DataFileFormat::Parquet);
    let codec = table_codec(metadata.properties());
    let row_group_rows = metadata.properties().get(ROW_GROUP_LIMIT_PROPERTY).and_then(|v| v.parse::<usize>().ok()).filter(|n| *n > 0);
    let sink_for = |size: FileSize| DataFileSink {
        file_io: table.file_io().clone(),
        schema: schema.clone(),
        locations: locations.clone(),
        names: names.clone(),
        properties: data_file_properties(&batches[0], codec, size, row_group_rows),
        min_compressed_column: matches!(size, FileSize::Small).then_some(MIN_COMPRESSED_COLUMN),
        target_file_size,
    };
    let (small, large) = (sink_for(FileSize::Small), sink_for(FileSize::Large));

    let groups: Vec<(Option<PartitionKey>, Rows)> = if spec.is_unpartitioned() {
        let all = batches.iter().enumerate().flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r))).collect();
        vec![(None, all)]
    } else {
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        group_by_partition(&refs, &spec, &schema)?
    };
    let sort_keys = Arc::new(SortKeys::new(&batches, sort_columns)?);
    let runtime = tokio::runtime::Handle::current();
    // Every started write is awaited, failed or not, so that a failure can delete all that was written.
    let written: Vec<(Vec<DataFile>, Option<LakeError>)> = futures::stream::iter(work_units(groups))
        .map(|unit| {
            let sink = if unit.rows() <= SMALL_FILE_ROWS { small.clone() } else { large.clone() };
            let (batches, sort_keys, runtime) = (batches.clone(), sort_keys.clone(), runtime.clone());
            async move {
                // Sorting, gathering and encoding are CPU work: a blocking thread each, off the async workers.
                let job = tokio::task::spawn_blocking(move || {
                    let refs: Vec<&RecordBatch> = batches.iter().collect();
                    runtime.block_on(unit.write(&sink, &refs, sort_keys.as_ref().as_ref()))
                });
                job.await.unwrap_or_else(|e| (Vec::new(), Some(LakeError::Task(e.to_string()))))
            }
        })
        .buffered(write_parallelism())
        .collect()
        .await;
    let mut files = Vec::new();
    let mut failure = None;
    for (mut closed, error) in written {
        files.append(&mut closed);
        failure = failure.or(error);
    }
    if let Some(e) = failure {
        delete(table, &files).await;
        return Err(e);
    }
    Ok(files)
}

/// Partitions written at once: one per core (at least two, so that a single-core host still overlaps one
/// partition's I/O with the next one's encoding), and no more than eight writers' buffers.
fn write_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8)
}

/// A free-text column of a small file holding fewer bytes than this is written uncompressed: zstd would
/// save at most a few KB and cost two codec contexts, 25 us on the benchmark machine (a tenth of a live
/// commit's CPU for three of the four free-text columns, docs/benchmarks.md).
const MIN_COMPRESSED_COLUMN: usize = 8 * 1024;

/// Files of at most this many rows are [`FileSize::Small`].
const SMALL_FILE_ROWS: usize = ROWS_PER_WRITE;

/// Whether a data file is small enough that only its free-text columns are worth compressing.
#[derive(Clone, Copy)]
enum FileSize {
    Small,
    Large,
}

/// Data files are what every query reads: compressed as the table's `write.parquet.compression-codec` and
/// `write.parquet.compression-level` say (zstd when unset, Iceberg's default codec; the level as
/// [`TableCodec::for_size`] chooses), with chunk statistics for pruning. Columns whose values are
/// (nearly) unique per row are written without a dictionary, which would only cost the hashing and then
/// be abandoned: ids, texts, titles and URLs, the event time, and every float (scores, intensities).
///
/// In a small file (a partition's few rows of one commit, the common case of a live commit) only the
/// free-text columns are compressed, and only those holding at least [`MIN_COMPRESSED_COLUMN`] bytes:
/// every other chunk holds at most a few KB of dictionary indices, booleans, numbers or short texts, where
/// compression saves little but costs codec contexts per chunk (parquet-rs creates a zstd compressor and
/// a decompressor for every chunk it writes, and each probes the CPU with a CPUID, which a hypervisor
/// traps: 12.5 us on the benchmark machine). Compaction merges a partition's small files, and once a file
/// holds more rows it is compressed throughout.
///
/// A table whose `write.parquet.row-group-limit` is set gets row groups of at most that many rows (the
/// rollup table: its readers prune by row-group statistics).
fn data_file_properties(sample: &RecordBatch, codec: TableCodec, size: FileSize, row_group_rows: Option<usize>) -> WriterProperties {
    let codec = codec.for_size(size);
    let default = match size {
        FileSize::Small => Compression::UNCOMPRESSED,
        FileSize::Large => codec,
    };
    let mut builder = WriterProperties::builder()
        .set_compression(default)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // Page locations serve readers that skip pages; a small file's chunks are one page each.
        .set_offset_index_disabled(matches!(size, FileSize::Small));
    for column in UNIQUE_PER_ROW {
        if sample.schema().index_of(column).is_ok() {
            let path = ColumnPath::from(*column);
            builder = builder.set_column_dictionary_enabled(path.clone(), false).set_column_compression(path, codec);
        }
    }
    for path in unique_valued_leaves(&sample.schema()) {
        builder = builder.set_column_dictionary_enabled(path, false);
    }
    if let Some(rows) = row_group_rows {
        builder = builder.set_max_row_group_row_count(Some(rows));
    }
    builder.build()
}

/// Parquet leaf columns of `schema` whose values are rarely repeated: every float or double (nested ones
/// too, such as map values) and the event time.
fn unique_valued_leaves(schema: &arrow_schema::Schema) -> Vec<ColumnPath> {
    let Ok(parquet) = parquet::arrow::ArrowSchemaConverter::new().convert(schema) else {
        return Vec::new();
    };
    parquet
        .columns()
        .iter()
        .filter(|leaf| {
            matches!(leaf.physical_type(), parquet::basic::Type::FLOAT | parquet::basic::Type::DOUBLE)
                || leaf.path().parts() == [crate::schema::column::EVENT_TIMESTAMP]
        })
        .map(|leaf| leaf.path().clone())
        .collect()
}

const CODEC_PROPERTY: &str = "write.parquet.compression-codec";
/// PyIceberg's name for the most rows a row group holds.
pub const ROW_GROUP_LIMIT_PROPERTY: &str = "write.parquet.row-group-limit";
const LEVEL_PROPERTY: &str = "write.parquet.compression-level";
/// zstd level of small files when the table names none: pyarrow's default, so what PyIceberg writes.
const SMALL_FILE_ZSTD_LEVEL: i32 = 1;
/// zstd level of larger files (compaction's output) when the table names none: parquet-mr's default, so
/// what Java Iceberg writes.
const LARGE_FILE_ZSTD_LEVEL: i32 = 3;

/// The table's Parquet compression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TableCodec {
    /// zstd at a level the table names.
    ZstdAt(ZstdLevel),
    /// zstd without a level: chosen per file size.
    Zstd,
    Other(Compression),
}

impl TableCodec {
    /// A level the table names is honoured. Without one, a small file of a live commit gets level 1, whose
    /// context costs a fraction of level 3's (a fresh context per column chunk, and these chunks are a few
    /// KB: most of the time went into setting the context up), and larger files level 3.
    fn for_size(self, size: FileSize) -> Compression {
        let level = |level: i32| Compression::ZSTD(ZstdLevel::try_new(level).expect("a valid zstd level"));
        match (self, size) {
            (TableCodec::ZstdAt(level), _) => Compression::ZSTD(level),
            (TableCodec::Zstd, FileSize::Small) => level(SMALL_FILE_ZSTD_LEVEL),
            (TableCodec::Zstd, FileSize::Large) => level(LARGE_FILE_ZSTD_LEVEL),
            (TableCodec::Other(codec), _) => codec,
        }
    }
}

/// The Parquet codec a table asks for. A codec this build does not write (gzip, brotli) or a bad level
/// falls back to zstd with a warning: another engine's setting must not stop commits.
fn table_codec(properties: &HashMap<String, String>) -> TableCodec {
    let level = properties.get(LEVEL_PROPERTY).map(|l| l.trim().parse::<i32>().ok());
    let codec = properties.get(CODEC_PROPERTY).map(|c| c.trim().to_ascii_lowercase());
    let chosen = match codec.as_deref() {
        None | Some("zstd") => match level {
            None => Some(TableCodec::Zstd),
            Some(level) => level.and_then(|l| ZstdLevel::try_new(l).ok()).map(TableCodec::ZstdAt),
        },
        Some("snappy") => Some(TableCodec::Other(Compression::SNAPPY)),
        Some("lz4") => Some(TableCodec::Other(Compression::LZ4_RAW)),
        Some("uncompressed") | Some("none") => Some(TableCodec::Other(Compression::UNCOMPRESSED)),
        Some(_) => None,
    };
    chosen.unwrap_or_else(|| {
        tracing::warn!(codec = ?codec, level = ?properties.get(LEVEL_PROPERTY), "The table's Parquet codec setting is not one this build writes; using zstd.");
        TableCodec::Zstd
    })
}

/// Partitions written by one blocking task: one partition of more than [`ROWS_PER_WRITE`] rows, or
/// consecutive partitions of at most that many rows together. Small partitions share one gather: a live
/// commit spreads a few thousand rows over hundreds of partitions, and gathering each on its own cost
/// more than encoding it (arrow's interleave sets up every source array's nested children per call).
struct WorkUnit {
    partitions: Vec<(Option<PartitionKey>, Rows)>,
}

/// Groups in order, cut into [`WorkUnit`]s.
fn work_units(groups: Vec<(Option<PartitionKey>, Rows)>) -> Vec<WorkUnit> {
    let mut units: Vec<WorkUnit> = Vec::new();
    let mut open: Option<WorkUnit> = None;
    for (key, rows) in groups {
        if rows.len() > ROWS_PER_WRITE {
            units.push(WorkUnit { partitions: vec![(key, rows)] });
            continue;
        }
        if open.as_ref().is_some_and(|unit| unit.rows() + rows.len() > ROWS_PER_WRITE) {
            units.extend(open.take());
        }
        open.get_or_insert_with(|| WorkUnit { partitions: Vec::new() }).partitions.push((key, rows));
    }
    units.extend(open);
    units
}

impl WorkUnit {
    fn rows(&self) -> usize {
        self.partitions.iter().map(|(_, rows)| rows.len()).sum()
    }

    /// Sorts each partition's rows, gathers them and writes one file (or, past the target size, several)
    /// per partition. Returns what was written even when a later partition failed, so it can be deleted.
    async fn write<L, F>(
        mut self,
        sink: &DataFileSink<L, F>,
        batches: &[&RecordBatch],
        sort_keys: Option<&SortKeys>,
    ) -> (Vec<DataFile>, Option<LakeError>)
    where
        L: LocationGenerator,
        F: FileNameGenerator,
    {
        if let Some(keys) = sort_keys {
            for (_, rows) in &mut self.partitions {
                rows.sort_by(|a, b| keys.compare(*a, *b));
            }
        }
        let mut files = Vec::new();
        let result = if self.partitions.len() == 1 {
            let (key, rows) = self.partitions.pop().expect("one partition");
            sink.write_partition(key.as_ref(), rows.chunks(ROWS_PER_WRITE).map(|chunk| gather(batches, chunk)), &mut files).await
        } else {
            let all: Rows = self.partitions.iter().flat_map(|(_, rows)| rows.iter().copied()).collect();
            match gather(batches, &all) {
                Ok(gathered) => {
                    let mut result = Ok(());
                    let mut offset = 0;
                    for (key, rows) in self.partitions {
                        let slice = gathered.slice(offset, rows.len());
                        offset += rows.len();
                        result = sink.write_partition(key.as_ref(), std::iter::once(Ok(slice)), &mut files).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
                Err(e) => Err(e),
            }
        };
        (files, result.err())
    }
}

fn gather(batches: &[&RecordBatch], rows: &[(usize, usize)]) -> Result<RecordBatch, LakeError> {
    Ok(arrow_select::interleave::interleave_record_batch(batches, rows)?)
}

/// Best effort: files of a failed write are unreferenced (orphan cleanup removes what this misses).
pub async fn delete(table: &Table, files: &[DataFile]) {
    for file in files {
        if let Err(e) = table.file_io().delete(file.file_path()).await {
            tracing::warn!(path = file.file_path(), error = %e, "Could not delete an unreferenced data file; orphan cleanup will.");
        }
    }
}

/// Rows grouped by their partition under the table's spec, partitions ordered by their (escaped) path.
fn group_by_partition(
    batches: &[&RecordBatch],
    spec: &iceberg::spec::PartitionSpec,
    schema: &iceberg::spec::SchemaRef,
) -> Result<Vec<(Option<PartitionKey>, Rows)>, LakeError> {
    let calculator = PartitionValueCalculator::try_new(spec, schema).map_err(LakeError::iceberg("partition transforms"))?;
    let partition_type = calculator.partition_type().clone();
    // Rows are told apart by the byte encoding of their partition values (arrow-row), so an Iceberg
    // literal is built once per partition, not once per row.
    let mut converter: Option<RowConverter> = None;
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut groups: Vec<(Struct, Rows)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let values = calculator.calculate(batch).map_err(LakeError::iceberg("partition values"))?;
        let columns = values.as_struct().columns().to_vec();
        let converter = match &mut converter {
            Some(converter) => converter,
            None => converter.insert(RowConverter::new(columns.iter().map(|c| SortField::new(c.data_type().clone())).collect())?),
        };
        let rows = converter.convert_columns(&columns)?;
        for r in 0..batch.num_rows() {
            let group = match index.get(rows.row(r).as_ref()) {
                Some(&g) => g,
                None => {
                    let literal = arrow_struct_to_literal(&values.slice(r, 1), &partition_type).map_err(LakeError::iceberg("partition values"))?;
                    let Some(Some(Literal::Struct(value))) = literal.into_iter().next() else {
                        return Err(LakeError::iceberg("partition values")(iceberg::Error::new(
                            iceberg::ErrorKind::DataInvalid,
                            "a row has no partition value",
                        )));
                    };
                    index.insert(rows.row(r).as_ref().to_vec(), groups.len());
                    groups.push((value, Vec::new()));
                    groups.len() - 1
                }
            };
            groups[group].1.push((b, r));
        }
    }
    let mut keyed: Vec<(String, PartitionKey, Rows)> = groups
        .into_iter()
        .map(|(value, rows)| {
            let key = PartitionKey::new(spec.clone(), schema.clone(), value);
            (partition_path(&key), key, rows)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, key, rows)| (Some(key), rows)).collect())
}

/// Row-comparable sort keys for every batch (arrow-row's byte encoding, so any column types compare).
struct SortKeys {
    rows: Vec<arrow_row::Rows>,
}

impl SortKeys {
    fn new(batches: &[RecordBatch], columns: &[&str]) -> Result<Option<Self>, LakeError> {
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let present: Vec<usize> = columns.iter().filter_map(|c| first.schema().index_of(c).ok()).collect();
        if present.is_empty() {
            return Ok(None);
        }
        let fields = present.iter().map(|&i| SortField::new(first.schema().field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields)?;
        let rows = batches
            .iter()
            .map(|batch| converter.convert_columns(&present.iter().map(|&i| batch.column(i).clone()).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self { rows }))
    }

    fn compare(&self, a: (usize, usize), b: (usize, usize)) -> std::cmp::Ordering {
        self.rows[a.0].row(a.1).cmp(&self.rows[b.0].row(b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(pairs: &[(&str, &str)]) -> TableCodec {
        table_codec(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn the_tables_codec_property_is_honoured_and_unknown_settings_fall_back_to_zstd() {
        let zstd = |level| Compression::ZSTD(ZstdLevel::try_new(level).unwrap());
        let both = |codec: TableCodec| (codec.for_size(FileSize::Small), codec.for_size(FileSize::Large));
        assert_eq!(both(codec(&[])), (zstd(1), zstd(3)), "no level named: level 1 for small files, 3 for large ones");
        assert_eq!(both(codec(&[(CODEC_PROPERTY, "ZSTD"), (LEVEL_PROPERTY, "9")])), (zstd(9), zstd(9)));
        assert_eq!(both(codec(&[(LEVEL_PROPERTY, "3")])), (zstd(3), zstd(3)));
        assert_eq!(both(codec(&[(CODEC_PROPERTY, "snappy")])), (Compression::SNAPPY, Compression::SNAPPY));
        assert_eq!(codec(&[(CODEC_PROPERTY, "lz4")]).for_size(FileSize::Large), Compression::LZ4_RAW);
        assert_eq!(codec(&[(CODEC_PROPERTY, "uncompressed")]).for_size(FileSize::Small), Compression::UNCOMPRESSED);
        for bad in [&[(CODEC_PROPERTY, "gzip")][..], &[(LEVEL_PROPERTY, "high")], &[(LEVEL_PROPERTY, "99")]] {
            assert_eq!(codec(bad), TableCodec::Zstd, "{bad:?}");
        }
    }

    #[test]
    fn floats_and_the_event_time_get_no_dictionary() {
        let paths: Vec<String> = unique_valued_leaves(&crate::schema::sentiment_arrow_schema()).iter().map(ColumnPath::string).collect();
        for expected in ["event_timestamp", "sentiment_score", "toxicity_score", "influence_score", "emotion_intensity_vector.key_value.value"] {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
        assert!(!paths.iter().any(|p| p == "ingestion_timestamp" || p == "ticker" || p.ends_with(".key")), "{paths:?}");
    }
}
