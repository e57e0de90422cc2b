//! One partition's rows as Iceberg data files: Parquet encoded in memory, uploaded in one write, and
//! described (counts, sizes, bounds) from the Parquet footer.
//!
//! This is what iceberg 0.10's `ParquetWriter` + `RollingFileWriter` + `DataFileWriter` do, minus what a
//! live commit of hundreds of small files paid for and did not need: an Arrow IPC schema serialised into
//! every footer (no Iceberg reader uses it: they resolve columns by field id), the NaN count visitor run
//! over every column rather than only the float ones, and a generic conversion of every chunk's statistics
//! through hash maps of boxed values (together a tenth of a commit's CPU, docs/benchmarks.md). The metrics
//! are the ones iceberg's writer records, field for field (a test compares the two): sizes, value and null
//! counts of every leaf column, NaN counts of float columns, and lower and upper bounds where the Parquet
//! statistics are exact (not truncated).
//!
//! A Parquet writer keeps a row group's encoded pages in memory until it closes the file anyway, so
//! encoding into a buffer and writing it once costs no more memory than streaming the footer last.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use iceberg::io::FileIO;
use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, PartitionKey, PrimitiveType, Schema, Struct, Type};
use iceberg::writer::file_writer::location_generator::{FileNameGenerator, LocationGenerator};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use crate::lake::error::LakeError;

/// Where and how a table's data files are written.
#[derive(Clone)]
pub(super) struct DataFileSink<L, F> {
    pub file_io: FileIO,
    pub schema: Arc<Schema>,
    pub locations: L,
    pub names: F,
    pub properties: WriterProperties,
    /// When set, a top-level column the properties compress is written uncompressed in a file whose first
    /// rows hold fewer than this many bytes of it: a codec context per chunk costs more than the few KB it
    /// would save (see `writer::data_file_properties`).
    pub min_compressed_column: Option<usize>,
    /// A file is closed and the next one started once it holds this many encoded bytes.
    pub target_file_size: usize,
}

/// A data file being filled.
struct OpenFile {
    path: String,
    writer: ArrowWriter<Vec<u8>>,
    /// NaN counts of the float columns, by field id: every float leaf has one, zero included, from the
    /// first chunk on ([`count_nans`]).
    nan_counts: HashMap<i32, u64>,
}

impl<L: LocationGenerator, F: FileNameGenerator> DataFileSink<L, F> {
    /// Writes `chunks` (rows of one partition, in the table's Arrow schema, in order) as one file, or as
    /// several once a file reaches the target size. Appends what it closed to `files` as it goes, so a
    /// failure leaves every written file listed for deletion.
    pub async fn write_partition(
        &self,
        key: Option<&PartitionKey>,
        chunks: impl Iterator<Item = Result<RecordBatch, LakeError>>,
        files: &mut Vec<DataFile>,
    ) -> Result<(), LakeError> {
        let mut open: Option<OpenFile> = None;
        for chunk in chunks {
            let chunk = chunk?;
            if chunk.num_rows() == 0 {
                continue;
            }
            if let Some(file) = open.take_if(|f| f.writer.bytes_written() + f.writer.in_progress_size() > self.target_file_size) {
                files.push(self.close(file, key).await?);
            }
            let file = match &mut open {
                Some(file) => file,
                None => open.insert(self.open(key, &chunk)?),
            };
            count_nans(&chunk, &mut file.nan_counts);
            file.writer.write(&chunk)?;
        }
        if let Some(file) = open {
            files.push(self.close(file, key).await?);
        }
        Ok(())
    }

    /// A new file for rows like `first` (its first rows).
    fn open(&self, key: Option<&PartitionKey>, first: &RecordBatch) -> Result<OpenFile, LakeError> {
        let path = self.locations.generate_location(key, &self.names.generate_file_name());
        let properties = match self.min_compressed_column {
            Some(min) => uncompress_small_columns(&self.properties, first, min),
            None => self.properties.clone(),
        };
        let options = ArrowWriterOptions::new().with_properties(properties).with_skip_arrow_metadata(true);
        let writer = ArrowWriter::try_new_with_options(Vec::new(), first.schema(), options)?;
        Ok(OpenFile { path, writer, nan_counts: HashMap::new() })
    }

    async fn close(&self, file: OpenFile, key: Option<&PartitionKey>) -> Result<DataFile, LakeError> {
        let OpenFile { path, mut writer, nan_counts } = file;
        let metadata = writer.finish()?;
        let bytes = std::mem::take(writer.inner_mut());
        let size = bytes.len() as u64;
        let output = self.file_io.new_output(&path).map_err(LakeError::iceberg("a data file output"))?;
        output.write(bytes.into()).await.map_err(LakeError::iceberg("writing a data file"))?;
        let mut builder = describe(&self.schema, &metadata);
        builder.file_path(path).file_size_in_bytes(size).nan_value_counts(nan_counts);
        match key {
            Some(key) => builder.partition(key.data().clone()).partition_spec_id(key.spec().spec_id()),
            None => builder.partition(Struct::empty()),
        };
        builder.build().map_err(|e| LakeError::iceberg("describing a data file")(iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string())))
    }
}

/// `properties` with every compressed top-level column of which `rows` hold fewer than `min` bytes
/// written uncompressed instead.
fn uncompress_small_columns(properties: &WriterProperties, rows: &RecordBatch, min: usize) -> WriterProperties {
    let schema = rows.schema();
    let small: Vec<ColumnPath> = schema
        .fields()
        .iter()
        .zip(rows.columns())
        .map(|(field, column)| (ColumnPath::from(field.name().as_str()), column))
        .filter(|(path, column)| {
            properties.compression(path) != Compression::UNCOMPRESSED && column.to_data().get_slice_memory_size().is_ok_and(|bytes| bytes < min)
        })
        .map(|(path, _)| path)
        .collect();
    if small.is_empty() {
        return properties.clone();
    }
    let builder =
        small.into_iter().fold(properties.clone().into_builder(), |builder, path| builder.set_column_compression(path, Compression::UNCOMPRESSED));
    builder.build()
}

/// The file's metrics from its footer, keyed by the field ids the Parquet schema carries.
fn describe(schema: &Schema, metadata: &ParquetMetaData) -> DataFileBuilder {
    let mut sizes: HashMap<i32, u64> = HashMap::new();
    let mut values: HashMap<i32, u64> = HashMap::new();
    let mut nulls: HashMap<i32, u64> = HashMap::new();
    let mut lower: HashMap<i32, Datum> = HashMap::new();
    let mut upper: HashMap<i32, Datum> = HashMap::new();
    for row_group in metadata.row_groups() {
        for chunk in row_group.columns() {
            let info = chunk.column_descr().self_type().get_basic_info();
            if !info.has_id() {
                continue;
            }
            let id = info.id();
            *sizes.entry(id).or_default() += chunk.compressed_size() as u64;
            *values.entry(id).or_default() += chunk.num_values() as u64;
            let Some(statistics) = chunk.statistics() else {
                continue;
            };
            if let Some(count) = statistics.null_count_opt() {
                *nulls.entry(id).or_default() += count;
            }
            let Some(Type::Primitive(primitive)) = schema.field_by_id(id).map(|f| f.field_type.as_ref()) else {
                continue;
            };
            if let Some(min) = statistics.min_is_exact().then(|| bound(primitive, statistics, Side::Min)).flatten() {
                lower.entry(id).and_modify(|v| *v = if min < *v { min.clone() } else { v.clone() }).or_insert(min);
            }
            if let Some(max) = statistics.max_is_exact().then(|| bound(primitive, statistics, Side::Max)).flatten() {
                upper.entry(id).and_modify(|v| *v = if max > *v { max.clone() } else { v.clone() }).or_insert(max);
            }
        }
    }
    let mut builder = DataFileBuilder::default();
    builder
        .content(DataContentType::Data)
        .file_format(DataFileFormat::Parquet)
        .record_count(metadata.file_metadata().num_rows() as u64)
        .column_sizes(sizes)
        .value_counts(values)
        .null_value_counts(nulls)
        .lower_bounds(lower)
        .upper_bounds(upper)
        .split_offsets(Some(metadata.row_groups().iter().filter_map(|g| g.file_offset()).collect()));
    builder
}

#[derive(Clone, Copy)]
enum Side {
    Min,
    Max,
}

/// A chunk's minimum or maximum as the field's Iceberg type; `None` where the Parquet statistics do not
/// fit it (iceberg's writer refuses such a file; here the bound is only left out).
fn bound(primitive: &PrimitiveType, statistics: &Statistics, side: Side) -> Option<Datum> {
    fn pick<T>(side: Side, min: Option<T>, max: Option<T>) -> Option<T> {
        match side {
            Side::Min => min,
            Side::Max => max,
        }
    }
    Some(match (primitive, statistics) {
        (PrimitiveType::Boolean, Statistics::Boolean(s)) => Datum::bool(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Int, Statistics::Int32(s)) => Datum::int(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Date, Statistics::Int32(s)) => Datum::date(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Long, Statistics::Int64(s)) => Datum::long(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Time, Statistics::Int64(s)) => Datum::time_micros(*pick(side, s.min_opt(), s.max_opt())?).ok()?,
        (PrimitiveType::Timestamp, Statistics::Int64(s)) => Datum::timestamp_micros(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Timestamptz, Statistics::Int64(s)) => Datum::timestamptz_micros(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::TimestampNs, Statistics::Int64(s)) => Datum::timestamp_nanos(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::TimestamptzNs, Statistics::Int64(s)) => Datum::timestamptz_nanos(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Float, Statistics::Float(s)) => Datum::float(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::Double, Statistics::Double(s)) => Datum::double(*pick(side, s.min_opt(), s.max_opt())?),
        (PrimitiveType::String, Statistics::ByteArray(s)) => Datum::string(std::str::from_utf8(pick(side, s.min_opt(), s.max_opt())?.data()).ok()?),
        (PrimitiveType::Binary, Statistics::ByteArray(s)) => Datum::binary(pick(side, s.min_opt(), s.max_opt())?.data().iter().copied()),
        _ => return None,
    })
}

fn field_id(field: &arrow_schema::Field) -> Option<i32> {
    field.metadata().get(parquet::arrow::PARQUET_FIELD_ID_META_KEY).and_then(|id| id.parse().ok())
}

/// Adds the NaNs of every float leaf of `batch` to `counts` (by field id), entering a leaf with none as 0.
fn count_nans(batch: &RecordBatch, counts: &mut HashMap<i32, u64>) {
    fn visit(array: &ArrayRef, id: Option<i32>, counts: &mut HashMap<i32, u64>) {
        let nans = match array.data_type() {
            DataType::Float32 => array.as_primitive::<Float32Type>().iter().flatten().filter(|v| v.is_nan()).count(),
            DataType::Float64 => array.as_primitive::<Float64Type>().iter().flatten().filter(|v| v.is_nan()).count(),
            DataType::Struct(fields) => {
                for (field, child) in fields.iter().zip(array.as_struct().columns()) {
                    visit(child, field_id(field), counts);
                }
                return;
            }
            DataType::List(element) => return visit(array.as_list::<i32>().values(), field_id(element), counts),
            DataType::LargeList(element) => return visit(array.as_list::<i64>().values(), field_id(element), counts),
            DataType::Map(entries, _) => {
                let DataType::Struct(fields) = entries.data_type() else { return };
                let map = array.as_map();
                visit(map.keys(), field_id(&fields[0]), counts);
                visit(map.values(), field_id(&fields[1]), counts);
                return;
            }
            _ => return,
        };
        if let Some(id) = id {
            *counts.entry(id).or_default() += nans as u64;
        }
    }
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        visit(column, field_id(field), counts);
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::DataFileFormat;
    use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
    use iceberg::writer::file_writer::location_generator::DefaultFileNameGenerator;
    use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
    use iceberg::writer::file_writer::ParquetWriterBuilder;
    use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
    use parquet::file::properties::EnabledStatistics;

    use super::*;
    use crate::schema::tests_support::full_record;
    use crate::schema::{sentiment_schema, RecordBatchBuilder};

    #[derive(Clone)]
    struct Under(&'static str);

    impl LocationGenerator for Under {
        fn generate_location(&self, _key: Option<&PartitionKey>, file_name: &str) -> String {
            format!("memory:///{}/{file_name}", self.0)
        }
    }

    /// Rows with nulls, empty and missing nested values, a NaN and distinct texts.
    fn rows() -> RecordBatch {
        let mut builder = RecordBatchBuilder::with_capacity(3);
        builder.append(&full_record());
        let mut sparse = full_record();
        sparse.message_id = "m-0".into();
        sparse.emotion_intensity_vector = None;
        sparse.entity_recognition = None;
        sparse.influence_score = None;
        sparse.aspect_target_identification = Some(vec![]);
        builder.append(&sparse);
        let mut odd = full_record();
        odd.message_id = "m-9".into();
        odd.text_content = "ünïcode text".into();
        odd.sentiment_score = f32::NAN;
        odd.emotion_intensity_vector = Some(vec![("anger".into(), f32::NAN), ("joy".into(), 0.2)]);
        builder.append(&odd);
        builder.finish().unwrap()
    }

    fn properties() -> WriterProperties {
        WriterProperties::builder().set_statistics_enabled(EnabledStatistics::Chunk).build()
    }

    fn sink(target_file_size: usize) -> DataFileSink<Under, DefaultFileNameGenerator> {
        DataFileSink {
            file_io: FileIO::new_with_memory(),
            schema: Arc::new(sentiment_schema()),
            locations: Under("ours"),
            names: DefaultFileNameGenerator::new("t".into(), None, DataFileFormat::Parquet),
            properties: properties(),
            min_compressed_column: None,
            target_file_size,
        }
    }

    /// Everything a reader plans with, which iceberg's writer and this one must agree on.
    fn metrics(file: &DataFile) -> impl PartialEq + std::fmt::Debug {
        (
            file.record_count(),
            file.column_sizes().clone(),
            file.value_counts().clone(),
            file.null_value_counts().clone(),
            file.nan_value_counts().clone(),
            file.lower_bounds().clone(),
            file.upper_bounds().clone(),
            file.split_offsets().map(<[i64]>::to_vec),
            (file.content_type(), file.file_format(), file.partition().clone()),
        )
    }

    #[tokio::test]
    async fn metrics_are_the_ones_icebergs_writer_records() {
        let sink = sink(usize::MAX);
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(properties(), sink.schema.clone()),
            usize::MAX,
            sink.file_io.clone(),
            Under("theirs"),
            sink.names.clone(),
        );
        let mut theirs = DataFileWriterBuilder::new(rolling).build(None).await.unwrap();
        theirs.write(rows()).await.unwrap();
        let theirs = theirs.close().await.unwrap();

        let mut ours = Vec::new();
        sink.write_partition(None, std::iter::once(Ok(rows())), &mut ours).await.unwrap();
        assert_eq!((ours.len(), theirs.len()), (1, 1));
        assert_eq!(metrics(&ours[0]), metrics(&theirs[0]));
        assert_eq!(ours[0].nan_value_counts().get(&crate::schema::field_id::SENTIMENT_SCORE), Some(&1));
        assert_eq!(ours[0].nan_value_counts().get(&crate::schema::field_id::EMOTION_VALUE), Some(&1));
        assert!(ours[0].file_size_in_bytes() < theirs[0].file_size_in_bytes(), "no Arrow schema in the footer");
        let written = sink.file_io.new_input(ours[0].file_path()).unwrap().read().await.unwrap();
        assert_eq!(written.len() as u64, ours[0].file_size_in_bytes());
    }

    #[tokio::test]
    async fn columns_too_small_to_repay_a_codec_are_written_uncompressed() {
        use crate::schema::column::{MESSAGE_ID, TEXT_CONTENT};
        use parquet::file::reader::{FileReader, SerializedFileReader};

        let rows = rows();
        let bytes_of = |name: &str| rows.column_by_name(name).unwrap().to_data().get_slice_memory_size().unwrap();
        let (text, id) = (bytes_of(TEXT_CONTENT), bytes_of(MESSAGE_ID));
        assert!(id < text, "the ids are the smaller column");
        let zstd = Compression::ZSTD(parquet::basic::ZstdLevel::try_new(1).unwrap());
        let mut sink = sink(usize::MAX);
        sink.properties = WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .set_column_compression(ColumnPath::from(TEXT_CONTENT), zstd)
            .set_column_compression(ColumnPath::from(MESSAGE_ID), zstd)
            .build();
        for (min, expected) in [
            (None, (zstd, zstd)),
            (Some(text), (zstd, Compression::UNCOMPRESSED)),
            (Some(text + 1), (Compression::UNCOMPRESSED, Compression::UNCOMPRESSED)),
        ] {
            sink.min_compressed_column = min;
            let mut files = Vec::new();
            sink.write_partition(None, std::iter::once(Ok(rows.clone())), &mut files).await.unwrap();
            let reader = SerializedFileReader::new(sink.file_io.new_input(files[0].file_path()).unwrap().read().await.unwrap()).unwrap();
            let codec =
                |name: &str| reader.metadata().row_group(0).columns().iter().find(|c| c.column_path().string() == name).unwrap().compression();
            assert_eq!((codec(TEXT_CONTENT), codec(MESSAGE_ID)), expected, "at least {min:?} bytes to be compressed");
        }
    }

    #[tokio::test]
    async fn files_roll_over_at_the_target_size_and_keep_every_row() {
        let sink = sink(1);
        let mut files = Vec::new();
        let chunks = (0..3).map(|_| Ok(rows()));
        sink.write_partition(None, chunks, &mut files).await.unwrap();
        assert_eq!(files.len(), 3, "each chunk crosses the target, so the next one opens a new file");
        assert_eq!(files.iter().map(DataFile::record_count).sum::<u64>(), 9);
        let mut paths: Vec<&str> = files.iter().map(DataFile::file_path).collect();
        paths.dedup();
        assert_eq!(paths.len(), 3);
    }

    #[tokio::test]
    async fn a_failing_chunk_keeps_what_was_closed_listed() {
        let sink = sink(1);
        let mut files = Vec::new();
        let chunks = [Ok(rows()), Ok(rows()), Err(LakeError::Config("gather failed".into()))].into_iter();
        assert!(sink.write_partition(None, chunks, &mut files).await.is_err());
        assert_eq!(files.len(), 1, "the first file was closed before the failure; the open one is never uploaded");
    }
}
