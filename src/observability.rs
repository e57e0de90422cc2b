//! Logging and metrics. Each occurrence worth counting is a named event whose `emit()` writes the log line
//! and updates the metric together, so the two never disagree.
//!
//! Logs go to stderr: the Functions host discards the `Logs` of a non-2xx reply, but it always captures the
//! handler's stderr. Metrics are exported in Prometheus text format at `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::lake::CommitReport;

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
        let recorder = PrometheusBuilder::new().build_recorder();
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

/// One event refused; the reason goes to the dead-letter table too.
pub struct RecordRejected<'a> {
    pub source: &'a str,
    pub sequence_number: i64,
    pub error_class: &'static str,
    pub reason: &'a str,
}

impl RecordRejected<'_> {
    pub fn emit(self) {
        tracing::warn!(
            source = self.source,
            sequence_number = self.sequence_number,
            error_class = self.error_class,
            reason = self.reason,
            "Record dead-lettered."
        );
        counter!("sentiment_lake_records_rejected_total", "class" => self.error_class).increment(1);
    }
}

/// A commit pass finished for one table.
pub struct BatchCommitted<'a> {
    pub report: &'a CommitReport,
}

impl BatchCommitted<'_> {
    pub fn emit(self) {
        let r = self.report;
        if r.segments == 0 {
            return;
        }
        tracing::info!(
            table = %r.table,
            segments = r.segments,
            rows = r.rows_committed,
            duplicates = r.duplicates_dropped,
            data_files = r.data_files,
            attempts = r.attempts,
            snapshot_id = r.snapshot_id,
            latency_ms = r.latency.as_millis() as u64,
            "Staged segments committed."
        );
        let table = r.table.clone();
        counter!("sentiment_lake_rows_written_total", "table" => table.clone()).increment(r.rows_committed as u64);
        counter!("sentiment_lake_duplicates_dropped_total", "table" => table.clone()).increment(r.duplicates_dropped as u64);
        counter!("sentiment_lake_data_files_written_total", "table" => table.clone()).increment(r.data_files as u64);
        histogram!("sentiment_lake_commit_seconds", "table" => table).record(r.latency.as_secs_f64());
    }
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

/// The answer cache was consulted (or failed to store an answer).
pub struct CacheLookup<'a> {
    pub query: crate::query::QueryKind,
    /// `hit`, `miss`, `bypass` (cache unreachable: degraded) or `store_failed`.
    pub outcome: &'static str,
    pub elapsed: Duration,
    pub error: Option<&'a crate::cache::CacheError>,
}

impl CacheLookup<'_> {
    pub fn emit(self) {
        let query = self.query.name();
        match self.error {
            // Skipped lookups follow a failure already logged; logging each would flood the log while Redis is down.
            Some(crate::cache::CacheError::Skipped) => {}
            Some(error) => tracing::warn!(query, outcome = self.outcome, %error, "Cache unavailable; answering from the engine."),
            None => tracing::debug!(query, outcome = self.outcome, "Cache lookup."),
        }
        counter!("sentiment_lake_cache_requests_total", "query" => query, "outcome" => self.outcome).increment(1);
        histogram!("sentiment_lake_cache_seconds", "outcome" => self.outcome).record(self.elapsed.as_secs_f64());
    }
}

/// A query was answered (from the cache or the engine).
pub struct QueryAnswered {
    pub query: crate::query::QueryKind,
    pub engine: &'static str,
    pub cache: crate::query::CacheStatus,
    pub elapsed: Duration,
}

impl QueryAnswered {
    pub fn emit(self) {
        let (query, cache) = (self.query.name(), format!("{:?}", self.cache).to_lowercase());
        tracing::debug!(query, engine = self.engine, cache, elapsed_ms = self.elapsed.as_secs_f64() * 1e3, "Query answered.");
        histogram!("sentiment_lake_query_seconds", "query" => query, "engine" => self.engine, "cache" => cache).record(self.elapsed.as_secs_f64());
    }
}
