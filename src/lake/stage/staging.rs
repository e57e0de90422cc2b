//! Staged segments: what an invocation has accepted but not yet committed.
//!
//! An ingest invocation writes one entry per target table for its whole sequence range and only then
//! acknowledges the batch: a segment (an Arrow IPC stream of the rows plus a `_sequence_number` column, source
//! and range in the schema's metadata, followed by a checksum, see [`encode`]) when the table gets rows from
//! the batch, or an empty *range marker* when it gets none. The committer later folds many entries into few
//! data files and one snapshot, advancing each source's watermark only through contiguous ranges (see
//! [`super::plan`]). An entry is deleted only after the table's watermark covers it, so a crash at any point
//! leaves either the entry or the committed rows, never neither.
//!
//! Layout, under the warehouse, per table identity (`<area>` = the table's name and a hash of its catalog,
//! namespace and name, [`StagingArea`], so deployments that share a warehouse and a table name never take
//! each other's entries):
//! - `_staging/<area>/<source key>/source.json`: the source id the key stands for (written once);
//! - `_staging/<area>/<source key>/<first>_<last>_<UUIDv7>.arrow`: a segment (`.parquet` when an earlier
//!   version staged it: both are read);
//! - `_staging/<area>/<source key>/<first>_<last>_<UUIDv7>.empty`: a range marker (zero bytes);
//! - `_staging/<area>/<source key>/<first>_<last>_<UUIDv7>.partials`: a records segment's *summary*, its rows'
//!   partial aggregates per minute (the rollup's rows, [`crate::rollup`]) and the newest enqueued time, written
//!   just before the segment, so answers that include what is staged ([`crate::lake::tail`]) never decode a
//!   segment to aggregate it. It goes with its segment.
//!
//! Versions before the identity was in the path staged under `_staging/<table name>/`; that directory is
//! still listed, so what they staged commits after an upgrade.
//!
//! The source key is a hash of the source id (a path-safe, bounded name). Every write is atomic (a
//! temporary object renamed into place, or one PUT), so a listed entry is always complete; entries that are
//! unreadable anyway (written by something else, or damaged) are quarantined by the committer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_ipc::CompressionType;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::lake::error::LakeError;

pub const SEQUENCE_COLUMN: &str = "_sequence_number";
const STAGING_DIR: &str = "_staging";
const DESCRIPTOR: &str = "source.json";
const SOURCE_KEY: &str = "sentiment-lake.source";
const INVOCATION_KEY: &str = "sentiment-lake.invocation-id";
const FIRST_KEY: &str = "sentiment-lake.first-sequence";
const LAST_KEY: &str = "sentiment-lake.last-sequence";
const ENQUEUED_KEY: &str = "sentiment-lake.enqueued-max-ms";
const SEGMENT_BYTES_KEY: &str = "sentiment-lake.segment-bytes";
const ROWS_KEY: &str = "sentiment-lake.rows";
const SUMMARY_EXTENSION: &str = "partials";

/// Rows bound for one table from one batch of one source.
#[derive(Debug, Clone)]
pub struct Segment {
    pub source: String,
    pub invocation_id: Option<String>,
    /// First and last sequence number of the whole batch (not only of these rows): the range this entry
    /// accounts for in the table's ledger.
    pub range: (i64, i64),
    pub rows: RecordBatch,
    pub sequence_numbers: Vec<i64>,
    /// When the newest event of the batch entered its stream (Event Hubs' enqueued time), if known: what a
    /// freshness receipt reports.
    pub enqueued: Option<DateTime<Utc>>,
}

/// What a staged object is, judged by its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A segment with rows.
    Rows,
    /// A range marker: the range has no rows for this table.
    Marker,
    /// A segment staged by an earlier version (`<UUIDv7>.parquet`): its range is only known by reading it.
    Legacy,
    /// A records segment's summary (`.partials`): not an entry of the ledger, it goes with its segment.
    Summary,
    /// Not something this crate writes.
    Unrecognised,
}

/// One object of a staging listing.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedEntry {
    /// Relative to the warehouse root.
    pub path: String,
    /// The source directory it sits in.
    pub key: String,
    pub kind: EntryKind,
    pub range: Option<(i64, i64)>,
    pub size: u64,
    pub staged_at: DateTime<Utc>,
}

impl StagedEntry {
    /// The UUIDv7 in its name: when (by the staging machine's clock) it was staged.
    pub fn staged_id(&self) -> Option<uuid::Uuid> {
        let name = self.path.rsplit('/').next()?;
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        uuid::Uuid::parse_str(stem.rsplit('_').next()?).ok()
    }

    /// Names `<first>_<last>_<uuid>.<arrow|parquet|empty>` are ranged entries; `<uuid>.parquet` legacy ones.
    fn classify(path: &str, size: u64, staged_at: DateTime<Utc>) -> Option<Self> {
        let relative = path.strip_prefix(STAGING_DIR)?.trim_start_matches('/');
        let mut parts = relative.splitn(3, '/');
        let (_table, key, name) = (parts.next()?, parts.next()?, parts.next());
        let entry = |kind, range, key: &str| StagedEntry { path: path.to_string(), key: key.to_string(), kind, range, size, staged_at };
        let Some(name) = name else {
            return Some(entry(EntryKind::Unrecognised, None, ""));
        };
        if name == DESCRIPTOR {
            return None;
        }
        if name.contains('/') {
            return Some(entry(EntryKind::Unrecognised, None, key));
        }
        let (stem, kind) = match name.rsplit_once('.') {
            Some((stem, "arrow" | "parquet")) => (stem, EntryKind::Rows),
            Some((stem, "empty")) => (stem, EntryKind::Marker),
            Some((stem, SUMMARY_EXTENSION)) => (stem, EntryKind::Summary),
            _ => return Some(entry(EntryKind::Unrecognised, None, key)),
        };
        let fields: Vec<&str> = stem.split('_').collect();
        match (fields.as_slice(), kind) {
            ([first, last, id], _) if uuid::Uuid::parse_str(id).is_ok() => match (first.parse::<i64>(), last.parse::<i64>()) {
                (Ok(first), Ok(last)) if first <= last => Some(entry(kind, Some((first, last)), key)),
                _ => Some(entry(EntryKind::Unrecognised, None, key)),
            },
            ([id], EntryKind::Rows) if uuid::Uuid::parse_str(id).is_ok() => Some(entry(EntryKind::Legacy, None, key)),
            _ => Some(entry(EntryKind::Unrecognised, None, key)),
        }
    }
}

/// A table's staging area as listed once.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Ranged entries per source key, in no particular order.
    pub by_key: BTreeMap<String, Vec<StagedEntry>>,
    /// Source ids of the keys, from their descriptors.
    pub sources: HashMap<String, String>,
    pub legacy: Vec<StagedEntry>,
    pub unrecognised: Vec<StagedEntry>,
    /// Segment summaries, by the path of the segment they summarise (which may not be listed: being
    /// written, or gone and the summary left behind by a crash).
    pub summaries: HashMap<String, StagedEntry>,
}

impl Listing {
    pub fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum::<usize>() + self.legacy.len() + self.unrecognised.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of every listed entry.
    pub fn bytes(&self) -> u64 {
        self.by_key.values().flatten().chain(&self.legacy).chain(&self.unrecognised).map(|e| e.size).sum()
    }

    /// Summaries whose segment is not listed and that are older than `grace` (a segment follows its summary
    /// within seconds): left by a crash between the two writes, or by a delete cut short.
    pub fn orphan_summaries(&self, grace: chrono::Duration, now: DateTime<Utc>) -> Vec<String> {
        let listed: HashSet<&str> = self.by_key.values().flatten().map(|e| e.path.as_str()).collect();
        let mut orphans: Vec<String> = self
            .summaries
            .iter()
            .filter(|(segment, s)| !listed.contains(segment.as_str()) && now - s.staged_at > grace)
            .map(|(_, s)| s.path.clone())
            .collect();
        orphans.sort();
        orphans
    }
}

/// The path of the summary of the segment at `segment` (an `.arrow` path), if it can have one.
pub fn summary_path(segment: &str) -> Option<String> {
    segment.strip_suffix(".arrow").map(|stem| format!("{stem}.{SUMMARY_EXTENSION}"))
}

/// A records segment's summary read back.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The segment's rows aggregated per minute.
    pub partials: crate::rollup::Partials,
    pub enqueued: Option<DateTime<Utc>>,
    /// The size of the segment it summarises: a segment of another size is not the one summarised.
    pub segment_bytes: u64,
    pub rows: u64,
}

/// Where one table identity's entries are staged: `_staging/<dir>/`, and the directory earlier versions
/// used for a table of that name, still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingArea {
    pub dir: String,
    pub legacy_dir: Option<String>,
}

impl StagingArea {
    /// The area of table `table` in namespace `namespace` of catalog `catalog`: `<table>.<16 hex digits>`,
    /// the name kept readable (characters other than letters, digits, `_` and `-` replaced, nothing a store
    /// would escape) and the hash of the whole identity making it unique.
    pub fn of(catalog: &str, namespace: &[String], table: &str) -> Self {
        let identity = format!("{catalog}\u{1f}{}\u{1f}{table}", namespace.join("\u{1e}"));
        let digest = Sha256::digest(identity.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let readable: String = table.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') { c } else { '-' }).collect();
        let legacy = (!table.is_empty() && !table.contains('/') && table != "." && table != "..").then(|| table.to_string());
        Self { dir: format!("{readable}.{hash}"), legacy_dir: legacy }
    }

    fn dirs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.dir.as_str()).chain(self.legacy_dir.as_deref().filter(|d| *d != self.dir))
    }
}

/// Reads and writes entries under `_staging/<area>/` of the warehouse.
#[derive(Clone)]
pub struct Staging {
    store: Arc<dyn ObjectStore>,
    /// Descriptors known to exist, `<table>/<key>` -> source (written by this process or read back).
    descriptors: Arc<Mutex<HashMap<String, String>>>,
    /// Entries this process wrote or removed so far: a tail planned before the last change is stale for
    /// this process's own answers (read-your-writes), whatever its age.
    changes: Arc<std::sync::atomic::AtomicU64>,
}

impl Staging {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, descriptors: Arc::default(), changes: Arc::default() }
    }

    /// How many times this process has staged or removed entries.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn dir(area_dir: &str) -> String {
        format!("{STAGING_DIR}/{area_dir}")
    }

    /// The directory name standing for `source`: 16 hex digits of its SHA-256.
    pub fn source_key(source: &str) -> String {
        let digest = Sha256::digest(source.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn known_source(&self, table: &str, key: &str) -> Option<String> {
        self.descriptors.lock().unwrap_or_else(|e| e.into_inner()).get(&format!("{table}/{key}")).cloned()
    }

    fn remember_source(&self, table: &str, key: &str, source: &str) {
        self.descriptors.lock().unwrap_or_else(|e| e.into_inner()).insert(format!("{table}/{key}"), source.to_string());
    }

    /// Writes the descriptor of `source` unless this process already knows it exists. Done before the first
    /// entry of a source, so a committer never lists an entry whose source it cannot name.
    async fn ensure_descriptor(&self, table: &str, source: &str) -> Result<String, LakeError> {
        let key = Self::source_key(source);
        if self.known_source(table, &key).is_none() {
            let path = format!("{}/{key}/{DESCRIPTOR}", Self::dir(table));
            let body = serde_json::to_vec(&serde_json::json!({ "source": source })).map_err(|e| LakeError::Config(e.to_string()))?;
            self.put(&path, Bytes::from(body)).await?;
            self.remember_source(table, &key, source);
        }
        Ok(key)
    }

    pub(crate) async fn put(&self, path: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store.put(&Path::from(path), PutPayload::from(bytes)).await.map_err(|e| LakeError::storage("put", path, e))?;
        Ok(())
    }

    /// Durably stages a segment (a range marker when it has no rows); returns its path. With `summarise`
    /// (records segments), its [`Summary`] is written first.
    pub async fn write(&self, area: &StagingArea, segment: &Segment, summarise: bool) -> Result<String, LakeError> {
        let table = area.dir.as_str();
        let key = self.ensure_descriptor(table, &segment.source).await?;
        let (first, last) = segment.range;
        let stem = format!("{}/{key}/{first}_{last}_{}", Self::dir(table), uuid::Uuid::now_v7());
        if segment.rows.num_rows() == 0 {
            let path = format!("{stem}.empty");
            self.put(&path, Bytes::new()).await?;
            self.changed();
            return Ok(path);
        }
        let path = format!("{stem}.arrow");
        // Encoding is CPU work: off the async workers that answer the host.
        let owned = segment.clone();
        let (bytes, summary) = tokio::task::spawn_blocking(move || {
            let bytes = encode(&owned)?;
            let summary = if summarise { Some(encode_summary(&owned, bytes.len() as u64)?) } else { None };
            Ok::<_, LakeError>((bytes, summary))
        })
        .await
        .map_err(|e| LakeError::Task(e.to_string()))??;
        if let Some(summary) = summary {
            // Before the segment: a listed segment written by this version always has its summary.
            self.put(&format!("{stem}.{SUMMARY_EXTENSION}"), summary).await?;
        }
        self.put(&path, bytes).await?;
        self.changed();
        Ok(path)
    }

    /// Writes one marker for `range` of the source behind `key` (the merge of several entries whose rows
    /// are all committed or absent).
    pub async fn write_marker(&self, area: &StagingArea, key: &str, range: (i64, i64)) -> Result<String, LakeError> {
        // Its source's descriptor may sit in the earlier versions' directory only: the marker joins it there.
        let known = |dir: &str| self.known_source(dir, key).is_some();
        let dir = area.dirs().find(|dir| known(dir)).unwrap_or(area.dir.as_str());
        let path = format!("{}/{key}/{}_{}_{}.empty", Self::dir(dir), range.0, range.1, uuid::Uuid::now_v7());
        self.put(&path, Bytes::new()).await?;
        self.changed();
        Ok(path)
    }

    /// Every entry staged in `area` (and in the earlier versions' directory), with the sources of their keys.
    pub async fn list(&self, area: &StagingArea) -> Result<Listing, LakeError> {
        let mut listing = Listing::default();
        for table in area.dirs() {
            let dir = Self::dir(table);
            let prefix = Path::from(dir.as_str());
            let objects: Vec<object_store::ObjectMeta> =
                self.store.list(Some(&prefix)).try_collect().await.map_err(|e| LakeError::storage("list", dir.clone(), e))?;
            let mut descriptor_keys = HashSet::new();
            let mut keys = HashSet::new();
            for object in objects {
                let path = object.location.to_string();
                if let Some(key) = path.strip_suffix(&format!("/{DESCRIPTOR}")).and_then(|p| p.rsplit_once('/')).map(|(_, k)| k.to_string()) {
                    descriptor_keys.insert(key);
                    continue;
                }
                let Some(entry) = StagedEntry::classify(&path, object.size, object.last_modified) else {
                    continue;
                };
                keys.insert(entry.key.clone());
                match entry.kind {
                    EntryKind::Summary => {
                        if let Some(stem) = entry.path.strip_suffix(&format!(".{SUMMARY_EXTENSION}")) {
                            listing.summaries.insert(format!("{stem}.arrow"), entry);
                        }
                        continue;
                    }
                    EntryKind::Rows | EntryKind::Marker => listing.by_key.entry(entry.key.clone()).or_default().push(entry),
                    EntryKind::Legacy => listing.legacy.push(entry),
                    EntryKind::Unrecognised => listing.unrecognised.push(entry),
                }
            }
            for key in keys {
                if listing.sources.contains_key(&key) {
                    continue;
                }
                if let Some(source) = self.known_source(table, &key) {
                    listing.sources.insert(key, source);
                } else if descriptor_keys.contains(&key) {
                    if let Some(source) = self.read_descriptor(table, &key).await? {
                        self.remember_source(table, &key, &source);
                        listing.sources.insert(key, source);
                    }
                }
            }
        }
        Ok(listing)
    }

    async fn read_descriptor(&self, table: &str, key: &str) -> Result<Option<String>, LakeError> {
        let path = format!("{}/{key}/{DESCRIPTOR}", Self::dir(table));
        let bytes = match self.read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let source = value.get("source").and_then(|s| s.as_str()).map(str::to_string);
        // A key is a hash of its source: a descriptor naming another source is damaged, not trusted.
        Ok(source.filter(|s| Self::source_key(s) == key))
    }

    pub async fn read(&self, path: &str) -> Result<Bytes, LakeError> {
        let get = self.store.get(&Path::from(path)).await.map_err(|e| LakeError::storage("get", path, e))?;
        get.bytes().await.map_err(|e| LakeError::storage("get", path, e))
    }

    /// A segment's summary, or `None` when it has none readable (staged by an earlier version, or damaged:
    /// the segment itself is read instead).
    pub async fn read_summary(&self, segment: &str) -> Result<Option<Summary>, LakeError> {
        let Some(path) = summary_path(segment) else {
            return Ok(None);
        };
        let bytes = self.read(&path).await?;
        Ok(decode_summary(&bytes).ok())
    }

    /// Removes entries, and the summaries of segments among them, a few at a time. One already gone
    /// (another committer removed it) is fine.
    pub async fn delete(&self, paths: &[String]) -> Result<(), LakeError> {
        use futures::StreamExt;
        let targets: Vec<String> = paths.iter().flat_map(|p| std::iter::once(p.clone()).chain(summary_path(p))).collect();
        let mut deletes = futures::stream::iter(targets)
            .map(|path| {
                let store = self.store.clone();
                async move {
                    match store.delete(&Path::from(path.as_str())).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(LakeError::storage("delete", path.as_str(), e)),
                    }
                }
            })
            .buffer_unordered(DELETES_AT_ONCE);
        let mut outcome = Ok(());
        while let Some(deleted) = deletes.next().await {
            if deleted.is_err() && outcome.is_ok() {
                outcome = deleted;
            }
        }
        if !paths.is_empty() {
            self.changed();
        }
        outcome
    }
}

/// Deletes in flight at once: a commit of a five-minute interval removes a thousand entries and their
/// summaries, one round trip each on Azure.
const DELETES_AT_ONCE: usize = 16;

/// The Arrow schema of a segment: the table's columns plus the sequence number.
fn with_sequence(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(SEQUENCE_COLUMN, DataType::Int64, false)));
    Arc::new(Schema::new(fields))
}

/// A segment: an Arrow IPC stream (its schema carrying the source, range and invocation, then one record
/// batch compressed with LZ4, pure Rust), followed by a trailer of the stream's CRC-32 and [`TRAILER_MAGIC`].
///
/// Segments live for a commit interval and are read once, whole, by the committer, which gathers their
/// rows into data files: a format that is cheap to write and to read back wins over a small one. Arrow IPC
/// lays out the columns as they are in memory, so encoding is little more than the compression of each
/// buffer; Parquet (what earlier versions staged, still read) re-encodes every value, computes definition
/// and repetition levels for the nested columns, and decodes them again in the commit: a quarter of staging's
/// CPU (docs/benchmarks.md). The price is size: about 1.8 times Parquet's with the same codec (250 bytes for
/// a 1 KB event), for the interval a segment lives.
///
/// The checksum is what makes the format safe to read back: arrow-ipc allocates whatever length a message
/// or a compressed buffer declares before reading it, so one damaged length would abort the committer
/// rather than fail the read, on every attempt. A segment whose checksum does not match is quarantined
/// before the reader sees it. (Any Arrow IPC stream reader opens a segment; the trailer follows the
/// end-of-stream marker.)
pub(crate) fn encode(segment: &Segment) -> Result<Bytes, LakeError> {
    let rows = &segment.rows;
    let mut columns = rows.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(segment.sequence_numbers.clone())));
    let mut metadata = HashMap::from([
        (SOURCE_KEY.to_string(), segment.source.clone()),
        (FIRST_KEY.to_string(), segment.range.0.to_string()),
        (LAST_KEY.to_string(), segment.range.1.to_string()),
    ]);
    if let Some(id) = &segment.invocation_id {
        metadata.insert(INVOCATION_KEY.to_string(), id.clone());
    }
    if let Some(at) = segment.enqueued {
        metadata.insert(ENQUEUED_KEY.to_string(), at.timestamp_millis().to_string());
    }
    let schema = Arc::new(with_sequence(&rows.schema()).as_ref().clone().with_metadata(metadata));
    let batch = RecordBatch::try_new(schema, columns)?;
    ipc_with_trailer(&batch)
}

/// A segment's summary: its rows aggregated per minute as rollup rows, in the same framing as a segment
/// (an Arrow IPC stream and a checksum trailer), the segment's size, row count and newest enqueued time in
/// the stream's metadata.
fn encode_summary(segment: &Segment, segment_bytes: u64) -> Result<Bytes, LakeError> {
    let mut partials = crate::rollup::Partials::default();
    partials
        .add_batch(&segment.rows, &[crate::rollup::Grain::Minute], &crate::rollup::RowFilter::default())
        .map_err(|e| LakeError::Rollup(format!("summarising a segment: {e}")))?;
    let batch = crate::rollup::table::to_batch(&partials)?;
    let mut metadata =
        HashMap::from([(SEGMENT_BYTES_KEY.to_string(), segment_bytes.to_string()), (ROWS_KEY.to_string(), segment.rows.num_rows().to_string())]);
    if let Some(at) = segment.enqueued {
        metadata.insert(ENQUEUED_KEY.to_string(), at.timestamp_millis().to_string());
    }
    let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(metadata));
    ipc_with_trailer(&RecordBatch::try_new(schema, batch.columns().to_vec())?)
}

fn decode_summary(bytes: &[u8]) -> Result<Summary, String> {
    let (batches, metadata) = read_ipc(bytes)?;
    let mut partials = crate::rollup::Partials::default();
    for batch in &batches {
        crate::rollup::table::read_batch(batch, |key, measures| partials.merge_row(key, &measures))?;
    }
    let number = |key: &str| metadata.get(key).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("no {key}"));
    Ok(Summary { partials, enqueued: enqueued_of(&metadata), segment_bytes: number(SEGMENT_BYTES_KEY)?, rows: number(ROWS_KEY)? })
}

fn enqueued_of(metadata: &HashMap<String, String>) -> Option<DateTime<Utc>> {
    metadata.get(ENQUEUED_KEY).and_then(|v| v.parse().ok()).and_then(DateTime::from_timestamp_millis)
}

/// `batch` as an LZ4-compressed Arrow IPC stream followed by its CRC-32 and [`TRAILER_MAGIC`].
fn ipc_with_trailer(batch: &RecordBatch) -> Result<Bytes, LakeError> {
    let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    // About what LZ4 leaves of JSON-born text, so the buffer is not regrown (and copied) many times.
    let buffer = Vec::with_capacity(batch.get_array_memory_size() / 2);
    let mut writer = StreamWriter::try_new_with_options(buffer, &batch.schema(), options)?;
    writer.write(batch)?;
    writer.finish()?;
    let mut bytes = writer.into_inner()?;
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes.extend_from_slice(TRAILER_MAGIC);
    Ok(Bytes::from(bytes))
}

/// Reads a segment back (Arrow IPC, or Parquet as earlier versions staged it), checking that it holds
/// `expected`'s columns (by name and type) and a sequence number per row. The error says why not, for the
/// quarantine record.
pub(crate) fn decode(bytes: Bytes, expected: &Schema) -> Result<Segment, String> {
    // Checksums catch damage to a segment, not every defect of a file written by something else: a reader
    // that panics on one must not fail every commit that follows, so it is quarantined like any other.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_unguarded(bytes, expected))).unwrap_or_else(|panic| {
        let message = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err(format!("the reader failed on this file: {message}"))
    })
}

/// A staged segment read back ([`decode`]) and checked against where it was found: its own metadata must
/// name the source and range its directory and name say.
pub(crate) fn decode_checked(bytes: Bytes, expected: &Schema, source: &str, range: Option<(i64, i64)>) -> Result<Segment, String> {
    let segment = decode(bytes, expected)?;
    if segment.source != source || Some(segment.range) != range {
        return Err(format!("file says source {:?} range {:?}, its place says {source:?} {range:?}", segment.source, segment.range));
    }
    Ok(segment)
}

fn decode_unguarded(bytes: Bytes, expected: &Schema) -> Result<Segment, String> {
    let (batches, metadata) = if bytes.starts_with(PARQUET_MAGIC) { read_parquet(bytes)? } else { read_ipc(&bytes)? };
    let schema = match batches.first() {
        Some(batch) => batch.schema(),
        None => return Err("no row groups".into()),
    };
    let source = metadata.get(SOURCE_KEY).cloned().ok_or("no source in the file's metadata")?;
    let invocation_id = metadata.get(INVOCATION_KEY).cloned();
    let enqueued = enqueued_of(&metadata);
    let seq_index = schema.index_of(SEQUENCE_COLUMN).map_err(|_| format!("no `{SEQUENCE_COLUMN}` column"))?;
    let mut data_fields: Vec<&Arc<Field>> = schema.fields().iter().collect();
    data_fields.remove(seq_index);
    // The table's columns first; columns added to the table later (filled from records) may follow.
    let matches = data_fields.len() >= expected.fields().len()
        && data_fields.iter().zip(expected.fields()).all(|(a, b)| a.name() == b.name() && a.data_type().equals_datatype(b.data_type()));
    if !matches {
        let names: Vec<&str> = data_fields.iter().map(|f| f.name().as_str()).collect();
        return Err(format!("columns [{}] are not the table's", names.join(", ")));
    }
    // The rows carry the columns alone, not the file's metadata.
    let schema = Arc::new(schema.as_ref().clone().with_metadata(HashMap::new()));
    let batch = match batches.len() {
        1 => RecordBatch::try_new(schema, batches[0].columns().to_vec()).map_err(|e| e.to_string())?,
        _ => arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| e.to_string())?,
    };
    let sequence_numbers = batch.column(seq_index).as_any().downcast_ref::<Int64Array>().ok_or("sequence column is not int64")?;
    if sequence_numbers.null_count() > 0 {
        return Err("null sequence numbers".into());
    }
    let sequence_numbers = sequence_numbers.values().to_vec();
    let bound = |key: &str| metadata.get(key).and_then(|v| v.parse().ok());
    let range = match (bound(FIRST_KEY), bound(LAST_KEY)) {
        (Some(first), Some(last)) => (first, last),
        // Written before ranges were recorded: the rows' own span.
        _ => (sequence_numbers.iter().copied().min().ok_or("no rows")?, sequence_numbers.iter().copied().max().ok_or("no rows")?),
    };
    if sequence_numbers.iter().any(|&s| s < range.0 || s > range.1) {
        return Err(format!("sequence numbers outside the recorded range {}..={}", range.0, range.1));
    }
    let mut rows = batch;
    rows.remove_column(seq_index);
    Ok(Segment { source, invocation_id, range, rows, sequence_numbers, enqueued })
}

/// The last bytes of a segment, after the checksum.
const TRAILER_MAGIC: &[u8] = b"SLSEG1";
/// The first bytes of a Parquet file.
const PARQUET_MAGIC: &[u8] = b"PAR1";

type Decoded = (Vec<RecordBatch>, HashMap<String, String>);

fn read_ipc(bytes: &[u8]) -> Result<Decoded, String> {
    let stream = bytes
        .strip_suffix(TRAILER_MAGIC)
        .and_then(|rest| rest.split_last_chunk::<4>())
        .ok_or("not a readable segment: no trailer (truncated, or not written here)")?;
    let (stream, checksum) = (stream.0, u32::from_le_bytes(*stream.1));
    if crc32fast::hash(stream) != checksum {
        return Err("not a readable segment: checksum mismatch (damaged)".into());
    }
    let reader = arrow_ipc::reader::StreamReader::try_new(stream, None).map_err(|e| format!("not a readable Arrow IPC stream: {e}"))?;
    let metadata = reader.schema().metadata().clone();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| format!("truncated or damaged: {e}"))?;
    Ok((batches, metadata))
}

fn read_parquet(bytes: Bytes) -> Result<Decoded, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let metadata = builder.metadata().file_metadata().key_value_metadata().into_iter().flatten();
    let metadata = metadata.filter_map(|e| Some((e.key.clone(), e.value.clone()?))).collect();
    let reader = builder.build().map_err(|e| e.to_string())?;
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| format!("truncated or damaged: {e}"))?;
    Ok((batches, metadata))
}

#[cfg(test)]
mod tests {
    use arrow_array::StringArray;

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn names_classify_into_ranged_legacy_and_unrecognised_entries() {
        let id = uuid::Uuid::now_v7();
        let c = |p: &str| StagedEntry::classify(p, 1, at());
        for extension in ["arrow", "parquet"] {
            let rows = c(&format!("_staging/t/abcd/5_9_{id}.{extension}")).unwrap();
            assert_eq!((rows.kind, rows.range, rows.key.as_str()), (EntryKind::Rows, Some((5, 9)), "abcd"));
        }
        let marker = c(&format!("_staging/t/abcd/-3_-1_{id}.empty")).unwrap();
        assert_eq!((marker.kind, marker.range), (EntryKind::Marker, Some((-3, -1))));
        assert_eq!(c(&format!("_staging/t/abcd/{id}.parquet")).unwrap().kind, EntryKind::Legacy);
        assert!(c("_staging/t/abcd/source.json").is_none());
        for bad in ["_staging/t/abcd/junk.parquet", "_staging/t/abcd/9_5_x.parquet", "_staging/t/stray.parquet", "_staging/t/abcd/deep/1_2_x.empty"] {
            assert_eq!(c(bad).unwrap().kind, EntryKind::Unrecognised, "{bad}");
        }
        assert_eq!(c(&format!("_staging/t/abcd/9_5_{id}.parquet")).unwrap().kind, EntryKind::Unrecognised, "first > last");
        let summary = c(&format!("_staging/t/abcd/5_9_{id}.partials")).unwrap();
        assert_eq!((summary.kind, summary.range), (EntryKind::Summary, Some((5, 9))));
        assert_eq!(summary_path(&format!("_staging/t/abcd/5_9_{id}.arrow")), Some(format!("_staging/t/abcd/5_9_{id}.partials")));
        assert_eq!(summary_path(&format!("_staging/t/abcd/5_9_{id}.empty")), None, "markers have no summary");
    }

    #[test]
    fn only_old_summaries_without_their_segment_are_orphans() {
        let now = at();
        let entry = |name: &str, age: i64| StagedEntry::classify(&format!("_staging/t/k/{name}"), 1, now - chrono::Duration::seconds(age)).unwrap();
        let (kept, young, orphan) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let mut listing = Listing::default();
        listing.by_key.entry("k".into()).or_default().push(entry(&format!("1_2_{kept}.arrow"), 900));
        for (id, age) in [(kept, 900), (young, 5), (orphan, 900)] {
            let summary = entry(&format!("1_2_{id}.partials"), age);
            listing.summaries.insert(summary.path.replace(".partials", ".arrow"), summary);
        }
        assert_eq!(listing.orphan_summaries(chrono::Duration::seconds(300), now), vec![format!("_staging/t/k/1_2_{orphan}.partials")]);
    }

    fn segment() -> (SchemaRef, Segment) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, false)]));
        let rows = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["a", "b"]))]).unwrap();
        (
            schema,
            Segment {
                source: "s".into(),
                invocation_id: Some("i".into()),
                range: (10, 20),
                rows,
                sequence_numbers: vec![11, 19],
                enqueued: DateTime::from_timestamp_millis(1_700_000_000_123),
            },
        )
    }

    fn assert_same(back: &Segment, staged: &Segment) {
        assert_eq!(
            (back.source.as_str(), back.invocation_id.as_deref(), back.range, back.enqueued),
            (staged.source.as_str(), staged.invocation_id.as_deref(), staged.range, staged.enqueued)
        );
        assert_eq!((&back.sequence_numbers, back.rows.columns()), (&staged.sequence_numbers, staged.rows.columns()));
    }

    #[test]
    fn segments_round_trip_and_foreign_schemas_are_refused() {
        let (schema, segment) = segment();
        let bytes = encode(&segment).unwrap();
        let back = decode(bytes.clone(), &schema).unwrap();
        assert_same(&back, &segment);
        assert!(back.rows.schema().metadata().is_empty(), "the file's metadata stays out of the rows");
        let mut ipc = arrow_ipc::reader::StreamReader::try_new(&bytes[..], None).unwrap();
        assert_eq!(ipc.next().unwrap().unwrap().num_rows(), 2, "any Arrow IPC stream reader opens a segment");

        let other = Schema::new(vec![Field::new("w", DataType::Int64, false)]);
        assert!(decode(bytes.clone(), &other).unwrap_err().contains("not the table's"));
        assert!(decode(Bytes::new(), &schema).unwrap_err().contains("not a readable"));
        for cut in [bytes.len() / 2, bytes.len() - 1, 4] {
            assert!(decode(bytes.slice(..cut), &schema).unwrap_err().contains("no trailer"), "truncated at {cut} of {}", bytes.len());
        }
    }

    #[test]
    fn any_damaged_byte_is_refused_before_the_reader_trusts_a_length() {
        let (schema, segment) = segment();
        let bytes = encode(&segment).unwrap().to_vec();
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                assert!(decode(Bytes::from(damaged), &schema).is_err(), "byte {at} of {} xor {flip:#x}", bytes.len());
            }
        }
    }

    #[test]
    fn segments_staged_as_parquet_by_earlier_versions_still_read() {
        use parquet::arrow::ArrowWriter;
        use parquet::file::metadata::KeyValue;
        use parquet::file::properties::WriterProperties;

        let (schema, segment) = segment();
        let mut columns = segment.rows.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(segment.sequence_numbers.clone())));
        let batch = RecordBatch::try_new(with_sequence(&schema), columns).unwrap();
        let metadata = [(SOURCE_KEY, "s"), (INVOCATION_KEY, "i"), (FIRST_KEY, "10"), (LAST_KEY, "20")];
        let metadata = metadata.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect();
        let props = WriterProperties::builder().set_key_value_metadata(Some(metadata)).build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        // Earlier versions recorded no enqueued time.
        assert_same(&decode(Bytes::from(bytes), &schema).unwrap(), &Segment { enqueued: None, ..segment });
    }
}
