//! Rows -> Iceberg data files, partitioned by whatever default spec the loaded table has, one partition at a
//! time.
//!
//! Memory stays near the size of the rows themselves whatever the number of partitions a pass touches:
//! rows are grouped by partition as (batch, row) indices, and each partition is gathered, sorted and written
//! by one writer that is closed before the next opens (a writer per open partition costs ~0.7 MB of page
//! buffers, which made a 7,000-partition pass need 4.8 GB). Rows are gathered in chunks of
//! [`ROWS_PER_WRITE`], so no single array can reach Arrow's 2 GiB string-offset limit however large the
//! pass. Partition values come from the table's own spec (iceberg-rust's transforms), so a table created
//! with year/month/day, other columns or no partitioning gets correct values; directories are escaped
//! ([`super::paths`]).

use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_row::{RowConverter, SortField};
use iceberg::arrow::{arrow_struct_to_literal, PartitionValueCalculator};
use iceberg::spec::{DataFile, DataFileFormat, Literal, PartitionKey, Struct};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::DefaultFileNameGenerator;
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::paths::{partition_path, EscapedLocationGenerator};
use super::LakeError;

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
    let batches: Vec<&RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let metadata = table.metadata();
    let schema = metadata.current_schema().clone();
    let spec = metadata.default_partition_spec().clone();
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3 is valid"))).build();
    let target_file_size = match target_file_size {
        Some(bytes) => bytes,
        None => metadata.table_properties().map_err(LakeError::iceberg("table properties"))?.write_target_file_size_bytes,
    };
    let rolling = RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(props, schema.clone()),
        target_file_size,
        table.file_io().clone(),
        EscapedLocationGenerator::new(metadata).map_err(LakeError::iceberg("data location"))?,
        DefaultFileNameGenerator::new(file_prefix.to_string(), None, DataFileFormat::Parquet),
    );
    let builder = DataFileWriterBuilder::new(rolling);

    let groups: Vec<(Option<PartitionKey>, Rows)> = if spec.is_unpartitioned() {
        let all = batches.iter().enumerate().flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r))).collect();
        vec![(None, all)]
    } else {
        group_by_partition(&batches, &spec, &schema)?
    };
    let sort_keys = SortKeys::new(&batches, sort_columns)?;
    let mut files = Vec::new();
    for (key, mut rows) in groups {
        if let Some(keys) = &sort_keys {
            rows.sort_by(|a, b| keys.compare(*a, *b));
        }
        let written = write_partition(&builder, key, &batches, &rows).await;
        match written {
            Ok(mut closed) => files.append(&mut closed),
            Err(e) => {
                delete(table, &files).await;
                return Err(e);
            }
        }
    }
    Ok(files)
}

async fn write_partition<B: IcebergWriterBuilder>(
    builder: &B,
    key: Option<PartitionKey>,
    batches: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> Result<Vec<DataFile>, LakeError> {
    let mut writer = builder.build(key).await.map_err(LakeError::iceberg("opening a data file writer"))?;
    for chunk in rows.chunks(ROWS_PER_WRITE) {
        let gathered = arrow_select::interleave::interleave_record_batch(batches, chunk)?;
        writer.write(gathered).await.map_err(LakeError::iceberg("writing a data file"))?;
    }
    writer.close().await.map_err(LakeError::iceberg("closing a data file"))
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
    let mut index: HashMap<Struct, usize> = HashMap::new();
    let mut groups: Vec<(Struct, Rows)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let values = calculator.calculate(batch).map_err(LakeError::iceberg("partition values"))?;
        let literals = arrow_struct_to_literal(&values, &partition_type).map_err(LakeError::iceberg("partition values"))?;
        for (r, literal) in literals.into_iter().enumerate() {
            let Some(Literal::Struct(value)) = literal else {
                return Err(LakeError::iceberg("partition values")(iceberg::Error::new(
                    iceberg::ErrorKind::DataInvalid,
                    "a row has no partition value",
                )));
            };
            let group = match index.get(&value) {
                Some(&g) => g,
                None => {
                    index.insert(value.clone(), groups.len());
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
    fn new(batches: &[&RecordBatch], columns: &[&str]) -> Result<Option<Self>, LakeError> {
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
