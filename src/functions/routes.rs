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
use super::payload::blob::BlobTrigger;
use super::payload::eventhub::{EventDataType, EventHubBatch, Refused};
use super::payload::timer::TimerInfo;
use super::payload::InvokeRequest;
use crate::ingest::Pipeline;
use crate::lake::{Committer, Lake, LakeError, TableKind};
use crate::query::QueryService;

/// Function names: the host POSTs to `/<name>`, and each has `functions/<name>/function.json`.
pub const INGEST_FUNCTION: &str = "IngestEvents";
pub const COMMIT_FUNCTION: &str = "CommitStaged";
pub const MIGRATE_FUNCTION: &str = "MigrateBlob";
pub const MAINTAIN_FUNCTION: &str = "MaintainTable";

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
}

pub fn app(state: AppState, api_config: &ApiConfig) -> Router {
    let query_api = api::router(state.query.clone(), api_config);
    Router::new()
        .route("/", get(ready))
        .route(&format!("/{INGEST_FUNCTION}"), post(ingest_events))
        .route(&format!("/{COMMIT_FUNCTION}"), post(commit_staged))
        .route(&format!("/{MIGRATE_FUNCTION}"), post(migrate_blob))
        .route(&format!("/{MAINTAIN_FUNCTION}"), post(maintain_table))
        .route("/api/health", get(health))
        .route("/api/health/table", get(table_health_report))
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

/// A legacy file uploaded to blob storage (Event Grid blob trigger). The host inlines the whole blob, but the
/// file is streamed from storage by its `Uri` instead: row groups in ranges, the version the store has now.
/// Its rows are staged, committed and the file retired to the migration ledger; a duplicate trigger or a
/// retry finds the file committed (or stages rows the ledger already holds), so nothing lands twice. A
/// file that can never be migrated is quarantined with its reason.
async fn migrate_blob(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<axum::response::Response, InvocationError> {
    let invocation = invocation_id(&headers);
    let body = match read_bounded(body, state.max_invocation_bytes).await? {
        Bounded::Complete(body) => body,
        Bounded::Oversize { head, rest } => {
            let reason = format!(
                "the invocation is larger than the {} byte limit (--max-invocation-bytes); migrate the file with `sentiment-lake migrate`",
                state.max_invocation_bytes
            );
            return quarantine_envelope(&state, MIGRATE_FUNCTION, invocation.as_deref(), reason, head, rest).await;
        }
    };
    let refuse =
        |reason: String, body: Bytes| quarantine_envelope(&state, MIGRATE_FUNCTION, invocation.as_deref(), reason, body, futures::stream::empty());
    let blob = match serde_json::from_slice::<InvokeRequest>(&body)
        .map_err(|e| e.to_string())
        .and_then(|r| BlobTrigger::from_invocation(&r, "blob").map_err(|e| e.to_string()))
    {
        Ok(blob) => blob,
        Err(reason) => return refuse(format!("not a blob trigger invocation: {reason}"), body).await,
    };
    let Some(uri) = blob.uri.as_deref() else {
        return refuse("the blob trigger carries no Uri to read the file from".into(), body).await;
    };
    let location = match crate::storage::AzureLocation::from_blob_url(uri) {
        Ok(location) => location,
        Err(e) => return refuse(e.to_string(), body).await,
    };
    let opened = match crate::storage::OpenedLocation::open(crate::storage::Location::Azure(location.container_root()), state.lake.storage_settings())
    {
        Ok(opened) => opened,
        Err(e) if e.is_retryable() => return Err(InvocationError::Lake(e.into())),
        Err(e) => return refuse(e.to_string(), body).await,
    };
    let meta = match opened.head(&location.path).await {
        Ok(meta) => meta,
        // Deleted since the upload: nothing to migrate, and nothing lost.
        Err(crate::storage::StorageError::Store { source, .. }) if matches!(*source, object_store::Error::NotFound { .. }) => {
            return Ok(success(format!("{uri}: no longer exists"), json!({"missing": uri})).into_response())
        }
        Err(e) => return Err(InvocationError::Lake(e.into())),
    };
    let mapping = crate::migrate::layout::Mapping::default();
    match crate::migrate::migrate_file(&state.lake, &state.pipeline, opened.store.clone(), &opened.location.url(), &meta, &mapping).await {
        Ok(report) => {
            // Committed and retired here rather than by the next tick: a file is one large batch, and a
            // retired file keeps its record in the migration ledger instead of the table's watermarks.
            state.committer.record_staged((report.staged + report.dead_lettered) as usize);
            state.committer.commit_now().await?;
            let retired = crate::migrate::retire_files(&state.lake, std::slice::from_ref(&report)).await?;
            let summary = format!("{}: {} rows, {} staged, {} dead-lettered", report.source, report.rows, report.staged, report.dead_lettered);
            let mut value = serde_json::to_value(&report).unwrap_or_default();
            value["retirement"] = serde_json::to_value(&retired).unwrap_or_default();
            Ok(success(summary, value).into_response())
        }
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => refuse(e.to_string(), body).await,
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
    let reports = state.committer.commit_now().await?;
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
    }))
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
    let commits = state.committer.failures();
    if commits.consecutive >= COMMIT_FAILURES_DEGRADED {
        healthy = false;
    }
    let query = api::health(&state.query).await;
    let status = if healthy { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(
            json!({"status": if healthy { "ok" } else { "degraded" }, "tables": tables, "quarantine": quarantine, "commits": commits, "query": query}),
        ),
    )
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::observability::metrics_handle().render())
}
