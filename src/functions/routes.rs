//! One axum handler per function, and the [`app`] router factory (tests drive it without a socket).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::trace::TraceLayer;

use super::outcome::{success, InvocationError};
use super::payload::eventhub::{EventDataType, EventHubBatch};
use super::payload::timer::TimerInfo;
use super::payload::{InvokeRequest, PayloadError};
use super::api::{self, ApiConfig};
use crate::app::CommitterHandle;
use crate::ingest::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::{Lake, TableKind};
use crate::query::QueryService;

/// Function names: the host POSTs to `/<name>`, and each has `functions/<name>/function.json`.
pub const INGEST_FUNCTION: &str = "IngestEvents";
pub const COMMIT_FUNCTION: &str = "CommitStaged";

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
    pub committer: CommitterHandle,
    pub query: Arc<QueryService>,
}

pub fn app(state: AppState, api_config: &ApiConfig) -> Router {
    let query_api = api::router(state.query.clone(), api_config);
    Router::new()
        .route("/", get(ready))
        .route(&format!("/{INGEST_FUNCTION}"), post(ingest_events))
        .route(&format!("/{COMMIT_FUNCTION}"), post(commit_staged))
        .route("/api/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(query_api)
        .layer(TraceLayer::new_for_http())
}

/// The host polls `GET /` until anything answers.
async fn ready() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

fn parse_invocation(body: &[u8]) -> Result<InvokeRequest, PayloadError> {
    serde_json::from_slice(body).map_err(|e| PayloadError::invalid("$", format!("not an invocation body: {e}")))
}

fn invocation_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-azure-functions-invocationid").and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn ingest_events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<impl IntoResponse, InvocationError> {
    let request = parse_invocation(&body)?;
    let binding = &state.binding;
    let batch = EventHubBatch::from_invocation(&request, &binding.name, binding.data_type)?;
    let source = SourceBatch {
        source: batch.source_id(&binding.namespace, &binding.event_hub),
        invocation_id: invocation_id(&headers),
        events: batch
            .events
            .into_iter()
            .map(|e| SourceEvent {
                sequence_number: e.sequence_number,
                offset: e.offset,
                enqueued_time: e.enqueued_time,
                partition_key: e.partition_key,
                body: e.body,
            })
            .collect(),
    };
    let report = state.pipeline.ingest(&state.lake, &source).await?;
    state.committer.record_staged(report.staged_rows + report.dead_lettered);
    let summary = format!(
        "{}: {} events, {} rows staged ({} enriched), {} dead-lettered",
        source.source, report.received, report.staged_rows, report.enriched, report.dead_lettered
    );
    Ok(success(summary, report))
}

async fn commit_staged(State(state): State<AppState>, body: Bytes) -> Result<impl IntoResponse, InvocationError> {
    let request = parse_invocation(&body)?;
    let timer = TimerInfo::from_invocation(&request, "timer")?;
    if timer.is_past_due {
        tracing::info!("Commit timer is past due; committing now.");
    }
    let reports = state.committer.commit_now().await?;
    let rows: usize = reports.iter().map(|r| r.rows_committed).sum();
    Ok(success(format!("committed {rows} rows"), reports))
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let mut tables = serde_json::Map::new();
    let mut healthy = true;
    for kind in [TableKind::Records, TableKind::DeadLetters] {
        let name = state.lake.target(kind).name.clone();
        let entry = match (state.lake.load(kind).await, state.lake.pending_segments(kind).await) {
            (Ok(table), Ok(pending)) => {
                json!({"snapshot_id": table.metadata().current_snapshot_id(), "pending_segments": pending.len()})
            }
            (Err(e), _) | (_, Err(e)) => {
                healthy = false;
                json!({"error": e.to_string()})
            }
        };
        tables.insert(name, entry);
    }
    let query = api::health(&state.query).await;
    let status = if healthy { axum::http::StatusCode::OK } else { axum::http::StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if healthy { "ok" } else { "degraded" }, "tables": tables, "query": query})))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::observability::metrics_handle().render())
}
