//! Reading for rollups: the files a records snapshot added or holds live, aggregated into partials, and
//! the rollup table's rows of a window.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use iceberg::expr::{Bind, Predicate, Reference};
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataContentType, Datum, ManifestStatus};
use iceberg::table::Table;

use crate::lake::error::LakeError;
use crate::rollup::table::column as r;
use crate::rollup::{Detail, Dimension, Grain, Partials, Piece, RowFilter};
use crate::schema::column as c;

/// The records columns aggregates read (those a table lacks, say an old one, are skipped).
const AGGREGATED: &[&str] = &[
    c::EVENT_TIMESTAMP,
    c::TICKER,
    c::SOURCE_SYSTEM,
    c::SENTIMENT_SCORE,
    c::SENTIMENT_MAGNITUDE,
    c::PRIMARY_EMOTION,
    c::EMOTION_INTENSITY_VECTOR,
    c::ASPECT_BASED_SENTIMENT,
    c::USER_INTENT,
    c::ENTITY_RECOGNITION,
];

fn iceberg(context: &'static str) -> impl FnOnce(iceberg::Error) -> LakeError {
    LakeError::iceberg(context)
}

/// The data files snapshot `id` of `table` added (entries it wrote as added, in manifests it wrote).
pub async fn added_files(table: &Table, id: i64) -> Result<Vec<FileScanTask>, LakeError> {
    let metadata = table.metadata();
    let snapshot = metadata.snapshot_by_id(id).ok_or_else(|| LakeError::Rollup(format!("the records table has no snapshot {id}")))?;
    let list = table.manifest_list_reader(snapshot).load().await.map_err(iceberg("reading a manifest list"))?;
    let schema = snapshot.schema(metadata).map_err(iceberg("a snapshot's schema"))?;
    let ids = field_ids(&schema);
    let mut tasks = Vec::new();
    for manifest in list.entries().iter().filter(|m| m.added_snapshot_id == id && m.content == iceberg::spec::ManifestContentType::Data) {
        let loaded = manifest.load_manifest(table.file_io()).await.map_err(iceberg("reading a manifest"))?;
        for entry in loaded.entries() {
            if entry.status() == ManifestStatus::Added && entry.snapshot_id() == Some(id) && entry.content_type() == DataContentType::Data {
                tasks.push(
                    FileScanTask::builder()
                        .with_file_size_in_bytes(entry.file_size_in_bytes())
                        .with_start(0)
                        .with_length(entry.file_size_in_bytes())
                        .with_record_count(Some(entry.record_count()))
                        .with_data_file_path(entry.file_path().to_string())
                        .with_data_file_format(entry.file_format())
                        .with_schema(schema.clone())
                        .with_project_field_ids(ids.clone())
                        .with_case_sensitive(true)
                        .build(),
                );
            }
        }
    }
    Ok(tasks)
}

fn field_ids(schema: &iceberg::spec::Schema) -> Vec<i32> {
    AGGREGATED.iter().filter_map(|name| schema.as_struct().field_by_name(name).map(|f| f.id)).collect()
}

/// Every data file live in snapshot `id` of `table`, or only those that may hold rows of `window`.
pub async fn live_files(table: &Table, id: i64, window: Option<(i64, i64)>) -> Result<Vec<FileScanTask>, LakeError> {
    let schema = table.metadata().snapshot_by_id(id).map(|s| s.schema(table.metadata())).transpose().map_err(iceberg("a snapshot's schema"))?;
    let columns: Vec<&str> = AGGREGATED.iter().copied().filter(|name| schema.as_ref().is_none_or(|s| s.field_by_name(name).is_some())).collect();
    let mut scan = table.scan().snapshot_id(id).select(columns);
    if let Some(window) = window {
        scan = scan.with_filter(in_window(window));
    }
    let scan = scan.build().map_err(iceberg("planning a scan of the records"))?;
    scan.plan_files().await.map_err(iceberg("planning a scan of the records"))?.try_collect().await.map_err(iceberg("planning a scan of the records"))
}

fn in_window((from, to): (i64, i64)) -> Predicate {
    Reference::new(c::EVENT_TIMESTAMP)
        .greater_than_or_equal_to(Datum::timestamptz_micros(from))
        .and(Reference::new(c::EVENT_TIMESTAMP).less_than(Datum::timestamptz_micros(to)))
}

/// The rows of `tasks` that `filter` keeps, aggregated at `grains`. With a window, each task also carries
/// it as a predicate, so the reader skips row groups outside it.
pub async fn aggregate(table: &Table, mut tasks: Vec<FileScanTask>, grains: &[Grain], filter: &RowFilter) -> Result<Partials, LakeError> {
    if let Some((from, to)) = filter.window {
        let mut predicate = in_window((from, to));
        if let Some(ticker) = &filter.ticker {
            predicate = predicate.and(Reference::new(c::TICKER).equal_to(Datum::string(ticker)));
        }
        for task in &mut tasks {
            task.predicate = Some(predicate.clone().bind(task.schema.clone(), true).map_err(iceberg("binding a window to a scan"))?);
        }
    }
    let mut partials = Partials::default();
    if tasks.is_empty() {
        return Ok(partials);
    }
    let reader = table.reader_builder().build();
    let mut stream = reader.read(futures::stream::iter(tasks.into_iter().map(Ok)).boxed()).map_err(iceberg("reading records"))?.stream();
    while let Some(batch) = stream.try_next().await.map_err(iceberg("reading records"))? {
        partials.add_batch(&batch, grains, filter).map_err(|e| LakeError::Rollup(format!("records the rollup cannot read: {e}")))?;
    }
    Ok(partials)
}

/// Every row of the rollup files `tasks` (whatever filter planned them), merged into `partials`.
pub async fn read_rollup_files(rollup: &Table, mut tasks: Vec<FileScanTask>, partials: &mut Partials) -> Result<(), LakeError> {
    for task in &mut tasks {
        task.predicate = None;
    }
    let reading = || LakeError::iceberg("reading rollup files");
    let mut stream = rollup.reader_builder().build().read(Box::pin(futures::stream::iter(tasks.into_iter().map(Ok)))).map_err(reading())?.stream();
    while let Some(batch) = stream.try_next().await.map_err(reading())? {
        crate::rollup::table::read_batch(&batch, |key, measures| partials.merge_row(key, &measures)).map_err(LakeError::Rollup)?;
    }
    Ok(())
}

/// The rollup rows of rollup snapshot `snapshot` in `pieces` (those with a grain; every row for `None`),
/// of `dimensions`, and of `ticker` if one is given, merged by their key kept to `detail`.
pub async fn rollup_rows(
    rollup: &Table,
    snapshot: i64,
    pieces: Option<&[Piece]>,
    dimensions: &[Dimension],
    ticker: Option<&str>,
    detail: &Detail,
) -> Result<Partials, LakeError> {
    let mut partials = Partials::default();
    let mut by_grain: Option<Predicate> = None;
    for piece in pieces.unwrap_or_default() {
        let Some(grain) = piece.grain else { continue };
        // Buckets are days, months or years spelled so that text order is time order.
        let (first, last) = (grain.bucket(piece.from), grain.bucket(piece.to - 1));
        let one = Reference::new(r::GRAIN)
            .equal_to(Datum::string(grain.as_str()))
            .and(Reference::new(r::BUCKET).greater_than_or_equal_to(Datum::string(first)))
            .and(Reference::new(r::BUCKET).less_than_or_equal_to(Datum::string(last)))
            .and(Reference::new(r::PERIOD_START).greater_than_or_equal_to(Datum::timestamptz_micros(piece.from)))
            .and(Reference::new(r::PERIOD_START).less_than(Datum::timestamptz_micros(piece.to)));
        by_grain = Some(match by_grain {
            None => one,
            Some(earlier) => earlier.or(one),
        });
    }
    let mut predicate = match (by_grain, pieces) {
        (Some(predicate), _) => predicate,
        (None, None) => Predicate::AlwaysTrue,
        (None, Some(_)) => return Ok(partials),
    };
    let wanted: HashSet<&str> = dimensions.iter().map(|d| d.as_str()).collect();
    let mut kinds = wanted.iter();
    if let Some(first) = kinds.next() {
        let mut dimension = Reference::new(r::DIMENSION).equal_to(Datum::string(*first));
        for other in kinds {
            dimension = dimension.or(Reference::new(r::DIMENSION).equal_to(Datum::string(*other)));
        }
        predicate = predicate.and(dimension);
    }
    if let Some(ticker) = ticker {
        predicate = predicate.and(Reference::new(r::TICKER).equal_to(Datum::string(ticker)));
    }
    let mut scan = rollup.scan().snapshot_id(snapshot).with_filter(predicate);
    if !detail.emotions {
        let schema =
            rollup.metadata().snapshot_by_id(snapshot).map(|s| s.schema(rollup.metadata())).transpose().map_err(iceberg("a snapshot's schema"))?;
        let emotional = [r::EMOTION_COUNTS, r::EMOTION_SUMS, r::PRIMARY_EMOTIONS];
        if let Some(schema) = schema {
            scan = scan.select(schema.as_struct().fields().iter().map(|f| f.name.clone()).filter(|name| !emotional.contains(&name.as_str())));
        }
    }
    let scan = scan.build().map_err(iceberg("planning a scan of the rollups"))?;
    let mut stream = scan.to_arrow().await.map_err(iceberg("reading the rollups"))?;
    while let Some(batch) = stream.try_next().await.map_err(iceberg("reading the rollups"))? {
        crate::rollup::table::read_batch(&batch, |key, measures| {
            // The scan's filter prunes files and row groups; rows are checked here as well.
            let kept = wanted.contains(key.dimension.as_str())
                && ticker.is_none_or(|t| key.ticker.as_deref() == Some(t))
                && pieces
                    .is_none_or(|pieces| pieces.iter().any(|p| p.grain == Some(key.grain) && key.period_start >= p.from && key.period_start < p.to));
            if kept {
                let mut key = key;
                detail.coarsen(&mut key);
                partials.merge_row(key, &measures);
            }
        })
        .map_err(|e| LakeError::Rollup(format!("a rollup row the reader cannot read: {e}")))?;
    }
    Ok(partials)
}
