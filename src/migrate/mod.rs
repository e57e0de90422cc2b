//! Legacy Parquet migration (the seed's Phase 4): files written by the old Python system move into the
//! Iceberg table through the same path as live events.
//!
//! A file version is one ordered source, `legacy+<location>/<path>#<etag>`, whose sequence numbers are
//! its row numbers: its rows are detected ([`layout`]), enriched where analysis is missing, validated
//! (rows that fail go to the dead-letter table with the file, the row number and the reason), staged in
//! chunks and committed by the ledger that already makes ingestion exactly once. Migrating a file again,
//! or after a crash, commits nothing twice; a changed file (a new ETag) is a new version.
//!
//! A finished file is retired ([`retire_files`]): its record moves from the watermarks to the migration
//! ledger table ([`crate::lake::retired`]), with its report, so thousands of files do not weigh on every
//! commit's metadata.

pub mod layout;
pub mod reader;
pub mod reconcile;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use sha2::{Digest, Sha256};

use crate::ingest::dual_write::MIGRATION_SOURCE_PREFIX;
use crate::ingest::file::hex;
use crate::ingest::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::{Lake, LakeError, RetireReport, RetiredSource, TableKind};
use crate::observability::{FileMigrated, FileMigrationFailed, MigrationProgress};
use crate::storage::StorageError;

use self::layout::{records, ticker_from_path, FileDefaults, Layout, Mapping};

/// Rows staged per segment: bounded so that a segment of long texts stays tens of MB.
const ROWS_PER_SEGMENT: usize = 20_000;

/// What migrating one file did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    /// The file's source id (location, path and version).
    pub source: String,
    pub rows: u64,
    /// Rows an earlier run already committed (not read again).
    pub already_committed: u64,
    pub staged: u64,
    pub dead_lettered: u64,
    /// Found in the migration ledger: every row was committed by an earlier run and the file retired.
    pub retired: bool,
    /// Of the rows read by this run, per `TICKER/YYYY-MM-DD` (UTC): rows and the sum of legacy scores.
    pub checksums: BTreeMap<String, GroupChecksum>,
}

/// Rows of one ticker and day, and the sum of the legacy scores among them (rows without one are
/// scored by enrichment, which the legacy side cannot check).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroupChecksum {
    pub rows: u64,
    pub scored: u64,
    pub score_sum: f64,
}

impl Eq for GroupChecksum {}

impl FileReport {
    /// Every row read is staged, dead-lettered, or was committed before: nothing is lost in between.
    pub fn accounted(&self) -> bool {
        self.rows == self.already_committed + self.staged + self.dead_lettered
    }

    fn add(&mut self, record: &serde_json::Value) {
        let text = |field: &str| record.get(field).and_then(serde_json::Value::as_str);
        let group = format!("{}/{}", text("ticker").unwrap_or("?"), text("event_timestamp").and_then(|t| t.get(..10)).unwrap_or("?"));
        let sum = self.checksums.entry(group).or_default();
        sum.rows += 1;
        if let Some(score) = record.get("sentiment_score").and_then(serde_json::Value::as_f64) {
            sum.scored += 1;
            sum.score_sum += score;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{file}: not a readable Parquet file: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{file}: no column holds {field} (columns: {columns}); name it in a mapping file")]
    Unmapped { file: String, field: &'static str, columns: String },
    #[error("{file}: {detail}")]
    Mapping { file: String, detail: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

impl MigrateError {
    /// Storage and catalog outages pass; a file that cannot be read or mapped stays so until it is replaced.
    pub fn is_retryable(&self) -> bool {
        match self {
            MigrateError::Unreadable { .. } | MigrateError::Unmapped { .. } | MigrateError::Mapping { .. } => false,
            MigrateError::Storage(e) => e.is_retryable(),
            MigrateError::Lake(e) => e.is_retryable(),
        }
    }
}

/// The source id of one version of a file.
pub fn source_id(location_url: &str, meta: &ObjectMeta) -> String {
    let version = meta.e_tag.clone().unwrap_or_else(|| format!("{}-{}", meta.size, meta.last_modified.timestamp_micros()));
    format!("{MIGRATION_SOURCE_PREFIX}{}/{}#{}", location_url.trim_end_matches('/'), meta.location, version)
}

/// The lease one migration of the file at `file_url` holds (whatever its version), so that two deliveries
/// of the same upload never read it at once. Hashed: lease names are bounded, URLs are not.
pub fn lease_name(file_url: &str) -> String {
    format!("migrate/{}", hex(&Sha256::digest(file_url.as_bytes())))
}

/// One legacy file version, opened: its footer read, its layout resolved, the values its rows default to.
pub struct LegacyFile {
    pub source: String,
    pub opened: reader::Opened,
    pub layout: Layout,
    pub defaults: FileDefaults,
}

impl LegacyFile {
    /// Opens `meta` (a file of the location `location_url`) and maps it; refuses a file whose time or text
    /// no column holds.
    pub async fn open(store: Arc<dyn ObjectStore>, location_url: &str, meta: &ObjectMeta, mapping: &Mapping) -> Result<Self, MigrateError> {
        let file = meta.location.to_string();
        let source = source_id(location_url, meta);
        let opened = reader::Opened::new(reader::ObjectFile::new(store, meta.location.clone(), meta.size))
            .await
            .map_err(|source| MigrateError::Unreadable { file: file.clone(), source })?;
        let schema = opened.schema().clone();
        let layout = Layout::resolve(&schema, mapping).map_err(|detail| MigrateError::Mapping { file: file.clone(), detail })?;
        for (field, index) in [("an event time", layout.timestamp), ("the text", layout.text)] {
            if index.is_none() {
                let columns = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
                return Err(MigrateError::Unmapped { file, field, columns });
            }
        }
        let defaults = FileDefaults {
            ticker: mapping.defaults.ticker.clone().or_else(|| ticker_from_path(meta.location.as_ref())),
            source_system: mapping.defaults.source_system.clone(),
            id_prefix: format!("legacy-{}", hex(&Sha256::digest(source.as_bytes())[..8])),
        };
        Ok(Self { source, opened, layout, defaults })
    }
}

/// Stages every row of one file (committing is the caller's, once for many files).
pub async fn migrate_file(
    lake: &Lake,
    pipeline: &Pipeline,
    store: Arc<dyn ObjectStore>,
    location_url: &str,
    meta: &ObjectMeta,
    mapping: &Mapping,
) -> Result<FileReport, MigrateError> {
    let result = stage_file(lake, pipeline, store, location_url, meta, mapping).await;
    match &result {
        Ok(r) => {
            FileMigrated { source: &r.source, rows: r.rows, already_committed: r.already_committed, staged: r.staged, dead_lettered: r.dead_lettered }
                .emit()
        }
        Err(e) => FileMigrationFailed { file: meta.location.as_ref(), error: e, retryable: e.is_retryable() }.emit(),
    }
    result
}

async fn stage_file(
    lake: &Lake,
    pipeline: &Pipeline,
    store: Arc<dyn ObjectStore>,
    location_url: &str,
    meta: &ObjectMeta,
    mapping: &Mapping,
) -> Result<FileReport, MigrateError> {
    let LegacyFile { source, opened, layout, defaults } = LegacyFile::open(store, location_url, meta, mapping).await?;
    let unreadable = |source_error| MigrateError::Unreadable { file: meta.location.to_string(), source: source_error };
    // Resuming: rows up to the file's watermark are committed (the records table's ledger covers every row
    // of a staged range, dead letters included), so reading starts after them.
    // The watermarks first, then the ledger: a retirement moves a file from the one to the other.
    let watermark = lake.committed_state(TableKind::Records).await?.watermarks.get(&source);
    let total = opened.rows();
    let retired = watermark.is_none() && lake.retired_source(&source).await?.is_some();
    let committed = if retired { total } else { watermark.unwrap_or(0).max(0) as u64 };
    let skip = committed.min(total);
    let mut report =
        FileReport { source: source.clone(), rows: skip, already_committed: skip, staged: 0, dead_lettered: 0, retired, checksums: BTreeMap::new() };
    if skip == total {
        return Ok(report);
    }
    let mut stream = opened.stream(skip).map_err(unreadable)?;
    let mut pending: Vec<SourceEvent> = Vec::with_capacity(ROWS_PER_SEGMENT);
    while let Some(batch) = stream.try_next().await.map_err(unreadable)? {
        for record in records(&batch, &layout, &defaults, report.rows) {
            report.rows += 1;
            report.add(&record);
            let body = serde_json::to_vec(&record).expect("JSON values serialise");
            pending.push(SourceEvent::new(report.rows as i64, Bytes::from(body)));
            if pending.len() == ROWS_PER_SEGMENT {
                stage(lake, pipeline, &source, &mut pending, &mut report).await?;
            }
        }
    }
    if !pending.is_empty() {
        stage(lake, pipeline, &source, &mut pending, &mut report).await?;
    }
    Ok(report)
}

async fn stage(lake: &Lake, pipeline: &Pipeline, source: &str, pending: &mut Vec<SourceEvent>, report: &mut FileReport) -> Result<(), MigrateError> {
    let batch = SourceBatch { source: source.to_string(), invocation_id: None, events: std::mem::take(pending) };
    let staged = pipeline.ingest(lake, &batch).await?;
    report.staged += staged.staged_rows as u64;
    report.dead_lettered += staged.dead_lettered as u64;
    MigrationProgress { staged: staged.staged_rows as u64, dead_lettered: staged.dead_lettered as u64 }.emit();
    Ok(())
}

/// Retires the files of `reports` whose rows are all committed (the caller commits first); the others stay
/// in the watermarks until a later run finds them finished.
pub async fn retire_files(lake: &Lake, reports: &[FileReport]) -> Result<RetireReport, LakeError> {
    let now = chrono::Utc::now();
    let candidates = reports
        .iter()
        .filter(|r| r.rows > 0)
        .map(|r| RetiredSource {
            source: r.source.clone(),
            through: r.rows as i64,
            retired_at: now,
            records_snapshot_id: None,
            report: serde_json::to_value(r).ok(),
        })
        .collect();
    lake.retire(candidates).await
}

/// The Parquet files under a location (recursively), oldest path first.
pub async fn list_parquet(store: &Arc<dyn ObjectStore>, prefix: Option<&Path>) -> Result<Vec<ObjectMeta>, StorageError> {
    let mut files: Vec<ObjectMeta> = store
        .list(prefix)
        .try_filter(|meta| std::future::ready(meta.location.extension() == Some("parquet")))
        .try_collect()
        .await
        .map_err(|e| StorageError::store("list", prefix.map_or(String::new(), |p| p.to_string()), e))?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}
