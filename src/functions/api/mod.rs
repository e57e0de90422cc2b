//! The HTTP query API (`/api/sentiment/...`), served standalone by `serve` and behind the Functions host with
//! `enableForwardingHttpRequest` (the host forwards the original path and query, and returns our status and
//! body verbatim).

mod assets;
pub mod docs;
mod error;
mod guard;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::RawQuery;
use axum::http::{header, HeaderValue, Method};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use self::error::{ApiError, ErrorCode};
use self::guard::RateLimit;
use crate::query::answer::SCORE_DEFINITION;
use crate::query::params::Window;
use crate::query::{Answer, CacheStatus, Query, QueryKind, QueryService};

/// Limits and policies of the public API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Origins allowed to call the API from a browser; empty means no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    pub requests_per_minute: NonZeroU32,
    pub burst: NonZeroU32,
    pub timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            requests_per_minute: NonZeroU32::new(600).expect("non-zero"),
            burst: NonZeroU32::new(60).expect("non-zero"),
            timeout: Duration::from_secs(25),
        }
    }
}

#[derive(Serialize)]
struct Meta<'a> {
    query: &'static str,
    engine: &'static str,
    snapshot_id: Option<i64>,
    window: Window,
    computed_at: DateTime<Utc>,
    cache: CacheStatus,
    path: &'a str,
    elapsed_ms: f64,
    next_cursor: Option<&'a str>,
    /// What the answer includes: its snapshot and, per source, the last sequence number and enqueued time,
    /// committed or staged.
    freshness: Option<&'a crate::lake::tail::Receipt>,
    /// Seconds from the newest enqueued time the answer includes to now.
    freshness_s: Option<f64>,
    score_definition: &'static str,
    timezone: &'static str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    data: &'a RawValue,
    meta: Meta<'a>,
}

/// The `{data, meta}` document of an answer (the API's body, and what `sentiment-lake query` prints).
pub fn envelope(query: &Query, answer: &Answer, elapsed: Duration) -> Vec<u8> {
    let stored = &answer.stored;
    let envelope = Envelope {
        data: &stored.data,
        meta: Meta {
            query: query.kind().name(),
            engine: answer.engine,
            snapshot_id: stored.snapshot_id,
            window: query.window(),
            computed_at: stored.computed_at,
            cache: answer.cache,
            path: &stored.path,
            elapsed_ms: elapsed.as_secs_f64() * 1e3,
            next_cursor: stored.next_cursor.as_deref(),
            freshness: stored.freshness.as_ref(),
            freshness_s: stored.freshness.as_ref().and_then(|r| r.freshness_s(Utc::now())),
            score_definition: SCORE_DEFINITION,
            timezone: "UTC",
        },
    };
    // Serializing borrowed JSON and plain fields cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

async fn sentiment(kind: QueryKind, service: Arc<QueryService>, raw_query: Option<String>) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let (query, reading) = Query::parse_request(kind, raw_query.as_deref(), Utc::now())?;
    let answer = service.answer_at(&query, reading).await?;
    let body = envelope(&query, &answer, started.elapsed());
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// `/api/sentiment/snapshots`: the table's history, newest first, `limit` of it.
async fn snapshots(service: Arc<QueryService>, raw_query: Option<String>) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let mut params = crate::query::params::RawParams::parse(raw_query.as_deref())?;
    let limit = match params.take("limit")? {
        Some(v) => crate::query::params::parse_int("limit", &v, 1, 1000)? as usize,
        None => 100,
    };
    params.finish(&["code"])?;
    let mut history = service.history().await?;
    let total = history.len();
    let current = history.iter().find(|s| s.current).map(|s| s.snapshot_id);
    // Where the table's knowledge of its past begins: the oldest snapshot it still keeps (older ones expired;
    // `as_of` before it is a 404).
    let begins_at = history.iter().map(|s| s.committed_at).min();
    history.truncate(limit);
    let body = serde_json::json!({
        "data": history,
        "meta": {"query": "snapshots", "engine": service.engine().name(), "current_snapshot_id": current, "snapshots": total, "history_begins_at": begins_at, "elapsed_ms": started.elapsed().as_secs_f64() * 1e3},
    });
    Ok(Json(body).into_response())
}

async fn not_found() -> ApiError {
    let known: Vec<String> = QueryKind::ALL.iter().map(|k| docs::path(*k)).collect();
    ApiError::new(ErrorCode::NotFound, format!("no such endpoint; the API has {}", known.join(", ")))
}

/// The `/api/sentiment/*` routes with their rate limit, deadline and CORS, plus the OpenAPI document and docs.
pub fn router(service: Arc<QueryService>, config: &ApiConfig) -> Router {
    let mut routes = Router::new();
    for kind in QueryKind::ALL {
        let service = service.clone();
        routes = routes.route(&docs::path(kind), get(move |RawQuery(q): RawQuery| sentiment(kind, service.clone(), q)));
    }
    let history = service.clone();
    let routes = routes
        .route("/api/sentiment/snapshots", get(move |RawQuery(q): RawQuery| snapshots(history.clone(), q)))
        .route("/api/sentiment", get(not_found))
        .route("/api/sentiment/{*rest}", get(not_found))
        .layer(middleware::from_fn_with_state(config.timeout, guard::deadline))
        .layer(middleware::from_fn_with_state(RateLimit::new(config.requests_per_minute, config.burst), guard::rate_limit));
    let openapi = Arc::new(docs::openapi());
    let reference_page = Arc::new(docs::html());
    let routes = routes
        .route("/api/openapi.json", get(move || std::future::ready(Json((*openapi).clone()))))
        .route("/api/docs", get(assets::docs_page))
        .route("/api/reference", get(move || std::future::ready(Html((*reference_page).clone()))))
        .route("/api/dashboard", get(|| assets::dashboard_file(None)))
        .route("/api/dashboard/", get(|| assets::dashboard_file(None)))
        .route("/api/dashboard/{*path}", get(|path: axum::extract::Path<String>| assets::dashboard_file(Some(path))));
    if config.cors_origins.is_empty() {
        routes
    } else {
        routes.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(config.cors_origins.clone()))
                .allow_methods([Method::GET, Method::OPTIONS])
                .allow_headers([header::CONTENT_TYPE, header::HeaderName::from_static("x-functions-key")])
                .max_age(Duration::from_secs(600)),
        )
    }
}

/// The query service's part of `/api/health`: current snapshot as the engine sees it, and the cache.
pub async fn health(service: &QueryService) -> serde_json::Value {
    let engine = match service.engine().current_snapshot().await {
        Ok(s) => serde_json::json!({"name": service.engine().name(), "snapshot_id": s.snapshot_id}),
        Err(e) => serde_json::json!({"name": service.engine().name(), "error": e.to_string()}),
    };
    let cache = match service.cache() {
        None => serde_json::json!({"configured": false}),
        Some(cache) => match cache.ping().await {
            Ok(rtt) => {
                serde_json::json!({"configured": true, "name": cache.name(), "ok": true, "rtt_ms": rtt.as_secs_f64() * 1e3})
            }
            Err(e) => {
                serde_json::json!({"configured": true, "name": cache.name(), "ok": false, "error": e.to_string()})
            }
        },
    };
    serde_json::json!({"engine": engine, "cache": cache})
}
