//! Planning a tail on a snapshot's metadata, and reading its summaries and rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::TableMetadata;
use sha2::{Digest, Sha256};

use crate::lake::catalog::RenewingCatalog;
use crate::lake::commit::retired;
use crate::lake::error::LakeError;
use crate::lake::stage::{self, next_pass, CommittedState, EntryKind, Listing, PassBounds, Staging, Summary};
use crate::lake::target::TableTarget;
use crate::rollup::{Grain, Partials, RowFilter, Scope};

/// Staged bytes the rows of a tail may hold decoded in one instance (about four times as much in memory):
/// beyond it (a committer stalled for long) records answers leave the tail out and say so.
pub const DEFAULT_MAX_TAIL_BYTES: u64 = 64 * 1024 * 1024;

/// Summaries and segments read at once.
const READS_AT_ONCE: usize = 16;

/// One staged entry of a tail.
#[derive(Debug, Clone)]
pub struct TailEntry {
    pub source: String,
    pub path: String,
    pub kind: EntryKind,
    pub range: (i64, i64),
    pub size: u64,
    /// The source's watermark in the snapshot: rows at or below it are committed.
    pub committed: Option<i64>,
    /// Rows at or below this were taken out by a rollback this entry predates.
    pub floor: Option<i64>,
    /// Its summary, when it has one that matches it.
    pub summary: Option<Arc<Summary>>,
    /// Every row of it counts (nothing committed, no floor, no other entry overlapping): its summary is
    /// exactly its part of an aggregate.
    pub clean: bool,
}

/// What is staged above one snapshot, as the next commit would take it.
#[derive(Debug)]
pub struct Tail {
    /// The snapshot it lies above (`None`: the table has no commits yet).
    pub snapshot_id: Option<i64>,
    /// Names the snapshot and exactly the entries taken: equal keys, equal answers.
    pub key: String,
    /// In the order the commit reads them.
    pub entries: Vec<TailEntry>,
    /// Per source: the watermark the tail takes it to.
    pub through: BTreeMap<String, i64>,
    /// The clean entries' summaries merged (minute rows), in a few layers: a plan a second after the last
    /// adds only the new entries' summaries as a layer of its own (layers of similar size merge), instead
    /// of merging every summary of a five-minute tail again.
    layers: Vec<Arc<Partials>>,
}

impl Tail {
    /// Staged bytes of its segments.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().filter(|e| e.kind == EntryKind::Rows).map(|e| e.size).sum()
    }

    /// Rows as the summaries count them (entries without one count as none: see [`super::TailReceipt`]).
    pub fn summarised_rows(&self) -> u64 {
        self.entries.iter().filter_map(|e| e.summary.as_ref()).map(|s| s.rows).sum()
    }

    /// The newest enqueued time of its entries of `source`.
    pub(super) fn enqueued(&self, source: &str) -> Option<DateTime<Utc>> {
        self.entries.iter().filter(|e| e.source == source).filter_map(|e| e.summary.as_ref()?.enqueued).max()
    }
}

/// Plans and reads tails of one records table; shared by every request of an instance (it keeps the
/// summaries and decoded rows of the current tail, nothing older).
pub struct TailReader {
    staging: Staging,
    catalog: Arc<RenewingCatalog>,
    records: Arc<TableTarget>,
    retired: Arc<TableTarget>,
    gap_grace: Duration,
    max_bytes: u64,
    summaries: Mutex<HashMap<String, Arc<Summary>>>,
    /// Decoded rows of clean entries, by path.
    rows: Mutex<HashMap<String, RecordBatch>>,
    /// The last tail planned: the next one starts from its layers.
    previous: Mutex<Option<Arc<Tail>>>,
}

impl TailReader {
    pub(crate) fn new(
        staging: Staging,
        catalog: Arc<RenewingCatalog>,
        records: Arc<TableTarget>,
        retired: Arc<TableTarget>,
        gap_grace: Duration,
    ) -> Self {
        Self {
            staging,
            catalog,
            records,
            retired,
            gap_grace,
            max_bytes: DEFAULT_MAX_TAIL_BYTES,
            summaries: Mutex::default(),
            rows: Mutex::default(),
            previous: Mutex::default(),
        }
    }

    /// At most `bytes` of staged segments are decoded for records answers.
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Entries this process has staged or removed so far ([`Staging::changes`]): a tail planned before the
    /// last change is stale for this process.
    pub fn staged_changes(&self) -> u64 {
        self.staging.changes()
    }

    /// What is staged now. List *before* loading the metadata a tail is planned on: an entry a commit takes
    /// after the listing is then either in that metadata (below its watermark: left out) or still in the
    /// tail; listed after the metadata, an entry committed in between would be in neither.
    pub async fn list(&self) -> Result<Listing, LakeError> {
        self.staging.list(&self.records.staging).await
    }

    /// The tail above the current snapshot of `metadata` (the records table loaded after `listing` was
    /// made), and the summaries of entries not seen before.
    pub async fn plan(&self, listing: &Listing, metadata: &TableMetadata) -> Result<Arc<Tail>, LakeError> {
        let state = CommittedState::read(&self.records.name, metadata)?;
        let mut watermarks = state.watermarks.clone();
        let unknown: Vec<&str> = listing.sources.values().map(String::as_str).filter(|s| watermarks.get(s).is_none()).collect();
        for source in retired::retired_among(&self.catalog, &self.retired, &unknown).await? {
            watermarks.advance(&source, i64::MAX);
        }
        let bounds = PassBounds { max_bytes: u64::MAX, max_entries: usize::MAX, gap_grace: self.gap_grace };
        let plan = next_pass(listing, &watermarks, &state.awaiting, bounds, Utc::now());

        let mut entries = Vec::new();
        let mut through = BTreeMap::new();
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}", metadata.current_snapshot_id()));
        for pass in &plan.sources {
            through.insert(pass.source.clone(), pass.through);
            hasher.update(format!("\u{1e}{}\u{1f}{}", pass.source, pass.through));
            for entry in &pass.entries {
                let range = entry.range.expect("planned entries are ranged");
                let floor = pass.floors.get(&entry.path).copied();
                hasher.update(format!("\u{1f}{}\u{1f}{floor:?}", entry.path));
                let overlaps = pass
                    .entries
                    .iter()
                    .any(|o| o.kind == EntryKind::Rows && o.path != entry.path && o.range.is_some_and(|(a, b)| a <= range.1 && range.0 <= b));
                let clean = entry.kind == EntryKind::Rows && floor.is_none() && !overlaps && pass.committed.is_none_or(|w| range.0 > w);
                entries.push(TailEntry {
                    source: pass.source.clone(),
                    path: entry.path.clone(),
                    kind: entry.kind,
                    range,
                    size: entry.size,
                    committed: pass.committed,
                    floor,
                    summary: None,
                    clean,
                });
            }
        }
        let summarised: HashSet<&str> = listing.summaries.keys().map(String::as_str).collect();
        self.attach_summaries(&mut entries, &summarised).await?;
        for entry in entries.iter_mut() {
            entry.clean &= entry.summary.is_some();
        }
        let key: String = hasher.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
        self.forget_all_but(&entries);
        let layers = self.layers(metadata.current_snapshot_id(), &entries);
        let tail = Arc::new(Tail { snapshot_id: metadata.current_snapshot_id(), key, entries, through, layers });
        *self.previous.lock().unwrap_or_else(|e| e.into_inner()) = Some(tail.clone());
        Ok(tail)
    }

    /// The clean entries' summaries as layers: the previous tail's, plus one of the entries it lacked, when
    /// it lay above the same snapshot and all its clean entries are still clean; merged anew otherwise (once
    /// per commit).
    fn layers(&self, snapshot_id: Option<i64>, entries: &[TailEntry]) -> Vec<Arc<Partials>> {
        let clean: HashSet<&str> = entries.iter().filter(|e| e.clean).map(|e| e.path.as_str()).collect();
        let previous = self.previous.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (mut layers, known): (Vec<Arc<Partials>>, HashSet<&str>) = match previous.as_deref() {
            Some(p) if p.snapshot_id == snapshot_id && p.entries.iter().filter(|e| e.clean).all(|e| clean.contains(e.path.as_str())) => {
                (p.layers.clone(), p.entries.iter().filter(|e| e.clean).map(|e| e.path.as_str()).collect())
            }
            _ => (Vec::new(), HashSet::new()),
        };
        let mut added = Partials::default();
        for entry in entries.iter().filter(|e| e.clean && !known.contains(e.path.as_str())) {
            if let Some(summary) = &entry.summary {
                for (key, measures) in &summary.partials.rows {
                    added.merge_row(key.clone(), measures);
                }
            }
        }
        if !added.is_empty() {
            layers.push(Arc::new(added));
        }
        // Like a log-structured merge: a layer merges into the one below while it is at least half its
        // size, so a tail of n rows has about log(n) layers and each row is merged about log(n) times.
        while let [.., below, top] = layers.as_slice() {
            if top.len() * 2 < below.len() {
                break;
            }
            let (top, below) = (layers.pop().expect("two layers"), layers.pop().expect("two layers"));
            let mut merged = Arc::unwrap_or_clone(below);
            for (key, measures) in &top.rows {
                merged.merge_row(key.clone(), measures);
            }
            layers.push(Arc::new(merged));
        }
        layers
    }

    /// Each segment's summary, from memory when an earlier tail read it. A summary the listing showed and
    /// that is gone now went with its segment: committed meanwhile.
    async fn attach_summaries(&self, entries: &mut [TailEntry], listed: &HashSet<&str>) -> Result<(), LakeError> {
        let wanted: Vec<String> = {
            let known = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
            entries
                .iter()
                .filter(|e| e.kind == EntryKind::Rows && listed.contains(e.path.as_str()) && !known.contains_key(&e.path))
                .map(|e| e.path.clone())
                .collect()
        };
        let read: Vec<(String, Option<Summary>)> = futures::stream::iter(wanted)
            .map(|path| {
                let staging = self.staging.clone();
                async move {
                    match staging.read_summary(&path).await {
                        Ok(summary) => Ok((path, summary)),
                        Err(e) if e.is_not_found() => Err(LakeError::TailMoved(format!("{path} was committed while the tail was listed"))),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut known = self.summaries.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(read.into_iter().filter_map(|(path, summary)| Some((path, Arc::new(summary?)))));
        for entry in entries.iter_mut() {
            // A summary of another segment than the one listed (a damaged or foreign file) is not trusted.
            entry.summary = known.get(&entry.path).filter(|s| s.segment_bytes == entry.size).cloned();
        }
        Ok(())
    }

    /// Keeps what the entries of the current tail use, nothing of entries committed since.
    fn forget_all_but(&self, entries: &[TailEntry]) {
        let current: HashSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        self.summaries.lock().unwrap_or_else(|e| e.into_inner()).retain(|path, _| current.contains(path.as_str()));
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).retain(|path, _| current.contains(path.as_str()));
    }

    /// The tail's part of an answer over `scope`: whole minutes inside the window from the summaries, the
    /// rest (minutes the window's edges cut, entries that are not clean) from the rows, kept to the scope's
    /// dimensions, ticker and detail.
    pub async fn partials(&self, tail: &Tail, scope: &Scope) -> Result<Partials, LakeError> {
        let (from, to) = scope.window;
        let minute = Grain::Minute.micros();
        let wanted = |key: &crate::rollup::RowKey| {
            scope.dimensions.contains(&key.dimension) && scope.ticker.as_deref().is_none_or(|t| key.ticker.as_deref() == Some(t))
        };
        let mut out = Partials::default();
        let mut edges_have_rows = false;
        for (key, measures) in tail.layers.iter().flat_map(|layer| layer.rows.iter()).filter(|(k, _)| wanted(k)) {
            if key.period_start >= from && key.period_start.saturating_add(minute) <= to {
                let mut key = key.clone();
                scope.detail.coarsen(&mut key);
                out.merge_row(key, measures);
            } else if key.period_start < to && key.period_start.saturating_add(minute) > from {
                edges_have_rows = true;
            }
        }
        let edges: Vec<(i64, i64)> =
            crate::rollup::pieces(from, to, Grain::Minute).iter().filter(|p| p.grain.is_none()).map(|p| (p.from, p.to)).collect();
        let unclean = tail.entries.iter().any(|e| e.kind == EntryKind::Rows && !e.clean);
        let edges_to_read = edges_have_rows && !edges.is_empty();
        if !unclean && !edges_to_read {
            return Ok(out);
        }
        let rows = self.rows(tail).await?;
        let mut raw = Partials::default();
        for (entry, batch) in tail.entries.iter().filter(|e| e.kind == EntryKind::Rows).zip(rows.iter()) {
            let windows = if entry.clean { edges.clone() } else { vec![(from, to)] };
            for window in windows {
                let filter = RowFilter { window: Some(window), ticker: scope.ticker.clone(), ..RowFilter::default() };
                raw.add_batch(batch, &[Grain::Minute], &filter).map_err(|e| LakeError::Rollup(format!("staged rows the tail cannot read: {e}")))?;
            }
        }
        for (mut key, measures) in raw.rows.into_iter().filter(|(k, _)| wanted(k)) {
            scope.detail.coarsen(&mut key);
            out.merge_row(key, &measures);
        }
        Ok(out)
    }

    /// The tail's rows, one batch per segment in the tail's order (in the segments' own schema), selected as
    /// the commit selects them. Refused beyond [`TailReader::max_bytes`].
    pub async fn rows(&self, tail: &Tail) -> Result<Vec<RecordBatch>, LakeError> {
        let bytes = tail.bytes();
        if bytes > self.max_bytes {
            return Err(LakeError::Config(format!(
                "{bytes} bytes are staged above the snapshot, more than the {} an instance decodes for answers (--tail-max-mb)",
                self.max_bytes
            )));
        }
        let segments: Vec<&TailEntry> = tail.entries.iter().filter(|e| e.kind == EntryKind::Rows).collect();
        // Decoded rows of clean entries are kept (a segment never changes); the others depend on the rest of
        // the tail and are selected again.
        let cached: HashMap<&str, RecordBatch> = {
            let kept = self.rows.lock().unwrap_or_else(|e| e.into_inner());
            segments.iter().filter(|e| e.clean).filter_map(|e| Some((e.path.as_str(), kept.get(&e.path)?.clone()))).collect()
        };
        let wanted: Vec<(String, String, (i64, i64))> =
            segments.iter().filter(|e| !cached.contains_key(e.path.as_str())).map(|e| (e.path.clone(), e.source.clone(), e.range)).collect();
        let decoded: HashMap<String, Option<stage::Segment>> = futures::stream::iter(wanted)
            .map(|(path, source, range)| {
                let (staging, schema) = (self.staging.clone(), self.records.arrow_schema.clone());
                async move {
                    let bytes = match staging.read(&path).await {
                        Ok(bytes) => bytes,
                        Err(e) if e.is_not_found() => return Err(LakeError::TailMoved(format!("{path} was committed while it was read"))),
                        Err(e) => return Err(e),
                    };
                    let checked = tokio::task::spawn_blocking(move || stage::decode_checked(bytes, &schema, &source, Some(range)))
                        .await
                        .map_err(|e| LakeError::Task(e.to_string()))?;
                    // Unreadable, or not what its name says: the committer quarantines it, and its rows never count.
                    let segment =
                        checked.map_err(|reason| tracing::warn!(path = %path, reason, "A staged segment the tail cannot read is left out.")).ok();
                    Ok((path, segment))
                }
            })
            .buffer_unordered(READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut seen: HashMap<&str, HashSet<i64>> = HashMap::new();
        let mut out = Vec::with_capacity(segments.len());
        let mut fresh = HashMap::new();
        for entry in &segments {
            if let Some(batch) = cached.get(entry.path.as_str()) {
                out.push(batch.clone());
                continue;
            }
            let Some(segment) = decoded.get(&entry.path).and_then(Option::as_ref) else {
                out.push(RecordBatch::new_empty(self.records.arrow_schema.clone()));
                continue;
            };
            if entry.clean {
                fresh.insert(entry.path.clone(), segment.rows.clone());
                out.push(segment.rows.clone());
                continue;
            }
            let mask = stage::rows_taken(&segment.sequence_numbers, entry.committed, entry.floor, seen.entry(entry.source.as_str()).or_default());
            out.push(arrow_select::filter::filter_record_batch(&segment.rows, &mask)?);
        }
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).extend(fresh);
        Ok(out)
    }
}
