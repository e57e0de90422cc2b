//! What stands in front of every API request: a per-client rate limit and a deadline.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
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
    checks: Arc<AtomicU64>,
}

/// Every this many requests, buckets that have refilled completely (clients not seen lately) are dropped,
/// so the state stays proportional to recent clients rather than to every address ever seen.
const PRUNE_EVERY: u64 = 256;

impl RateLimit {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::with_quota(Quota::per_minute(per_minute).allow_burst(burst))
    }

    fn with_quota(quota: Quota) -> Self {
        Self { limiter: Arc::new(RateLimiter::keyed(quota)), checks: Arc::default() }
    }

    fn check(&self, key: &str) -> Result<(), governor::NotUntil<governor::clock::QuantaInstant>> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            metrics::gauge!("sentiment_lake_api_rate_limit_clients").set(self.limiter.len() as f64);
        }
        self.limiter.check_key(&key.to_string())
    }

    /// Clients with a bucket held.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.limiter.len()
    }
}

/// The client a request counts against: the last `X-Forwarded-For` hop, else the peer address.
///
/// The last hop is the one Azure's front end appended for the connection it accepted; a client can put
/// anything *before* it, so the first hop would let anyone pick a fresh bucket per request. Azure writes
/// hops as `ip:port`, and the port changes with every connection, so only the address is kept.
fn client_key(request: &Request) -> String {
    let forwarded = request.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).next_back();
    if let Some(ip) = forwarded.and_then(|value| value.rsplit(',').next()).and_then(forwarded_address) {
        return ip.to_string();
    }
    request.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// The address of one `X-Forwarded-For` hop: `203.0.113.7`, `203.0.113.7:51234`, `2001:db8::1` or
/// `[2001:db8::1]:51234`. Anything else (`unknown`, an obfuscated name) is not an address.
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

pub async fn rate_limit(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    let key = client_key(&request);
    match limit.check(&key) {
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

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn key(forwarded: &[&str]) -> String {
        let mut builder = Request::builder().uri("/api/sentiment/tickers");
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let mut request = builder.body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        client_key(&request)
    }

    #[test]
    fn the_platform_appended_hop_decides_and_ports_are_dropped() {
        assert_eq!(key(&["203.0.113.7:51234"]), "203.0.113.7");
        assert_eq!(key(&["203.0.113.7:60001"]), key(&["203.0.113.7:51234"]), "a new connection is the same client");
        assert_eq!(key(&["198.51.100.1, 203.0.113.7:51234"]), "203.0.113.7", "a client-written first hop is ignored");
        assert_eq!(key(&["[2001:db8::1]:443"]), "2001:db8::1");
        assert_eq!(key(&["2001:db8::1"]), "2001:db8::1");
        assert_eq!(key(&["10.0.0.1", "203.0.113.7"]), "203.0.113.7", "repeated headers: the last one");
    }

    #[test]
    fn buckets_of_clients_not_seen_lately_are_pruned() {
        let limit = RateLimit::with_quota(Quota::per_second(NonZeroU32::new(1_000).unwrap()).allow_burst(NonZeroU32::MIN));
        for i in 0..PRUNE_EVERY - 1 {
            limit.check(&format!("10.0.{}.{}", i / 256, i % 256)).unwrap();
        }
        assert_eq!(limit.clients(), (PRUNE_EVERY - 1) as usize);
        // A full bucket refills in 1 ms at this quota; the next request triggers the pruning.
        std::thread::sleep(Duration::from_millis(20));
        limit.check("192.0.2.1").unwrap();
        assert!(limit.clients() <= 1, "{} buckets left", limit.clients());
    }

    #[test]
    fn without_a_usable_hop_the_peer_address_decides() {
        assert_eq!(key(&[]), "127.0.0.1");
        assert_eq!(key(&["unknown"]), "127.0.0.1");
        assert_eq!(key(&["203.0.113.7, "]), "127.0.0.1");
    }
}
