//! Rows -> Iceberg data files, partitioned by whatever default spec the loaded table has.
//!
//! The writer never assumes the project's default spec: a table created with year/month/day or
//! unpartitioned still gets correct partition values, because they are computed from the table's own spec
//! by iceberg-rust's partition splitter. Rows are sorted by event time first so row-group statistics prune
//! well for time-window queries.

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::LakeError;

/// Writes `rows` (already in the table's Arrow schema) as data files; `file_prefix` makes names traceable
/// to the commit attempt that wrote them.
pub async fn write_data_files(
    table: &Table,
    rows: &RecordBatch,
    sort_column: Option<&str>,
    file_prefix: &str,
) -> Result<Vec<DataFile>, LakeError> {
    if rows.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let rows = match sort_column {
        Some(column) => sort_by(rows, column)?,
        None => rows.clone(),
    };
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3 is valid")))
        .build();
    let target_file_size = metadata.table_properties().map_err(LakeError::iceberg)?.write_target_file_size_bytes;
    let rolling = RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(props, schema.clone()),
        target_file_size,
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata).map_err(LakeError::iceberg)?,
        DefaultFileNameGenerator::new(file_prefix.to_string(), None, DataFileFormat::Parquet),
    );
    let builder = DataFileWriterBuilder::new(rolling);
    if spec.is_unpartitioned() {
        let mut writer = builder.build(None).await.map_err(LakeError::iceberg)?;
        writer.write(rows).await.map_err(LakeError::iceberg)?;
        return writer.close().await.map_err(LakeError::iceberg);
    }
    let splitter =
        RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec).map_err(LakeError::iceberg)?;
    let mut fanout = FanoutWriter::new(builder);
    for (key, part) in splitter.split(&rows).map_err(LakeError::iceberg)? {
        fanout.write(key, part).await.map_err(LakeError::iceberg)?;
    }
    fanout.close().await.map_err(LakeError::iceberg)
}

fn sort_by(rows: &RecordBatch, column: &str) -> Result<RecordBatch, LakeError> {
    let index = rows.schema().index_of(column).map_err(LakeError::arrow)?;
    let indices = arrow_ord::sort::sort_to_indices(rows.column(index), None, None).map_err(LakeError::arrow)?;
    let columns = rows
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c, &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(LakeError::arrow)?;
    RecordBatch::try_new(rows.schema(), columns).map_err(LakeError::arrow)
}
