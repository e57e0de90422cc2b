//! Legacy Parquet migration (the seed's Phase 4): files written by the old Python system move into the
//! Iceberg table through the same path as live events.
//!
//! A file is one ordered source named by what it holds, `legacy+sha256:<hash of its size and footer>`
//! ([`reader::Opened::identity`]), whose sequence numbers are its row numbers: the same bytes are one
//! source wherever they lie and however their URL is spelt (a copy, a re-upload, `abfss://` or
//! `wasbs://`), and their location and ETag appear only in reports. Its layout is inferred from its
//! names, types and a sample of its values ([`infer`]) under the rule that matches it ([`rules`]), as
//! `migrate --plan` shows beforehand ([`plan`]); its rows are mapped ([`layout`]), enriched where analysis
//! is missing, validated (rows that fail go to the dead-letter table with the file, the row number and the
//! reason), staged in chunks and committed by the ledger that already makes ingestion exactly once. Migrating a file again, or after a crash, commits nothing twice; a changed file
//! is another source. Every read is pinned to the version hashed, so a file replaced while it is read
//! fails the read ([`MigrateError::Changed`]) instead of mixing versions.
//!
//! Files this lake dual-wrote are refused ([`MigrateError::DualWrite`]): their rows are in the table
//! already. With [`MigrateOptions::dedup_ids`], rows whose id the table holds are skipped ([`dedup`]).
//!
//! A finished file is retired ([`retire_files`]): its record moves from the watermarks to the migration
//! ledger table ([`crate::lake::commit::retired`]), with its report, so thousands of files do not weigh on every
//! commit's metadata.
//!
//! Uses [`crate::ingest`] (the pipeline every row goes through), [`crate::lake`] and [`crate::storage`];
//! the CLI and the `MigrateBlob` route call it, never the other way round.

pub mod infer;
pub mod layout;
pub mod plan;
pub mod reader;
pub mod reconcile;
pub mod rules;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::ingest::dual_write::{DUAL_WRITE_MARKER, MIGRATION_SOURCE_PREFIX};
use crate::ingest::file::hex;
use crate::ingest::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::{Lake, LakeError, RetireReport, RetiredSource, TableKind};
use crate::observability::{FileMigrated, FileMigrationFailed, MigrationProgress};
use crate::storage::StorageError;

use self::infer::{infer, Evidence, FileFacts, Inferred, SAMPLE_ROWS};
use self::layout::{records, ticker_from_path, FileDefaults, Layout};
use self::rules::{Applied, Rules};
use crate::ingest::dedup::{self, RowKey};

/// Rows staged per segment: bounded so that a segment of long texts stays tens of MB.
const ROWS_PER_SEGMENT: usize = 20_000;

/// What migrating one file did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    /// The file's source id: what it holds (or, for a file an earlier version began, where it was).
    pub source: String,
    /// Where the file was read: its location's URL and path.
    pub file: String,
    /// The version read (its ETag).
    pub version: Option<String>,
    /// Another file of the same run with the same content, whose migration migrated this one's rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    pub rows: u64,
    /// Rows an earlier run already committed (not read again).
    pub already_committed: u64,
    pub staged: u64,
    pub dead_lettered: u64,
    /// Rows whose id the table already held: counted, not staged (`--dedup-ids`).
    pub already_in_table: u64,
    /// Found in the migration ledger: every row was committed by an earlier run and the file retired.
    pub retired: bool,
    /// Of the rows read by this run, per `TICKER/YYYY-MM-DD` (UTC): rows and the sum of legacy scores.
    pub checksums: BTreeMap<String, GroupChecksum>,
    /// The rule that applied to the file (its glob), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where each seed field came from: what `migrate --plan` showed for the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Inferred>,
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
        self.rows == self.already_committed + self.staged + self.dead_lettered + self.already_in_table
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
    /// Inference could not decide a field (two columns fit it alike, or none does): a rule must.
    #[error("{file}: {detail} (columns: {columns}); name the column in a rule (`migrate --rules`) or a mapping file")]
    Undecided { file: String, detail: String, columns: String },
    #[error("{file}: {detail}")]
    Mapping { file: String, detail: String },
    /// The file changed (replaced, deleted) while it was read: nothing of the old version is mixed with
    /// the new; the next attempt reads the new one.
    #[error("{file}: changed while it was read; migrate it again")]
    Changed { file: String },
    #[error(
        "{file}: written by this lake's dual-write ({marker}); its rows are in the table already (migrate --include-dual-write to migrate it anyway)"
    )]
    DualWrite { file: String, marker: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

impl MigrateError {
    /// Storage and catalog outages pass; a file that cannot be read or mapped stays so until it is replaced.
    pub fn is_retryable(&self) -> bool {
        match self {
            MigrateError::Unreadable { .. } | MigrateError::Undecided { .. } | MigrateError::Mapping { .. } | MigrateError::DualWrite { .. } => false,
            MigrateError::Changed { .. } => true,
            MigrateError::Storage(e) => e.is_retryable(),
            MigrateError::Lake(e) => e.is_retryable(),
        }
    }

    /// A read that failed: the store's own failures are storage errors (retryable as they are), a version
    /// gone is a change, anything else the file's own fault.
    fn of_read(file: &str, error: parquet::errors::ParquetError) -> Self {
        use object_store::Error as E;
        let error = match error {
            parquet::errors::ParquetError::External(inner) => match inner.downcast::<object_store::Error>() {
                Ok(store) => match *store {
                    E::Precondition { .. } | E::NotModified { .. } | E::NotFound { .. } => return MigrateError::Changed { file: file.to_string() },
                    store => return MigrateError::Storage(StorageError::store("read", file, store)),
                },
                Err(other) => parquet::errors::ParquetError::External(other),
            },
            other => other,
        };
        MigrateError::Unreadable { file: file.to_string(), source: error }
    }
}

/// The source id of the content `identity` names.
pub fn content_source_id(identity: &[u8; 32]) -> String {
    format!("{MIGRATION_SOURCE_PREFIX}sha256:{}", hex(identity))
}

/// The source id versions before content identity gave a file (its location as typed, its path and its
/// ETag): a file they began goes on under it, so that an upgrade in the middle of a migration doubles
/// nothing.
pub fn located_source_id(location_url: &str, meta: &ObjectMeta) -> String {
    let version = meta.e_tag.clone().unwrap_or_else(|| format!("{}-{}", meta.size, meta.last_modified.timestamp_micros()));
    format!("{MIGRATION_SOURCE_PREFIX}{}/{}#{}", location_url.trim_end_matches('/'), meta.location, version)
}

/// The lease one migration of the file at `file_url` holds (whatever its version), so that two deliveries
/// of the same upload never read it at once. Hashed: lease names are bounded, URLs are not.
pub fn lease_name(file_url: &str) -> String {
    format!("migrate/{}", hex(&Sha256::digest(file_url.as_bytes())))
}

/// How a migration treats what it finds beyond the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Skip rows whose (source_system, message_id) the table already holds for their ticker and day.
    pub dedup_ids: bool,
    /// Migrate files this lake dual-wrote (refused otherwise: their rows are in the table).
    pub include_dual_write: bool,
}

/// One legacy file version, opened: its footer read, its layout inferred, the values its rows default to.
pub struct LegacyFile {
    /// Its content source id.
    pub source: String,
    /// The id an earlier version would have given it.
    pub located_source: String,
    pub opened: reader::Opened,
    pub layout: Layout,
    /// Where each seed field comes from, and what a rule must still decide.
    pub inferred: Inferred,
    /// The rule that applied (its glob), and its mapping.
    pub rule: Option<String>,
    pub mapping: layout::Mapping,
    pub defaults: FileDefaults,
    /// The marker of this lake's dual-write, when it wrote the file.
    pub dual_write: Option<String>,
    /// The layout is the one recorded when the file's migration began ([`LegacyFile::resume`]).
    pub layout_recorded: bool,
    /// The rows inference read, when it ran: what a plan shows, without reading them again.
    pub sample: Option<arrow_array::RecordBatch>,
}

impl LegacyFile {
    /// Opens `meta` (a file of the location `location_url`) under the rule `applied`: its footer only.
    /// Refuses only what cannot be read. Its layout comes with [`LegacyFile::resume`]: the one recorded
    /// when its migration began, or inferred now ([`LegacyFile::infer_layout`]); what inference leaves
    /// undecided is in [`LegacyFile::inferred`].
    pub async fn inspect(store: Arc<dyn ObjectStore>, location_url: &str, meta: &ObjectMeta, applied: Applied<'_>) -> Result<Self, MigrateError> {
        let file = meta.location.to_string();
        let opened = reader::Opened::new(reader::ObjectFile::new(store, meta.location.clone(), meta.size, meta.e_tag.clone()))
            .await
            .map_err(|e| MigrateError::of_read(&file, e))?;
        let dual_write = opened.footer_value(DUAL_WRITE_MARKER).map(str::to_string);
        let mapping = applied.mapping;
        let source = content_source_id(&opened.identity());
        let defaults = FileDefaults {
            ticker: mapping.defaults.ticker.clone().or_else(|| ticker_from_path(meta.location.as_ref())),
            source_system: mapping.defaults.source_system.clone(),
            id_prefix: id_prefix(&source),
        };
        Ok(Self {
            source,
            located_source: located_source_id(location_url, meta),
            opened,
            layout: Layout::default(),
            inferred: Inferred::default(),
            rule: applied.rule.map(str::to_string),
            mapping: mapping.clone(),
            defaults,
            dual_write,
            layout_recorded: false,
            sample: None,
        })
    }

    /// Infers the layout from the file's sample and footer under its rule: what [`LegacyFile::resume`] does
    /// for a file whose migration has not begun (one that has keeps its recorded layout, and a file every row
    /// of which is committed is not read beyond its footer and that record).
    pub async fn infer_layout(&mut self) -> Result<(), MigrateError> {
        let file = self.opened_path();
        let sample = self.opened.sample(SAMPLE_ROWS).await.map_err(|e| MigrateError::of_read(&file, e))?;
        let facts = FileFacts { path: self.opened.path().as_ref(), ranges: self.opened.column_ranges() };
        let inferred = infer(self.opened.schema(), &sample, &facts, &self.mapping).map_err(|detail| MigrateError::Mapping { file, detail })?;
        self.layout = inferred.layout.clone();
        self.inferred = inferred;
        self.sample = Some(sample);
        Ok(())
    }

    /// [`LegacyFile::inspect`], refusing (unless `include_dual_write`) a file this lake dual-wrote. Whether
    /// its layout is decided is known after [`LegacyFile::resume`] (a file that began keeps its layout):
    /// [`LegacyFile::decided`].
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        location_url: &str,
        meta: &ObjectMeta,
        applied: Applied<'_>,
        include_dual_write: bool,
    ) -> Result<Self, MigrateError> {
        let legacy = Self::inspect(store, location_url, meta, applied).await?;
        if let (Some(marker), false) = (&legacy.dual_write, include_dual_write) {
            return Err(MigrateError::DualWrite { file: legacy.opened_path(), marker: marker.clone() });
        }
        Ok(legacy)
    }

    /// Refuses a file whose layout names a field two ways or leaves a required one empty; a file without
    /// rows has nothing to map.
    pub fn decided(&self) -> Result<(), MigrateError> {
        let file = self.opened_path();
        if !self.inferred.is_decided() && self.opened.rows() > 0 {
            let columns = self.opened.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
            return Err(MigrateError::Undecided { file, detail: self.inferred.undecided(), columns });
        }
        Ok(())
    }

    fn opened_path(&self) -> String {
        self.opened.path().to_string()
    }

    /// How far the table has the file: rows up to its watermark are committed (the records table's ledger
    /// covers every row of a staged range, dead letters included), and a retired file is committed whole.
    /// The watermarks first, then the migration ledger: a retirement moves a file from the one to the
    /// other. A file an earlier version began under its located id goes on under that id, synthetic ids
    /// included, so rows read again get the ids they were committed with.
    pub async fn resume(&mut self, lake: &Lake) -> Result<Committed, MigrateError> {
        let watermarks = lake.committed_state(TableKind::Records).await?.watermarks;
        let found = match (watermarks.get(&self.source), watermarks.get(&self.located_source)) {
            (Some(through), _) => Some((None, through)),
            (None, Some(through)) => Some((Some(self.located_source.clone()), through)),
            (None, None) => None,
        };
        let (committed, recorded) = match found {
            Some((begun_as, through)) => {
                begun_as.into_iter().for_each(|source| self.continue_as(source));
                let path = self.layout_record_path();
                (Committed::Through(through.max(0) as u64), read_layout_record(lake, &path).await?)
            }
            None => match lake.retired_among(&[&self.source, &self.located_source]).await? {
                Some(retired) => {
                    self.continue_as(retired.source);
                    let recorded = retired.report.as_ref().and_then(|r| r.get("layout")).and_then(|l| serde_json::from_value(l.clone()).ok());
                    (Committed::Retired, recorded)
                }
                // Staged by an earlier run and not committed yet: its rows were mapped by the record too.
                None => {
                    let path = self.layout_record_path();
                    (Committed::Through(0), read_layout_record(lake, &path).await?)
                }
            },
        };
        match recorded {
            Some(recorded) => self.keep_recorded(recorded)?,
            None => self.infer_layout().await?,
        }
        Ok(committed)
    }

    /// Where the layout of a file in progress is recorded (a retired file's is in its ledger report).
    fn layout_record_path(&self) -> Path {
        Path::from(format!("migration/layouts/{}.json", hex(&Sha256::digest(self.source.as_bytes()))))
    }

    /// Records the layout before the file's first row is staged, so that a resumed run maps the rest of
    /// its rows as the first run mapped the beginning, whatever inference or rules say by then.
    pub fn record_layout(&self, lake: &Lake) -> impl std::future::Future<Output = Result<(), LakeError>> + Send + 'static {
        // Owned before the await: the opened file is not `Sync`, so the future cannot borrow `self`.
        let (path, store) = (self.layout_record_path(), lake.warehouse().store().clone());
        let body = serde_json::to_vec(&self.inferred).expect("a layout serialises");
        async move {
            store.put(&path, Bytes::from(body).into()).await.map_err(|e| StorageError::store("write", path.to_string(), e))?;
            Ok(())
        }
    }

    /// Maps the file as it was mapped when its migration began.
    fn keep_recorded(&mut self, recorded: Inferred) -> Result<(), MigrateError> {
        let file = self.opened_path();
        let layout = recorded.layout_of(self.opened.schema()).map_err(|detail| MigrateError::Mapping { file, detail })?;
        let changed = recorded.fields != self.inferred.fields || recorded.score_rescaled != self.inferred.score_rescaled;
        let mut notes = recorded.notes.clone();
        notes.push(if changed {
            "the layout recorded when this file's migration began (inference or rules now say otherwise): kept, so every row maps alike".into()
        } else {
            "the layout recorded when this file's migration began".into()
        });
        // Values no column gave (a rule's default ticker or source, a ticker from the path) are kept too.
        let value = |field: &str| recorded.fields.get(field).filter(|c| c.column.is_none()).and_then(|c| Some((c.value.clone()?, c.by)));
        if let Some((ticker, _)) = value("ticker") {
            self.defaults.ticker = Some(ticker);
        }
        if let Some((source, by)) = value("source_system") {
            self.defaults.source_system = (by != Evidence::Default).then_some(source);
        }
        self.inferred = Inferred { layout: layout.clone(), notes, ties: Vec::new(), missing: Vec::new(), ..recorded };
        self.layout = layout;
        self.layout_recorded = true;
        Ok(())
    }

    fn continue_as(&mut self, source: String) {
        self.defaults.id_prefix = id_prefix(&source);
        self.source = source;
    }
}

/// The layout recorded at `path` (none: the file has not begun, or began before layouts were recorded).
async fn read_layout_record(lake: &Lake, path: &Path) -> Result<Option<Inferred>, LakeError> {
    match lake.warehouse().store().get(path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(|e| StorageError::store("read", path.to_string(), e))?;
            Ok(serde_json::from_slice(&bytes).ok())
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(StorageError::store("read", path.to_string(), e).into()),
    }
}

/// How much of a file the table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Rows `1..=n`.
    Through(u64),
    /// Every row: the file was retired.
    Retired,
}

/// The prefix of the message ids of rows without one: the same content gets the same ids.
fn id_prefix(source: &str) -> String {
    format!("legacy-{}", hex(&Sha256::digest(source.as_bytes())[..8]))
}

/// One migration run: its rules and options, and the contents its files have taken up, so that two
/// copies of one file in the same run are read once.
pub struct Migration {
    pub rules: Rules,
    pub options: MigrateOptions,
    taken: Mutex<HashMap<String, String>>,
}

impl Migration {
    pub fn new(rules: Rules, options: MigrateOptions) -> Self {
        Self { rules, options, taken: Mutex::new(HashMap::new()) }
    }

    /// Stages every row of one file (committing is the caller's, once for many files).
    pub async fn file(
        &self,
        lake: &Lake,
        pipeline: &Pipeline,
        store: Arc<dyn ObjectStore>,
        location_url: &str,
        meta: &ObjectMeta,
    ) -> Result<FileReport, MigrateError> {
        let file = format!("{}/{}", location_url.trim_end_matches('/'), meta.location);
        let applied = self.rules.for_file(meta.location.as_ref());
        // History: staged without the per-minute summaries that serve fresh reads of live rows.
        let pipeline = pipeline.clone().without_summaries();
        let result = match LegacyFile::open(store, location_url, meta, applied, self.options.include_dual_write).await {
            Ok(legacy) => self.stage_file(lake, &pipeline, legacy, file, meta.e_tag.clone()).await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(r) => FileMigrated {
                source: &r.source,
                rows: r.rows,
                already_committed: r.already_committed,
                staged: r.staged,
                dead_lettered: r.dead_lettered,
            }
            .emit(),
            Err(e) => FileMigrationFailed { file: meta.location.as_ref(), error: e, retryable: e.is_retryable() }.emit(),
        }
        result
    }

    /// The file of this run that took up `source` first, if another did.
    fn take(&self, source: &str, file: &str) -> Option<String> {
        let mut taken = self.taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match taken.get(source) {
            Some(first) if first != file => Some(first.clone()),
            Some(_) => None,
            None => {
                taken.insert(source.to_string(), file.to_string());
                None
            }
        }
    }

    /// Stages the rows of `legacy` (read at `file`, its version `version`) the table does not have yet.
    async fn stage_file(
        &self,
        lake: &Lake,
        pipeline: &Pipeline,
        mut legacy: LegacyFile,
        file: String,
        version: Option<String>,
    ) -> Result<FileReport, MigrateError> {
        let mut report = FileReport {
            source: legacy.source.clone(),
            file: file.clone(),
            version,
            same_as: None,
            rows: 0,
            already_committed: 0,
            staged: 0,
            dead_lettered: 0,
            already_in_table: 0,
            retired: false,
            checksums: BTreeMap::new(),
            rule: legacy.rule.clone(),
            layout: None,
        };
        let committed = legacy.resume(lake).await?;
        report.source = legacy.source.clone();
        if let Some(first) = self.take(&legacy.source, &file) {
            report.same_as = Some(first);
            return Ok(report);
        }
        report.layout = Some(legacy.inferred.clone());
        let total = legacy.opened.rows();
        let skip = match committed {
            Committed::Through(rows) => rows.min(total),
            Committed::Retired => total,
        };
        (report.rows, report.already_committed, report.retired) = (skip, skip, committed == Committed::Retired);
        if skip == total {
            return Ok(report);
        }
        legacy.decided()?;
        if !legacy.layout_recorded {
            legacy.record_layout(lake).await?;
        }
        let LegacyFile { source, opened, layout, defaults, .. } = legacy;
        let mut stream = opened.stream(skip).map_err(|e| MigrateError::of_read(&file, e))?;
        let mut segment = Segment::new(skip, self.options.dedup_ids);
        while let Some(batch) = stream.try_next().await.map_err(|e| MigrateError::of_read(&file, e))? {
            for record in records(&batch, &layout, &defaults, report.rows) {
                report.rows += 1;
                report.add(&record);
                segment.push(report.rows as i64, &record);
                if segment.events.len() == ROWS_PER_SEGMENT {
                    segment.stage(lake, pipeline, &source, &mut report).await?;
                }
            }
        }
        if segment.covers_rows() {
            segment.stage(lake, pipeline, &source, &mut report).await?;
        }
        Ok(report)
    }
}

/// Rows read and not yet staged: `after+1..=last` of the file.
struct Segment {
    after: i64,
    last: i64,
    events: Vec<SourceEvent>,
    /// With `--dedup-ids`: each event's key.
    keys: Option<Vec<Option<RowKey>>>,
}

impl Segment {
    fn new(after: u64, dedup_ids: bool) -> Self {
        Self { after: after as i64, last: after as i64, events: Vec::with_capacity(ROWS_PER_SEGMENT), keys: dedup_ids.then(Default::default) }
    }

    fn push(&mut self, row: i64, record: &serde_json::Value) {
        let body = serde_json::to_vec(record).expect("JSON values serialise");
        self.events.push(SourceEvent::new(row, Bytes::from(body)));
        self.last = row;
        if let Some(keys) = &mut self.keys {
            keys.push(RowKey::of(record));
        }
    }

    fn covers_rows(&self) -> bool {
        self.last > self.after
    }

    /// Stages the rows for `after+1..=last` (without those the table holds, with `--dedup-ids`: the
    /// segment still covers their rows, so the ledger advances over them).
    async fn stage(&mut self, lake: &Lake, pipeline: &Pipeline, source: &str, report: &mut FileReport) -> Result<(), MigrateError> {
        let range = (self.after + 1, self.last);
        let mut events = std::mem::take(&mut self.events);
        if let Some(keys) = &mut self.keys {
            let held = dedup::held(lake, keys).await?;
            keys.clear();
            report.already_in_table += held.len() as u64;
            events = events.into_iter().enumerate().filter(|(position, _)| !held.contains(position)).map(|(_, event)| event).collect();
        }
        let batch = SourceBatch { source: source.to_string(), invocation_id: None, events };
        let staged = pipeline.ingest_covering(lake, &batch, range).await?;
        report.staged += staged.staged_rows as u64;
        report.dead_lettered += staged.dead_lettered as u64;
        MigrationProgress { staged: staged.staged_rows as u64, dead_lettered: staged.dead_lettered as u64 }.emit();
        self.after = self.last;
        Ok(())
    }
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
