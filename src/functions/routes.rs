//! One axum handler per function, and the [`app`] router factory (tests drive it without a socket).

use std::sync::Arc;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::json;
use tower_http::trace::TraceLayer;

use super::api::{self, ApiConfig};
use super::outcome::{success, InvocationError};
use super::payload::eventgrid::GridEvent;
use super::payload::eventhub::{EventDataType, EventHubBatch, Refused};
use super::payload::timer::TimerInfo;
use super::payload::InvokeRequest;
use crate::committer::Committer;
use crate::ingest::Pipeline;
use crate::lake::{Lake, LakeError, TableKind};
use crate::query::QueryService;

/// Function names: the host POSTs to `/<name>`, and each has `functions/<name>/function.json`.
pub const INGEST_FUNCTION: &str = "IngestEvents";
pub const COMMIT_FUNCTION: &str = "CommitStaged";
pub const MIGRATE_FUNCTION: &str = "MigrateBlob";
pub const MAINTAIN_FUNCTION: &str = "MaintainTable";
pub const REPLICATE_FUNCTION: &str = "ReplicateLake";

/// The default limit on an invocation body held in memory: 1,000 events of 64 KB as the host encodes them
/// (a string-wrapped array escapes each body's quotes twice) fit with room to spare. Decoding holds about
/// twice the body at its peak, so one such invocation costs ~256 MiB.
pub const DEFAULT_MAX_INVOCATION_BYTES: usize = 128 * 1024 * 1024;

/// How the Event Hubs binding is declared in function.json.
#[derive(Debug, Clone)]
pub struct EventHubBinding {
    pub name: String,
    pub data_type: EventDataType,
    /// Used in source ids when the host's `PartitionContext` omits them (old extensions).
    pub namespace: String,
    pub event_hub: String,
}

impl Default for EventHubBinding {
    fn default() -> Self {
        Self { name: "events".into(), data_type: EventDataType::String, namespace: "unknown-namespace".into(), event_hub: "unknown-hub".into() }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub lake: Lake,
    pub pipeline: Pipeline,
    pub binding: Arc<EventHubBinding>,
    pub committer: Committer,
    pub query: Arc<QueryService>,
    pub max_invocation_bytes: usize,
    /// What the `MaintainTable` timer runs, and who runs it.
    pub maintenance: crate::maintain::MaintenancePolicy,
    pub maintenance_backend: crate::maintain::MaintenanceBackend,
    /// Where legacy uploads may come from: an Event Grid event naming a blob elsewhere is refused.
    pub legacy_location: Option<crate::storage::AzureLocation>,
    /// What `GET /api/doctor` runs: the `doctor` checks with the app's own settings (`serve` sets them).
    pub doctor: Option<Doctor>,
    /// The replica the `ReplicateLake` timer keeps up to date, and `health` reports on.
    pub replica: Option<Arc<crate::replica::ReplicaService>>,
    /// When the data's signals fire (`health` shows them).
    pub signals: crate::maintain::signals::SignalPolicy,
}

/// `doctor`'s checks as the app runs them: whether every one passed, and their report.
pub type Doctor = Arc<dyn Fn() -> futures::future::BoxFuture<'static, (bool, String)> + Send + Sync>;

pub fn app(state: AppState, api_config: &ApiConfig) -> Router {
    let query_api = api::router(state.query.clone(), api_config);
    Router::new()
        .route("/", get(ready))
        .route(&format!("/{INGEST_FUNCTION}"), post(ingest_events))
        .route(&format!("/{COMMIT_FUNCTION}"), post(commit_staged))
        .route(&format!("/{MIGRATE_FUNCTION}"), post(migrate_upload))
        .route(&format!("/{MAINTAIN_FUNCTION}"), post(maintain_table))
        .route(&format!("/{REPLICATE_FUNCTION}"), post(replicate_lake))
        .route("/api/health", get(health))
        .route("/api/health/table", get(table_health_report))
        .route("/api/quality", get(quality_report))
        .route("/api/doctor", get(doctor))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(query_api)
        .layer(TraceLayer::new_for_http())
}

/// The host polls `GET /` until anything answers.
async fn ready() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

fn invocation_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-azure-functions-invocationid").and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A request body read up to a limit.
enum Bounded {
    Complete(Bytes),
    /// Over the limit: what was read so far and the unread rest.
    Oversize {
        head: Bytes,
        rest: BodyDataStream,
    },
}

async fn read_bounded(body: Body, limit: usize) -> Result<Bounded, InvocationError> {
    let mut stream = body.into_data_stream();
    let mut buffer = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| InvocationError::Body(e.to_string()))?;
        if buffer.len() + chunk.len() > limit {
            buffer.extend_from_slice(&chunk);
            return Ok(Bounded::Oversize { head: buffer.freeze(), rest: stream });
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bounded::Complete(buffer.freeze()))
}

/// Stores an invocation that can never be processed in the quarantine and acknowledges it: retrying it
/// would fail the same way forever and hold the partition back.
async fn quarantine_envelope(
    state: &AppState,
    function: &str,
    invocation: Option<&str>,
    reason: String,
    head: Bytes,
    rest: impl futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
) -> Result<axum::response::Response, InvocationError> {
    let origin = format!("{function} invocation {}", invocation.unwrap_or("(no id)"));
    let stored = state.lake.quarantine().store_envelope(&reason, &origin, head, rest).await?;
    crate::observability::EnvelopeQuarantined { function, path: &stored.path, bytes: stored.bytes, reason: &reason }.emit();
    let summary = format!("{function}: invocation of {} bytes not processable ({reason}); stored whole at {}", stored.bytes, stored.path);
    Ok(success(summary, json!({"quarantined": stored.path, "bytes": stored.bytes, "reason": reason})).into_response())
}

async fn ingest_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<axum::response::Response, InvocationError> {
    let invocation = invocation_id(&headers);
    let body = match read_bounded(body, state.max_invocation_bytes).await? {
        Bounded::Complete(body) => body,
        Bounded::Oversize { head, rest } => {
            let reason = format!("the invocation is larger than the {} byte limit (--max-invocation-bytes)", state.max_invocation_bytes);
            return quarantine_envelope(&state, INGEST_FUNCTION, invocation.as_deref(), reason, head, rest).await;
        }
    };
    let binding = &state.binding;
    let batch = match EventHubBatch::from_body(body, &binding.name, binding.data_type) {
        Ok(batch) => batch,
        Err(Refused { error, body }) => {
            return quarantine_envelope(&state, INGEST_FUNCTION, invocation.as_deref(), error.to_string(), body, futures::stream::empty()).await;
        }
    };
    let source = batch.into_source_batch(&binding.namespace, &binding.event_hub, invocation.clone());
    let report = match state.pipeline.ingest(&state.lake, &source).await {
        Ok(report) => report,
        Err(e) if e.is_retryable() => return Err(e.into()),
        // Staging failed in a way retrying cannot fix: keep the events, acknowledge, let someone look.
        Err(e) => {
            let reason = format!("staging failed permanently: {e}");
            return quarantine_envelope(&state, INGEST_FUNCTION, invocation.as_deref(), reason, source.to_ndjson(), futures::stream::empty()).await;
        }
    };
    state.committer.record_staged(report.staged_rows + report.dead_lettered);
    let summary = format!(
        "{}: {} events, {} rows staged ({} enriched), {} dead-lettered",
        source.source, report.received, report.staged_rows, report.enriched, report.dead_lettered
    );
    Ok(success(summary, report).into_response())
}

/// How long one migration of a file holds its lease without renewing it; renewed every quarter of this.
const MIGRATION_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// A legacy file uploaded to the legacy container, announced by Event Grid (`eventGridTrigger`: the event
/// only, never the file, so no size passes through the host). The file is streamed from storage by its URL:
/// row groups in ranges, the version the store has now. Its rows are staged, committed and the file
/// retired to the migration ledger. A file that can never be migrated is quarantined with its reason.
///
/// One migration of a file runs at a time: it holds a lease named after the file, renewed while it runs.
/// Event Grid delivers again when a delivery fails or takes longer than its timeout; a delivery that finds
/// the lease taken fails (so Event Grid keeps the event and delivers it later), and the first delivery after
/// the migration finds the file committed. Duplicates commit nothing twice either way: the rows of a file
/// version are one source whose sequence numbers the ledger already holds.
async fn migrate_upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<axum::response::Response, InvocationError> {
    let invocation = invocation_id(&headers);
    let body = match read_bounded(body, state.max_invocation_bytes).await? {
        Bounded::Complete(body) => body,
        Bounded::Oversize { head, rest } => {
            let reason = format!("the invocation is larger than the {} byte limit (--max-invocation-bytes)", state.max_invocation_bytes);
            return quarantine_envelope(&state, MIGRATE_FUNCTION, invocation.as_deref(), reason, head, rest).await;
        }
    };
    let refuse =
        |reason: String, body: Bytes| quarantine_envelope(&state, MIGRATE_FUNCTION, invocation.as_deref(), reason, body, futures::stream::empty());
    let upload = match serde_json::from_slice::<InvokeRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| GridEvent::from_invocation(&r, "event").map_err(|e| e.to_string()))
    {
        Ok(GridEvent::Created(upload)) => upload,
        Ok(GridEvent::Ignored { event_type, reason }) => {
            tracing::info!(event_type, reason, "Event Grid event ignored.");
            return Ok(success(format!("{event_type}: ignored: {reason}"), json!({"ignored": event_type, "reason": reason})).into_response());
        }
        Err(reason) => return refuse(format!("not an Event Grid invocation: {reason}"), body).await,
    };
    tracing::info!(url = %upload.url, api = %upload.api, event = ?upload.event_id, event_time = ?upload.event_time, "Legacy upload announced.");
    let location = match crate::storage::AzureLocation::from_blob_url(&upload.url) {
        Ok(location) => location,
        Err(e) => return refuse(e.to_string(), body).await,
    };
    match (&state.legacy_location, state.lake.warehouse().location()) {
        (Some(legacy), _) if !legacy.contains(&location) => {
            return refuse(format!("{} is outside the legacy location {} (--legacy-location)", location.url(), legacy.url()), body).await;
        }
        // Without an allow-list, the lake's own container is still never a legacy source: its data files
        // would come back as rows.
        (None, crate::storage::Location::Azure(warehouse)) if warehouse.same_container(&location) => {
            return refuse(
                format!("{} is in the lake's own container; legacy uploads come from elsewhere (--legacy-location)", location.url()),
                body,
            )
            .await;
        }
        _ => {}
    }
    let lease = crate::migrate::lease_name(&location.url());
    let holder = invocation.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if !state.lake.try_lease(&lease, &holder, MIGRATION_LEASE).await? {
        return Err(InvocationError::Busy(format!(
            "{} is being migrated by another invocation; Event Grid delivers this event again and that delivery finds it done",
            location.url()
        )));
    }
    let held = HeldLease::renewed(state.lake.clone(), lease, holder);
    let outcome = migrate_located(&state, &location).await;
    held.release().await;
    match outcome {
        Ok(response) => Ok(response),
        Err(Refusal::Permanent(reason)) => refuse(reason, body).await,
        Err(Refusal::Retry(e)) => Err(e),
    }
}

/// A lease renewed in the background while its holder works. Dropped without [`HeldLease::release`] (the
/// request was cancelled: the host gave up on it, the connection broke), it stops renewing and gives the
/// lease back, so the next delivery is not refused for as long as the process lives.
struct HeldLease {
    lake: Lake,
    name: String,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl HeldLease {
    fn renewed(lake: Lake, name: String, holder: String) -> Self {
        let renewal = {
            let (lake, name, holder) = (lake.clone(), name.clone(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(MIGRATION_LEASE / 4).await;
                    match lake.try_lease(&name, &holder, MIGRATION_LEASE).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(lease = %name, "The migration lease was taken over (it lapsed); another delivery migrates the file too. Nothing lands twice; the work is repeated.");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, lease = %name, "The migration lease could not be renewed; it lapses if this goes on."),
                    }
                }
            })
        };
        Self { lake, name, holder, renewal, released: false }
    }

    async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        if let Err(e) = self.lake.release_lease(&self.name, &self.holder).await {
            tracing::warn!(error = %e, lease = %self.name, "The migration lease was not released; it lapses by itself.");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
        if !self.released {
            let (lake, name, holder) = (self.lake.clone(), self.name.clone(), self.holder.clone());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = lake.release_lease(&name, &holder).await;
                });
            }
        }
    }
}

/// Why a migration did not finish: for good (the file is quarantined), or for now (the delivery fails).
enum Refusal {
    Permanent(String),
    Retry(InvocationError),
}

async fn migrate_located(state: &AppState, location: &crate::storage::AzureLocation) -> Result<axum::response::Response, Refusal> {
    let uri = location.url();
    let opened = match crate::storage::OpenedLocation::open(crate::storage::Location::Azure(location.container_root()), state.lake.storage_settings())
    {
        Ok(opened) => opened,
        Err(e) if e.is_retryable() => return Err(Refusal::Retry(InvocationError::Lake(e.into()))),
        Err(e) => return Err(Refusal::Permanent(e.to_string())),
    };
    let meta = match opened.head(&location.path).await {
        Ok(meta) => meta,
        // Deleted since the upload: nothing to migrate, and nothing lost.
        Err(crate::storage::StorageError::Store { source, .. }) if matches!(*source, object_store::Error::NotFound { .. }) => {
            return Ok(success(format!("{uri}: no longer exists"), json!({"missing": uri})).into_response())
        }
        Err(e) => return Err(Refusal::Retry(InvocationError::Lake(e.into()))),
    };
    let migration = crate::migrate::Migration::new(crate::migrate::rules::Rules::default(), crate::migrate::MigrateOptions::default());
    let retry = |e: InvocationError| Refusal::Retry(e);
    match migration.file(&state.lake, &state.pipeline, opened.store.clone(), &opened.location.url(), &meta).await {
        Ok(report) => {
            // Committed and retired here rather than by the next tick: a file is one large batch, and a
            // retired file keeps its record in the migration ledger instead of the table's watermarks.
            state.committer.record_staged((report.staged + report.dead_lettered) as usize);
            state.committer.commit_now().await.map_err(|e| retry(e.into()))?;
            let retired = crate::migrate::retire_files(&state.lake, std::slice::from_ref(&report)).await.map_err(|e| retry(e.into()))?;
            let summary = format!("{}: {} rows, {} staged, {} dead-lettered", report.source, report.rows, report.staged, report.dead_lettered);
            let mut value = serde_json::to_value(&report).unwrap_or_default();
            value["retirement"] = serde_json::to_value(&retired).unwrap_or_default();
            Ok(success(summary, value).into_response())
        }
        // This lake's own dual-write output lands in the legacy store it watches: acknowledged, not
        // migrated (its rows are in the table) and not quarantined (it is not wrong).
        Err(e @ crate::migrate::MigrateError::DualWrite { .. }) => {
            tracing::info!(file = %uri, "A dual-written file: not migrated.");
            Ok(success(format!("{uri}: ignored: {e}"), json!({"ignored": uri, "reason": e.to_string()})).into_response())
        }
        Err(e) if e.is_retryable() => Err(retry(e.into())),
        Err(e) => Err(Refusal::Permanent(e.to_string())),
    }
}

async fn commit_staged(State(state): State<AppState>, body: Bytes) -> Result<impl IntoResponse, InvocationError> {
    // A timer's payload carries nothing the commit needs; an unreadable one is still a tick.
    match serde_json::from_slice::<InvokeRequest>(&body).map(|request| TimerInfo::from_invocation(&request, "timer")) {
        Ok(Ok(timer)) if timer.is_past_due => {
            tracing::info!("Commit timer is past due; committing now.")
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "Unreadable timer payload; committing anyway."),
        Err(e) => tracing::warn!(error = %e, "Unreadable invocation; committing anyway."),
    }
    // Only the instance holding the commit lease commits: the timer adds no commit beside its loop's.
    let Some(reports) = state.committer.commit_if_leader().await? else {
        return Ok(success("another instance holds the commit lease and commits".to_string(), Vec::<crate::lake::CommitReport>::new()));
    };
    let rows: usize = reports.iter().map(|r| r.rows_committed).sum();
    Ok(success(format!("committed {rows} rows"), reports))
}

/// The `MaintainTable` timer: one bounded maintenance run under the lease (a run that finds the lease
/// taken does nothing and succeeds). Retryable failures answer 500 so the next tick retries anyway.
async fn maintain_table(State(state): State<AppState>, body: Bytes) -> Result<impl IntoResponse, InvocationError> {
    if let Ok(Ok(timer)) = serde_json::from_slice::<InvokeRequest>(&body).map(|request| TimerInfo::from_invocation(&request, "timer")) {
        if timer.is_past_due {
            tracing::info!("Maintenance timer is past due; running now.");
        }
    }
    match crate::maintain::run_with(&state.lake, &state.maintenance, &state.maintenance_backend).await {
        Ok(report) => {
            let summary = match &report.compaction {
                _ if !report.ran => "another maintenance run holds the lease".to_string(),
                Some(c) => format!("compacted {} files into {}", c.files_rewritten, c.files_written),
                None => "maintenance done".to_string(),
            };
            Ok(success(summary, report))
        }
        Err(e) => Err(InvocationError::Maintain(e)),
    }
}

/// The `ReplicateLake` timer: one replication round (a round that finds another replicator's lease does
/// nothing and succeeds). Retryable failures answer 500 so the host logs them; the next tick tries again.
async fn replicate_lake(State(state): State<AppState>) -> Result<impl IntoResponse, InvocationError> {
    let Some(replica) = &state.replica else {
        return Ok(success("no replica is configured (SENTIMENT_LAKE_REPLICA)".to_string(), json!(null)));
    };
    match replica.round().await {
        Ok(report) => {
            let versions: usize = report.tables.iter().map(|t| t.versions).sum();
            Ok(success(format!("replicated {versions} table versions; lag {:.1} s", report.lag_seconds()), report))
        }
        Err(crate::replica::ReplicaError::Busy) => Ok(success("another replicator holds the replica's lease".to_string(), json!(null))),
        Err(e) => Err(InvocationError::Replicate(e)),
    }
}

/// Table health (files, small files, snapshots, manifests, bytes, last commit age) with its warnings.
async fn table_health_report(State(state): State<AppState>) -> axum::response::Response {
    let compaction = state.maintenance.compaction.unwrap_or_default();
    match crate::maintain::health::health(&state.lake, TableKind::Records, &compaction, chrono::Utc::now()).await {
        Ok(health) => Json(health).into_response(),
        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn table_health(lake: &Lake, kind: TableKind) -> Result<serde_json::Value, LakeError> {
    let table = lake.load(kind).await?;
    let pending = lake.pending(kind).await?;
    let state = lake.committed_state(kind).await?;
    Ok(json!({
        "snapshot_id": table.metadata().current_snapshot_id(),
        "pending_entries": pending.len(),
        "pending_bytes": pending.bytes(),
        "sources": state.watermarks.len(),
        // Ranges a rollback took out and a replay has not brought back yet (`rollback --release` gives up on one).
        "awaiting_replay": state.awaiting,
    }))
}

/// Buckets one quality answer may hold.
const MAX_QUALITY_BUCKETS: i64 = 5_000;

/// `/api/quality?hours=H&bucket=S`: the quality table over the last `H` hours (1 to 168, default 24) in
/// buckets of `S` seconds (1 to 86,400, at most 5,000 buckets; default a 48th of the window, at least a minute), with each model
/// version's score drift as the signal judges it (docs/quality.md).
async fn quality_report(
    State(state): State<AppState>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<axum::response::Response, api::ApiError> {
    use crate::query::params::{parse_int, RawParams};
    let started = std::time::Instant::now();
    let mut params = RawParams::parse(raw.as_deref())?;
    let hours = match params.take("hours")? {
        Some(v) => parse_int("hours", &v, 1, 168)?,
        None => 24,
    };
    let bucket_s = match params.take("bucket")? {
        Some(v) => parse_int("bucket", &v, 1, 86_400)?,
        None => (hours * 3600 / 48).max(60),
    };
    if hours * 3600 / bucket_s > MAX_QUALITY_BUCKETS {
        return Err(api::ApiError::new(
            api::ErrorCode::InvalidParameter,
            format!("{hours} h in buckets of {bucket_s} s is more than {MAX_QUALITY_BUCKETS} buckets; widen `bucket`"),
        ));
    }
    params.finish(&["code"])?;
    let now = chrono::Utc::now();
    let from = now - chrono::Duration::hours(hours);
    let mut series = crate::quality::series::Series::new(from, now, bucket_s);
    let mut drift = crate::quality::DriftSpans::new(now, &state.signals.drift);
    let read = state
        .lake
        .quality_rows(from.min(drift.from()), |row| {
            series.add(&row);
            drift.add(&row);
        })
        .await;
    read.map_err(|e| api::ApiError::new(api::ErrorCode::EngineUnavailable, format!("the quality table cannot be read: {e}")))?;
    let policy = &state.signals.drift;
    let body = json!({
        "data": series.finish(),
        "drift": {
            "threshold": policy.threshold,
            "window_s": policy.window.as_secs(),
            "baseline_s": policy.baseline.as_secs(),
            "min_rows": policy.min_rows,
            "distributions": drift.finish(policy),
        },
        "meta": {"query": "quality", "table": state.lake.target(TableKind::Quality).name, "hours": hours, "bucket_s": bucket_s, "computed_at": now, "elapsed_ms": started.elapsed().as_secs_f64() * 1e3},
    });
    Ok(Json(body).into_response())
}

/// Commit passes failed in a row before health says degraded.
const COMMIT_FAILURES_DEGRADED: u64 = 3;

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let mut tables = serde_json::Map::new();
    let mut healthy = true;
    for kind in [TableKind::Records, TableKind::DeadLetters] {
        let name = state.lake.target(kind).name.clone();
        let entry = table_health(&state.lake, kind).await.unwrap_or_else(|e| {
            healthy = false;
            json!({"error": e.to_string()})
        });
        tables.insert(name, entry);
    }
    let quarantine = match state.lake.quarantine().list().await {
        Ok(items) => json!({"items": items.len()}),
        Err(e) => {
            healthy = false;
            json!({"error": e.to_string()})
        }
    };
    // One failed pass is retried by the next; several in a row mean staged data is not becoming visible.
    let failures = state.committer.failures();
    if failures.consecutive >= COMMIT_FAILURES_DEGRADED {
        healthy = false;
    }
    let mut commits = serde_json::to_value(&failures).unwrap_or_default();
    commits["leader"] = json!(state.committer.is_leader());
    let query = api::health(&state.query).await;
    let replication = match &state.replica {
        Some(replica) => {
            let (within, report) = replica.health(chrono::Utc::now());
            healthy &= within;
            report
        }
        None => json!(null),
    };
    // A stalled committer or a dead-letter rate above its threshold degrade health; a quiet source and score
    // drift are shown but do not (markets close at night, and news moves scores: the alert rules judge them).
    let signals = match crate::maintain::signals::signals(&state.lake, &state.signals, chrono::Utc::now()).await {
        Ok(signals) => {
            healthy &= !signals.stalled_committer.firing && !signals.dead_letter_rate.firing;
            serde_json::to_value(&signals).unwrap_or_default()
        }
        Err(e) => {
            healthy = false;
            json!({"error": e.to_string()})
        }
    };
    let status = if healthy { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(json!({
            "status": if healthy { "ok" } else { "degraded" },
            "tables": tables,
            "quarantine": quarantine,
            "commits": commits,
            "signals": signals,
            "query": query,
            "replication": replication
        })),
    )
}

/// How long `doctor` may take in the app (its checks each have their own, shorter, timeouts).
const DOCTOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// `doctor` in the deployed app, with the app's own settings and identity: what a team checks first after
/// a deployment (an admin-level function: the master key). Plain text, as the CLI prints it; 503 when a
/// check failed.
async fn doctor(State(state): State<AppState>) -> axum::response::Response {
    run_doctor(state.doctor.as_ref()).await
}

async fn run_doctor(doctor: Option<&Doctor>) -> axum::response::Response {
    use axum::http::StatusCode;
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let Some(doctor) = doctor else {
        return (StatusCode::SERVICE_UNAVAILABLE, text, "doctor runs in the deployed app (sentiment-lake serve)\n".to_string()).into_response();
    };
    match tokio::time::timeout(DOCTOR_TIMEOUT, doctor()).await {
        Ok((passed, report)) => (if passed { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, text, report).into_response(),
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, text, format!("doctor did not finish within {} s\n", DOCTOR_TIMEOUT.as_secs())).into_response(),
    }
}

/// How long a client is told to wait before asking a starting app again.
const STARTING_RETRY_AFTER_SECS: u64 = 5;

/// What the app answers while its lake cannot be opened yet (a catalog not reachable or refusing the
/// sign-in, storage roles still propagating): the host's probe (`GET /`) and `GET /api/doctor` as always,
/// and everything else 503 with the reason, so the host retries invocations (Event Hubs holds its
/// checkpoints) and `/api/health` says what is wrong. `reason` is updated by whoever keeps trying to open it.
pub fn starting(doctor: Option<Doctor>, reason: Arc<std::sync::Mutex<String>>) -> Router {
    Router::new().route("/", get(ready)).route("/api/doctor", get(move || async move { run_doctor(doctor.as_ref()).await })).fallback(
        move |uri: axum::http::Uri| {
            let reason = reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
            crate::observability::InvocationFailed { cause: "starting" }.emit();
            // The reason names hosts, roles and the catalog's own words: for the host (the functions' routes)
            // and /api/health (a function key), not for the API's anonymous callers.
            let public = uri.path().starts_with("/api/") && uri.path() != "/api/health";
            let error = if public { "the service is starting; try again shortly".to_string() } else { format!("the lake is not open yet: {reason}") };
            async move {
                let logs = if public { Vec::new() } else { vec![reason] };
                let body = json!({"status": "starting", "error": error, "Logs": logs});
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, STARTING_RETRY_AFTER_SECS.to_string())], Json(body))
            }
        },
    )
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::observability::metrics_handle().render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holder_dropped_mid_migration_gives_its_lease_back() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&crate::lake::LakeConfig::local(dir.path().display().to_string())).await.unwrap();
        assert!(lake.try_lease("migrate/x", "first", MIGRATION_LEASE).await.unwrap());
        // The request holding it is cancelled (the host gave up on it) before it could release the lease.
        drop(HeldLease::renewed(lake.clone(), "migrate/x".into(), "first".into()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !lake.try_lease("migrate/x", "second", MIGRATION_LEASE).await.unwrap() {
            assert!(std::time::Instant::now() < deadline, "the next delivery is still refused");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
