//! What stands in front of every API request: a per-client rate limit and a deadline.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::{ApiError, ErrorCode};

/// Token bucket per client: `per_minute` sustained, `burst` at once. Per process: a scaled-out app has one
/// bucket per instance.
#[derive(Clone)]
pub struct RateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RateLimit {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self { limiter: Arc::new(RateLimiter::keyed(quota)) }
    }
}

/// The client a request counts against: the first `X-Forwarded-For` hop (set by Azure's front end, which the
/// Functions host passes on), else the peer address.
fn client_key(request: &Request) -> String {
    if let Some(forwarded) = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        if let Some(first) = forwarded.split(',').next().map(str::trim).filter(|s| !s.is_empty()) {
            return first.to_string();
        }
    }
    request.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

pub async fn rate_limit(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    let key = client_key(&request);
    match limit.limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("sentiment_lake_api_rate_limited_total").increment(1);
            ApiError::rate_limited(wait.as_secs_f64().ceil() as u64).into_response()
        }
    }
}

/// Abandons a request after `timeout` (dropping the query) and answers 504 in the API's error format. The
/// Functions front end gives up at 230 s whatever the function's timeout, so this must stay below that.
pub async fn deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(ErrorCode::Timeout, format!("no answer within {} ms", timeout.as_millis())).into_response(),
    }
}
