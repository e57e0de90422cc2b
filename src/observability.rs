//! Logging and metrics. Each occurrence worth counting is a named event whose `emit()` writes the log line
//! and updates the metric together, so the two never disagree.
//!
//! Logs go to stderr: the Functions host discards the `Logs` of a non-2xx reply, but it always captures the
//! handler's stderr. Metrics are exported in Prometheus text format at `/metrics`. Events that can occur
//! once per record are logged within a budget per second (the metric still counts every one), so a batch
//! of bad events cannot flood the log.
//!
//! This module depends on nothing else in the crate: events carry plain values, so every layer can emit
//! them without the layers depending on each other through here.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the tracing subscriber (JSON lines when `json`, human-readable otherwise) and the metrics
/// recorder. Safe to call more than once (later calls are no-ops).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    metrics_handle();
}

/// The process-wide Prometheus handle (installed on first use).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = quality_buckets(PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests); ours still renders what it records.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// An Event Hubs (or file) batch arrived.
pub struct BatchReceived<'a> {
    pub source: &'a str,
    pub events: usize,
}

impl BatchReceived<'_> {
    pub fn emit(self) {
        tracing::debug!(source = self.source, events = self.events, "Batch received.");
        histogram!("sentiment_lake_batch_events").record(self.events as f64);
        counter!("sentiment_lake_events_received_total").increment(self.events as u64);
    }
}

/// Rows of a legacy file read and staged so far (per segment, so the rate shows while a file migrates).
pub struct MigrationProgress {
    pub staged: u64,
    pub dead_lettered: u64,
}

impl MigrationProgress {
    pub fn emit(self) {
        counter!("sentiment_lake_migration_rows_staged_total").increment(self.staged);
        counter!("sentiment_lake_migration_rows_dead_lettered_total").increment(self.dead_lettered);
    }
}

/// A `dead-letters replay` run ended.
pub struct DeadLettersReplayed {
    pub selected: usize,
    pub landed: usize,
    pub still_failing: usize,
    pub not_settled: usize,
    pub dry_run: bool,
}

impl DeadLettersReplayed {
    pub fn emit(self) {
        tracing::info!(
            selected = self.selected,
            landed = self.landed,
            still_failing = self.still_failing,
            not_settled = self.not_settled,
            dry_run = self.dry_run,
            "Dead letters replayed."
        );
        if !self.dry_run {
            counter!("sentiment_lake_dead_letters_replayed_total", "outcome" => "landed").increment(self.landed as u64);
            counter!("sentiment_lake_dead_letters_replayed_total", "outcome" => "still_failing").increment(self.still_failing as u64);
        }
    }
}

/// A legacy file was read to its end (its rows staged, or found committed).
pub struct FileMigrated<'a> {
    pub source: &'a str,
    pub rows: u64,
    pub already_committed: u64,
    pub staged: u64,
    pub dead_lettered: u64,
}

impl FileMigrated<'_> {
    pub fn emit(self) {
        tracing::info!(
            source = self.source,
            rows = self.rows,
            already_committed = self.already_committed,
            staged = self.staged,
            dead_lettered = self.dead_lettered,
            "Legacy file migrated."
        );
        counter!("sentiment_lake_migration_files_total", "outcome" => "read").increment(1);
    }
}

/// A legacy file could not be migrated (refused for good, or for now).
pub struct FileMigrationFailed<'a> {
    pub file: &'a str,
    pub error: &'a dyn std::error::Error,
    pub retryable: bool,
}

impl FileMigrationFailed<'_> {
    pub fn emit(self) {
        tracing::error!(file = self.file, error = %self.error, retryable = self.retryable, "Legacy file not migrated.");
        let outcome = if self.retryable { "retryable" } else { "refused" };
        counter!("sentiment_lake_migration_files_total", "outcome" => outcome).increment(1);
    }
}

/// A compaction run rewrote small files.
pub struct TableCompacted<'a> {
    pub table: &'a str,
    pub files_rewritten: usize,
    pub files_written: usize,
    pub bytes_read: u64,
    pub seconds: f64,
}

impl TableCompacted<'_> {
    pub fn emit(self) {
        tracing::info!(
            table = self.table,
            files_rewritten = self.files_rewritten,
            files_written = self.files_written,
            bytes_read = self.bytes_read,
            seconds = self.seconds,
            "Table compacted."
        );
        let table = self.table.to_string();
        counter!("sentiment_lake_compaction_files_rewritten_total", "table" => table.clone()).increment(self.files_rewritten as u64);
        counter!("sentiment_lake_compaction_bytes_read_total", "table" => table.clone()).increment(self.bytes_read);
        histogram!("sentiment_lake_compaction_seconds", "table" => table).record(self.seconds);
    }
}

/// A table's health was measured (by maintenance, `/api/health/table` or `doctor`).
pub struct TableHealthMeasured<'a> {
    pub table: &'a str,
    pub data_files: usize,
    pub small_files: usize,
    pub snapshots: usize,
    pub manifests: usize,
    pub bytes: u64,
    pub last_commit_age_s: Option<i64>,
}

impl TableHealthMeasured<'_> {
    pub fn emit(self) {
        let table = self.table.to_string();
        gauge!("sentiment_lake_table_data_files", "table" => table.clone()).set(self.data_files as f64);
        gauge!("sentiment_lake_table_small_files", "table" => table.clone()).set(self.small_files as f64);
        gauge!("sentiment_lake_table_snapshots", "table" => table.clone()).set(self.snapshots as f64);
        gauge!("sentiment_lake_table_manifests", "table" => table.clone()).set(self.manifests as f64);
        gauge!("sentiment_lake_table_bytes", "table" => table.clone()).set(self.bytes as f64);
        if let Some(age) = self.last_commit_age_s {
            gauge!("sentiment_lake_table_last_commit_age_seconds", "table" => table).set(age as f64);
        }
    }
}

/// Valid rows and dead letters of one batch were staged.
pub struct BatchStaged<'a> {
    pub source: &'a str,
    pub rows: usize,
    pub dead_letters: usize,
    pub enriched: usize,
    pub elapsed: Duration,
}

impl BatchStaged<'_> {
    pub fn emit(self) {
        tracing::debug!(
            source = self.source,
            rows = self.rows,
            dead_letters = self.dead_letters,
            enriched = self.enriched,
            elapsed_ms = self.elapsed.as_millis() as u64,
            "Batch staged."
        );
        counter!("sentiment_lake_rows_staged_total").increment(self.rows as u64);
        counter!("sentiment_lake_rows_enriched_total").increment(self.enriched as u64);
        histogram!("sentiment_lake_stage_seconds").record(self.elapsed.as_secs_f64());
    }
}

/// A per-second allowance of log lines for one kind of event.
struct LogBudget {
    per_second: u32,
    state: Mutex<(Option<Instant>, u32, u64)>,
}

impl LogBudget {
    const fn new(per_second: u32) -> Self {
        Self { per_second, state: Mutex::new((None, 0, 0)) }
    }

    /// `Some(suppressed since the last logged line)` when this occurrence may be logged.
    fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (window, used, suppressed) = &mut *state;
        if window.is_none_or(|start| start.elapsed() >= Duration::from_secs(1)) {
            *window = Some(Instant::now());
            *used = 0;
        }
        if *used < self.per_second {
            *used += 1;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

static REJECTION_LOGS: LogBudget = LogBudget::new(20);

/// One event refused; the reason goes to the dead-letter table too.
pub struct RecordRejected<'a> {
    pub source: &'a str,
    pub sequence_number: i64,
    pub error_class: &'static str,
    pub reason: &'a str,
}

impl RecordRejected<'_> {
    pub fn emit(self) {
        if let Some(suppressed) = REJECTION_LOGS.allow() {
            tracing::warn!(
                source = self.source,
                sequence_number = self.sequence_number,
                error_class = self.error_class,
                reason = self.reason,
                suppressed_since_last = suppressed,
                "Record dead-lettered."
            );
        }
        counter!("sentiment_lake_records_rejected_total", "class" => self.error_class).increment(1);
    }
}

/// A commit call finished for one table.
pub struct BatchCommitted<'a> {
    pub table: &'a str,
    pub segments: usize,
    pub staged_bytes: u64,
    pub rows: usize,
    pub duplicates: usize,
    pub data_files: usize,
    pub snapshots: usize,
    pub attempts: u32,
    pub snapshot_id: Option<i64>,
    pub latency: Duration,
}

impl BatchCommitted<'_> {
    pub fn emit(self) {
        if self.segments == 0 {
            return;
        }
        macro_rules! committed {
            ($level:ident) => {
                tracing::$level!(
                    table = self.table,
                    segments = self.segments,
                    staged_bytes = self.staged_bytes,
                    rows = self.rows,
                    duplicates = self.duplicates,
                    data_files = self.data_files,
                    snapshots = self.snapshots,
                    attempts = self.attempts,
                    snapshot_id = self.snapshot_id,
                    latency_ms = self.latency.as_millis() as u64,
                    "Staged entries committed."
                )
            };
        }
        // A pass that only tidied range markers (most dead-letter passes) is not news.
        if self.rows > 0 || self.snapshots > 0 {
            committed!(info);
        } else {
            committed!(debug);
        }
        let table = self.table.to_string();
        counter!("sentiment_lake_rows_written_total", "table" => table.clone()).increment(self.rows as u64);
        counter!("sentiment_lake_duplicates_dropped_total", "table" => table.clone()).increment(self.duplicates as u64);
        counter!("sentiment_lake_data_files_written_total", "table" => table.clone()).increment(self.data_files as u64);
        counter!("sentiment_lake_snapshots_total", "table" => table.clone()).increment(self.snapshots as u64);
        histogram!("sentiment_lake_commit_staged_bytes", "table" => table.clone()).record(self.staged_bytes as f64);
        histogram!("sentiment_lake_commit_seconds", "table" => table).record(self.latency.as_secs_f64());
        if let Some(bytes) = peak_rss_bytes() {
            gauge!("sentiment_lake_peak_rss_bytes").set(bytes as f64);
        }
    }
}

/// Histograms of the data's quality, with the quality table's bins as buckets (so the two agree).
pub const QUALITY_SCORE: &str = "sentiment_lake_quality_score";
pub const QUALITY_MAGNITUDE: &str = "sentiment_lake_quality_magnitude";
pub const QUALITY_LATENESS: &str = "sentiment_lake_quality_lateness_seconds";
pub const SCORE_BUCKETS: [f64; 20] = [-0.9, -0.8, -0.7, -0.6, -0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
pub const MAGNITUDE_BUCKETS: [f64; 13] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
pub const LATENESS_BUCKETS: [f64; 10] = [1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0, 604800.0];

fn quality_buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    use metrics_exporter_prometheus::Matcher;
    [(QUALITY_SCORE, &SCORE_BUCKETS[..]), (QUALITY_MAGNITUDE, &MAGNITUDE_BUCKETS[..]), (QUALITY_LATENESS, &LATENESS_BUCKETS[..])]
        .into_iter()
        .fold(builder, |builder, (name, buckets)| {
            builder.set_buckets_for_metric(Matcher::Full(name.to_string()), buckets).expect("buckets are not empty")
        })
}

/// Model labels a process exports distributions under; later ones are counted as `(other)`, so a producer
/// naming a new model per event cannot grow the metrics without bound.
const MAX_MODEL_LABELS: usize = 16;

fn model_label(label: &str) -> String {
    static SEEN: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(|| Mutex::new(Vec::new())).lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|s| s == label) {
        return label.to_string();
    }
    if seen.len() < MAX_MODEL_LABELS {
        seen.push(label.to_string());
        return label.to_string();
    }
    "(other)".to_string()
}

/// Counts over bins, as `(a value inside the bin, how many)`.
pub type BinCounts = Vec<(f64, u64)>;

/// A commit's quality profile, added up over its sources, recorded as metrics; and whether its row
/// reached the quality table.
pub struct QualityProfiled<'a> {
    pub sources: usize,
    pub rows: u64,
    pub duplicates: u64,
    pub future_dated: u64,
    pub dead_letters_by_rule: &'a std::collections::BTreeMap<String, u64>,
    pub dead_letters_by_field: &'a std::collections::BTreeMap<String, u64>,
    pub nulls: &'a std::collections::BTreeMap<String, u64>,
    pub lateness: BinCounts,
    /// Per `model/version`: scores and magnitudes.
    pub models: Vec<(String, BinCounts, BinCounts)>,
    pub elapsed: Duration,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl QualityProfiled<'_> {
    pub fn emit(self) {
        counter!("sentiment_lake_quality_rows_total").increment(self.rows);
        counter!("sentiment_lake_quality_duplicates_total").increment(self.duplicates);
        counter!("sentiment_lake_quality_future_dated_total").increment(self.future_dated);
        for (rule, n) in self.dead_letters_by_rule {
            counter!("sentiment_lake_quality_dead_letters_total", "rule" => rule.clone()).increment(*n);
        }
        for (field, n) in self.dead_letters_by_field {
            counter!("sentiment_lake_quality_dead_letter_fields_total", "field" => field.clone()).increment(*n);
        }
        for (field, n) in self.nulls {
            counter!("sentiment_lake_quality_nulls_total", "field" => field.clone()).increment(*n);
        }
        for (value, n) in self.lateness {
            histogram!(QUALITY_LATENESS).record_many(value, n as usize);
        }
        for (label, scores, magnitudes) in self.models {
            let label = model_label(&label);
            for (value, n) in scores {
                histogram!(QUALITY_SCORE, "model" => label.clone()).record_many(value, n as usize);
            }
            for (value, n) in magnitudes {
                histogram!(QUALITY_MAGNITUDE, "model" => label.clone()).record_many(value, n as usize);
            }
        }
        match self.error {
            Some(error) => {
                // Once per commit at most.
                tracing::warn!(error = %error, sources = self.sources, "The commit's quality profile was not appended to the quality table.");
                counter!("sentiment_lake_quality_append_failures_total").increment(1);
            }
            None => {
                tracing::debug!(sources = self.sources, rows = self.rows, elapsed_ms = self.elapsed.as_millis() as u64, "Quality profile appended.");
                histogram!("sentiment_lake_quality_append_seconds").record(self.elapsed.as_secs_f64());
            }
        }
    }
}

/// The rollup table followed the records table after a commit or a rollback.
pub struct RollupFollowed<'a> {
    pub appends: usize,
    pub rows: u64,
    pub rollup_rows: usize,
    /// Small rollup files written again with the new rows.
    pub folded_files: usize,
    pub rebuilt: bool,
    pub moved_back_to: Option<i64>,
    /// Why the rollup stays behind, when it does.
    pub behind: Option<&'a str>,
    pub elapsed: Duration,
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl RollupFollowed<'_> {
    pub fn emit(self) {
        if let Some(error) = self.error {
            // Once per commit at most, and the next commit retries: a warning each time is not a flood.
            tracing::warn!(error = %error, "The rollup did not follow this commit; it stays behind (answers take the rest from raw rows) until the next one.");
            counter!("sentiment_lake_rollup_follow_failures_total").increment(1);
            return;
        }
        if let Some(behind) = self.behind {
            tracing::warn!(reason = behind, "The rollup table is behind the records table; answers come from raw rows.");
            counter!("sentiment_lake_rollup_behind_total").increment(1);
        }
        if self.appends > 0 || self.rebuilt || self.moved_back_to.is_some() {
            tracing::debug!(
                appends = self.appends,
                rows = self.rows,
                rollup_rows = self.rollup_rows,
                folded_files = self.folded_files,
                rebuilt = self.rebuilt,
                moved_back_to = self.moved_back_to,
                elapsed_ms = self.elapsed.as_millis() as u64,
                "Rollup followed the records table."
            );
        }
        counter!("sentiment_lake_rollup_rows_written_total").increment(self.rollup_rows as u64);
        counter!("sentiment_lake_rollup_files_folded_total").increment(self.folded_files as u64);
        histogram!("sentiment_lake_rollup_follow_seconds").record(self.elapsed.as_secs_f64());
    }
}

/// A replication round brought one table's replica up to date (or as far as it got).
pub struct TableReplicated<'a> {
    pub table: &'a str,
    pub versions: usize,
    pub files: u64,
    pub bytes: u64,
    /// How long the oldest primary commit the replica lacks has existed after the round (0: none).
    pub lag_seconds: f64,
}

impl TableReplicated<'_> {
    pub fn emit(self) {
        if self.versions > 0 {
            tracing::info!(
                table = self.table,
                versions = self.versions,
                files = self.files,
                bytes = self.bytes,
                lag_seconds = self.lag_seconds,
                "Replica updated."
            );
        }
        let labels = [("table", self.table.to_string())];
        gauge!("sentiment_lake_replication_lag_seconds", &labels).set(self.lag_seconds);
        counter!("sentiment_lake_replication_versions_total", &labels).increment(self.versions as u64);
        counter!("sentiment_lake_replication_files_total", &labels).increment(self.files);
        counter!("sentiment_lake_replication_bytes_total", &labels).increment(self.bytes);
    }
}

/// A replication round stopped short for one table; the next round tries again where it is retryable.
pub struct ReplicationFailed<'a> {
    pub table: &'a str,
    pub error: &'a str,
    pub retryable: bool,
}

impl ReplicationFailed<'_> {
    pub fn emit(self) {
        // Once per table and round: not a flood.
        tracing::warn!(
            table = self.table,
            error = self.error,
            retryable = self.retryable,
            "Replication of this table stopped short; the replica stays at its last complete state."
        );
        counter!("sentiment_lake_replication_failures_total", "table" => self.table.to_string()).increment(1);
    }
}

/// A staged entry could not be read and was moved to the quarantine.
pub struct SegmentQuarantined<'a> {
    pub table: &'a str,
    pub path: &'a str,
    pub reason: &'a str,
}

impl SegmentQuarantined<'_> {
    pub fn emit(self) {
        tracing::error!(table = self.table, path = self.path, reason = self.reason, "Staged entry quarantined; other data goes on.");
        counter!("sentiment_lake_segments_quarantined_total", "table" => self.table.to_string()).increment(1);
    }
}

/// An invocation envelope that can never be processed was stored whole in the quarantine.
pub struct EnvelopeQuarantined<'a> {
    pub function: &'a str,
    pub path: &'a str,
    pub bytes: u64,
    pub reason: &'a str,
}

impl EnvelopeQuarantined<'_> {
    pub fn emit(self) {
        tracing::error!(
            function = self.function,
            path = self.path,
            bytes = self.bytes,
            reason = self.reason,
            "Invocation stored in the quarantine and acknowledged."
        );
        counter!("sentiment_lake_envelopes_quarantined_total", "function" => self.function.to_string()).increment(1);
    }
}

/// A gap in a source's sequence numbers outlived its grace period and was bridged.
pub struct SequenceGap<'a> {
    pub table: &'a str,
    pub source: &'a str,
    pub from: i64,
    pub to: i64,
}

impl SequenceGap<'_> {
    pub fn emit(self) {
        tracing::warn!(
            table = self.table,
            source = self.source,
            from = self.from,
            to = self.to,
            "Sequence numbers never staged; the watermark moves past them."
        );
        counter!("sentiment_lake_sequence_gap_events_total", "table" => self.table.to_string()).increment((self.to - self.from + 1).max(0) as u64);
    }
}

/// Ranges a rollback took out of a table, still awaited from a replay (each commit tick says so).
pub struct ReplayAwaited<'a> {
    pub table: &'a str,
    pub ranges: Vec<AwaitedRange<'a>>,
}

/// One source's range awaited from its replay: sequence numbers `after+1..=through`.
pub struct AwaitedRange<'a> {
    pub source: &'a str,
    pub after: Option<i64>,
    pub through: i64,
    pub rolled_back_at: chrono::DateTime<chrono::Utc>,
    pub events: u64,
}

impl ReplayAwaited<'_> {
    pub fn emit(self) {
        for range in &self.ranges {
            tracing::warn!(
                table = self.table,
                source = range.source,
                after = ?range.after,
                through = range.through,
                rolled_back_at = %range.rolled_back_at,
                "Waiting for the replay of a rolled-back range; the source's newer entries wait too (release with `rollback --release`)."
            );
        }
        let events: u64 = self.ranges.iter().map(|range| range.events).sum();
        gauge!("sentiment_lake_replay_awaited_events", "table" => self.table.to_string()).set(events as f64);
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), for commit reports and the memory benchmark.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// A commit attempt lost a race or failed and will be retried after re-reading the table.
pub struct CommitConflict<'a> {
    pub table: &'a str,
}

impl CommitConflict<'_> {
    pub fn emit(self) {
        counter!("sentiment_lake_commit_conflicts_total", "table" => self.table.to_string()).increment(1);
    }
}

/// An invocation failed as a whole and will be retried by the host.
pub struct InvocationFailed {
    /// `body`, `lake`, `migrate` or `maintain`.
    pub cause: &'static str,
}

impl InvocationFailed {
    pub fn emit(self) {
        counter!("sentiment_lake_invocations_failed_total", "cause" => self.cause).increment(1);
    }
}

/// A commit pass failed; what it would have committed stays staged for the next pass.
pub struct CommitFailed {
    pub retryable: bool,
}

impl CommitFailed {
    pub fn emit(self) {
        counter!("sentiment_lake_commit_failures_total", "retryable" => if self.retryable { "true" } else { "false" }).increment(1);
    }
}

/// The answer cache was consulted (or failed to store an answer).
pub struct CacheLookup<'a> {
    pub query: &'static str,
    /// `hit`, `miss`, `bypass` (cache unreachable: degraded) or `store_failed`.
    pub outcome: &'static str,
    pub elapsed: Duration,
    /// Why the cache could not be used. `None` for a lookup that worked, or for one skipped after a failure
    /// already logged (logging each would flood the log while Redis is down).
    pub error: Option<&'a dyn std::fmt::Display>,
}

impl CacheLookup<'_> {
    pub fn emit(self) {
        let query = self.query;
        match self.error {
            Some(error) => {
                tracing::warn!(query, outcome = self.outcome, %error, "Cache unavailable; answering from the engine.")
            }
            None => tracing::debug!(query, outcome = self.outcome, "Cache lookup."),
        }
        counter!("sentiment_lake_cache_requests_total", "query" => query, "outcome" => self.outcome).increment(1);
        histogram!("sentiment_lake_cache_seconds", "outcome" => self.outcome).record(self.elapsed.as_secs_f64());
    }
}

/// A query was answered (from the cache or the engine).
pub struct QueryAnswered {
    pub query: &'static str,
    pub engine: &'static str,
    /// `hit`, `miss`, `shared` or `bypass`.
    pub cache: &'static str,
    pub elapsed: Duration,
}

impl QueryAnswered {
    pub fn emit(self) {
        let (query, cache) = (self.query, self.cache);
        tracing::debug!(query, engine = self.engine, cache, elapsed_ms = self.elapsed.as_secs_f64() * 1e3, "Query answered.");
        histogram!("sentiment_lake_query_seconds", "query" => query, "engine" => self.engine, "cache" => cache).record(self.elapsed.as_secs_f64());
    }
}

/// An engine query was refused because every engine slot stayed busy for the queue wait.
pub struct QueryShed {
    pub query: &'static str,
    pub engine: &'static str,
}

impl QueryShed {
    pub fn emit(self) {
        tracing::warn!(query = self.query, engine = self.engine, "Engine at its concurrency limit; query refused with 503.");
        counter!("sentiment_lake_query_shed_total", "query" => self.query, "engine" => self.engine).increment(1);
    }
}

/// A statement went to Dremio (or another Flight SQL server).
pub struct DremioStatement {
    /// `read`, `idempotent` or `once`.
    pub kind: &'static str,
    /// `ok`, `unavailable`, `circuit_open` or `error`.
    pub outcome: &'static str,
    pub retries: u32,
    pub elapsed: Duration,
}

impl DremioStatement {
    pub fn emit(self) {
        let (kind, outcome) = (self.kind, self.outcome);
        tracing::debug!(kind, outcome, retries = self.retries, elapsed_ms = self.elapsed.as_secs_f64() * 1e3, "Dremio statement.");
        histogram!("sentiment_lake_dremio_statement_seconds", "kind" => kind, "outcome" => outcome).record(self.elapsed.as_secs_f64());
        counter!("sentiment_lake_dremio_retries_total", "kind" => kind).increment(u64::from(self.retries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_budget_allows_a_burst_then_counts_what_it_suppressed() {
        let budget = LogBudget::new(3);
        let allowed: Vec<Option<u64>> = (0..5).map(|_| budget.allow()).collect();
        assert_eq!(allowed, vec![Some(0), Some(0), Some(0), None, None]);
        budget.state.lock().unwrap().0 = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(budget.allow(), Some(2), "the next window reports the two suppressed lines");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 1024 * 1024);
        }
    }
}
