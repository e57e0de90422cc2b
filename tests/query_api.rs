//! The query API over HTTP against the real server, a real Iceberg table and a real redis-server started by
//! each test: every endpoint's numbers equal an independent computation from the ingested events, commits
//! change answers, and losing Redis degrades to the engine without failing a request.

mod common;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::expected::{self, assert_close};
use common::redis::RedisServer;
use common::*;
use sentiment_lake::app::QueryOptions;
use sentiment_lake::cache::{CacheError, QueryCache, RedisCache, RedisCacheConfig};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::functions::api::ApiConfig;
use sentiment_lake::ingest::Pipeline;
use serde_json::Value;

fn cached(redis: &RedisServer) -> QueryOptions {
    let mut options = QueryOptions { redis: Some(RedisCacheConfig::new(redis.url())), ..QueryOptions::default() };
    if let Some(r) = options.redis.as_mut() {
        r.retry_after = Duration::from_millis(300);
    }
    options
}

const END: &str = "2026-11-20T00:00:00Z";
const FROM: &str = "2026-11-17T06:00:00Z";
const TO: &str = "2026-11-19T18:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_matches_an_independent_computation() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let events = events(instant(END), 0, 3_000);
    ingest(&lake, &events).await;
    let redis = RedisServer::start();
    let server = serve_full(lake, IncompletePolicy::Enrich, cached(&redis), ApiConfig::default()).await;
    let (from, to) = (instant(FROM), instant(TO));
    let window = format!("from={FROM}&to={TO}");
    let all = expected::select(&events, from, to, None);
    let top = expected::top_tickers(&all, 6);
    let ticker = top[0]["ticker"].as_str().unwrap().to_string();
    let of_ticker = expected::select(&events, from, to, Some(&ticker));
    assert!(of_ticker.len() > 100, "the window holds enough rows to mean something");

    let cases: Vec<(String, Value)> = vec![
        (format!("tickers?{window}&limit=6"), top.clone()),
        (format!("tickers?{window}&limit=2"), expected::top_tickers(&all, 2)),
        (format!("timeseries?ticker={}&interval=hour&{window}", ticker.to_lowercase()), expected::timeseries(&of_ticker, "hour")),
        (format!("timeseries?ticker={ticker}&interval=day&{window}"), expected::timeseries(&of_ticker, "day")),
        (format!("timeseries?ticker={ticker}&interval=week&{window}"), expected::timeseries(&of_ticker, "week")),
        (
            format!("timeseries?ticker={ticker}&interval=minute&from={FROM}&to=2026-11-17T10:00:00Z"),
            expected::timeseries(&expected::select(&events, from, instant("2026-11-17T10:00:00Z"), Some(&ticker)), "minute"),
        ),
        (format!("summary?ticker={ticker}&{window}"), expected::summary(&of_ticker, &ticker)),
        (format!("entities?{window}&limit=500"), expected::entities(&all, None, 500)),
        (format!("entities?ticker={ticker}&entity_type=org&{window}"), expected::entities(&of_ticker, Some("ORG"), 50)),
        (format!("aspects?ticker={ticker}&{window}"), expected::aspects(&of_ticker)),
        (format!("toxicity?min_toxicity=0.15&{window}&limit=25"), expected::toxicity(&all, 0.15, 25)),
        (format!("toxicity?ticker={ticker}&min_toxicity=0.19&{window}"), expected::toxicity(&of_ticker, 0.19, 50)),
        (format!("intents?{window}"), expected::intents(&all)),
        (format!("intents?ticker={ticker}&{window}"), expected::intents(&of_ticker)),
    ];
    for (path, want) in &cases {
        let body = get_ok(&server.base, &format!("/api/sentiment/{path}")).await;
        assert_close(path, &body["data"], want);
        let meta = &body["meta"];
        assert_eq!(meta["window"]["from"], FROM, "{path}");
        assert_eq!(meta["timezone"], "UTC");
        assert!(meta["score_definition"].as_str().unwrap().contains("> 0.05"));
        assert_eq!(meta["engine"], "embedded");
        assert!(meta["snapshot_id"].is_i64());
    }
    // Asked again, each answer comes from Redis and is identical.
    for (path, want) in &cases {
        let body = get_ok(&server.base, &format!("/api/sentiment/{path}")).await;
        assert_eq!(body["meta"]["cache"], "hit", "{path}");
        assert_close(path, &body["data"], want);
    }
    // An empty window is an empty answer, not an error.
    let empty = get_ok(&server.base, "/api/sentiment/summary?ticker=AAPL&from=2020-01-01&to=2020-01-02").await;
    assert_eq!(empty["data"]["message_count"], 0);
    assert_eq!(empty["data"]["average_score"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_pages_cover_the_window_once_in_order() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let events = events(instant(END), 0, 1_200);
    ingest(&lake, &events).await;
    let server = serve(lake).await;
    let (from, to) = (instant(FROM), instant(TO));
    let ticker = expected::top_tickers(&expected::select(&events, from, to, None), 1)[0]["ticker"].as_str().unwrap().to_string();
    let want = expected::record_ids(&expected::select(&events, from, to, Some(&ticker)));

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/sentiment/records?ticker={ticker}&from={FROM}&to={TO}&limit=37");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let body = get_ok(&server.base, &path).await;
        let rows = body["data"].as_array().unwrap();
        assert!(rows.len() <= 37);
        for row in rows {
            got.push(row["message_id"].as_str().unwrap().to_string());
            assert_eq!(row["ticker"], ticker.as_str());
            assert_eq!(row.as_object().unwrap().len(), 22, "all 22 fields");
        }
        pages += 1;
        match body["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(got, want);
    assert_eq!(pages, want.len().div_ceil(37).max(1));

    // A record's fields come back as ingested.
    let original = events.iter().find(|e| e["message_id"] == want[0].as_str()).unwrap();
    let body = get_ok(&server.base, &format!("/api/sentiment/records?ticker={ticker}&from={FROM}&to={TO}&limit=1")).await;
    let row = &body["data"][0];
    for field in ["text_content", "source_system", "user_intent", "source_url", "model_name"] {
        assert_eq!(row[field], original[field], "{field}");
    }
    assert_close("entities", &row["entity_recognition"], &original["entity_recognition"]);
    assert_eq!(row["emotion_intensity_vector"].as_object().unwrap().len(), original["emotion_intensity_vector"].as_object().unwrap().len());

    // Score filters.
    let body = get_ok(&server.base, &format!("/api/sentiment/records?from={FROM}&to={TO}&min_score=0.5&limit=1000")).await;
    let want = expected::select(&events, from, to, None).into_iter().filter(|e| (e["sentiment_score"].as_f64().unwrap() as f32) >= 0.5f32).count();
    assert_eq!(body["data"].as_array().unwrap().len(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_changes_the_next_answer_and_concurrent_misses_share_one_query() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let first = events(instant(END), 0, 1_000);
    ingest(&lake, &first).await;
    let redis = RedisServer::start();
    let server = serve_full(lake.clone(), IncompletePolicy::Enrich, cached(&redis), ApiConfig::default()).await;
    let path = format!("/api/sentiment/tickers?from={FROM}&to={TO}&limit=6");

    // 12 identical requests at once: one computes, the rest share its result or hit the cache.
    let requests: Vec<_> = (0..12)
        .map(|_| {
            tokio::spawn({
                let (b, p) = (server.base.clone(), path.clone());
                async move { get_ok(&b, &p).await }
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for r in requests {
        statuses.push(r.await.unwrap()["meta"]["cache"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses.iter().filter(|s| *s == "miss").count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| ["miss", "shared", "hit"].contains(&s.as_str())), "{statuses:?}");

    let before = get_ok(&server.base, &path).await;
    assert_eq!(before["meta"]["cache"], "hit");
    assert_close("before", &before["data"], &expected::top_tickers(&expected::select(&first, instant(FROM), instant(TO), None), 6));

    // More events for the same window land in a new snapshot: the very next request sees them.
    let second = events(instant(END), 1_000, 800);
    ingest(&lake, &second).await;
    let after = get_ok(&server.base, &path).await;
    assert_eq!(after["meta"]["cache"], "miss");
    assert_ne!(after["meta"]["snapshot_id"], before["meta"]["snapshot_id"]);
    let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
    assert_close("after", &after["data"], &expected::top_tickers(&expected::select(&all, instant(FROM), instant(TO), None), 6));
    assert_ne!(after["data"], before["data"]);
    let snapshot = after["meta"]["snapshot_id"].to_string();
    assert!(redis.keys().iter().any(|k| k.contains(&format!(":{snapshot}:tickers:"))), "the key names the snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_killed_requests_still_succeed_and_caching_resumes_when_it_returns() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let events = events(instant(END), 0, 600);
    ingest(&lake, &events).await;
    let mut redis = RedisServer::start();
    let port = redis.port;
    let server = serve_full(lake, IncompletePolicy::Enrich, cached(&redis), ApiConfig::default()).await;
    let path = format!("/api/sentiment/timeseries?ticker=AAPL&interval=hour&from={FROM}&to={TO}");
    let cold = get_ok(&server.base, &path).await;
    assert_eq!(cold["meta"]["cache"], "miss");
    assert_eq!(get_ok(&server.base, &path).await["meta"]["cache"], "hit");

    redis.kill();
    for _ in 0..5 {
        let body = get_ok(&server.base, &path).await;
        assert_eq!(body["meta"]["cache"], "bypass");
        assert_eq!(body["data"], cold["data"]);
    }
    let (_, health) = get(&server.base, "/api/health").await;
    assert_eq!(health["query"]["cache"]["ok"], false);
    let metrics = client().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("sentiment_lake_cache_requests_total") && l.contains("outcome=\"bypass\"")),
        "bypasses are counted"
    );

    // Back on the same port: after the retry delay the cache is used again.
    let _redis = RedisServer::start_on(port);
    let mut resumed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let body = get_ok(&server.base, &path).await;
        if body["meta"]["cache"] == "hit" {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "caching resumed after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_redis_costs_one_deadline_then_is_skipped() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    ingest(&lake, &events(instant(END), 0, 600)).await;
    let redis = RedisServer::start();
    // The service's defaults: 250 ms per cache operation, then 5 s without the cache.
    let config = RedisCacheConfig::new(redis.url());
    let op_timeout = config.op_timeout;
    let options = QueryOptions { redis: Some(config.clone()), ..QueryOptions::default() };
    let server = serve_full(lake, IncompletePolicy::Enrich, options, ApiConfig::default()).await;
    let path = format!("/api/sentiment/summary?ticker=AAPL&from={FROM}&to={TO}");
    let cold = get_ok(&server.base, &path).await;
    assert_eq!(get_ok(&server.base, &path).await["meta"]["cache"], "hit");
    // A second client of the same server, looked at directly: which failure each operation meets.
    let probe = RedisCache::new(config).unwrap();
    assert!(probe.get("probe").await.unwrap().is_none());

    redis.freeze(true);
    let started = Instant::now();
    let first = get_ok(&server.base, &path).await;
    let waited = started.elapsed();
    assert_eq!(first["meta"]["cache"], "bypass");
    assert_eq!(first["data"], cold["data"]);
    assert!(waited >= op_timeout, "the request met the frozen server: {waited:?}");
    assert!(waited < Duration::from_secs(5), "the cache's deadline bounds the wait: {waited:?}");
    for _ in 0..3 {
        let body = get_ok(&server.base, &path).await;
        assert_eq!(body["meta"]["cache"], "bypass");
        assert_eq!(body["data"], cold["data"]);
    }

    let started = Instant::now();
    assert!(matches!(probe.get("probe").await, Err(CacheError::Timeout(t)) if t == op_timeout), "a frozen server times out");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(probe.get("probe").await, Err(CacheError::Skipped)), "and is then skipped without waiting");
    redis.freeze(false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_warm_the_cache_for_the_busiest_tickers() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let redis = RedisServer::start();
    let server = serve_full(lake.clone(), IncompletePolicy::Enrich, cached(&redis), ApiConfig::default()).await;
    // Recent events, so the warmed relative windows (last day) contain them.
    let recent = events(Utc::now(), 0, 400);
    let ndjson: Vec<u8> = recent.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, "warm-test", None).unwrap();
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(&lake, &batch).await.unwrap();
    let minute = Utc::now().timestamp() / 60;
    server.committer.commit_now().await.unwrap();
    let mut warmed = Vec::new();
    for _ in 0..100 {
        warmed = redis.keys();
        if warmed.iter().filter(|k| k.contains(":summary:")).count() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(warmed.iter().any(|k| k.contains(":tickers:")), "{warmed:?}");
    assert_eq!(warmed.iter().filter(|k| k.contains(":timeseries:")).count(), 6, "{warmed:?}");
    let body = get_ok(&server.base, "/api/sentiment/tickers?days=1&limit=10").await;
    // Relative windows end at the next whole minute; across a minute boundary the warmed entry no longer applies.
    if Utc::now().timestamp() / 60 == minute {
        assert_eq!(body["meta"]["cache"], "hit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_4xx_in_one_error_format() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake).await;
    let cases = [
        ("/api/sentiment/timeseries?days=7", 400, "invalid_parameter", Some("ticker")),
        ("/api/sentiment/timeseries?ticker=AAPL';DROP%20TABLE%20x;--", 400, "invalid_parameter", Some("ticker")),
        ("/api/sentiment/timeseries?ticker=AAPL&interval=minute&days=30", 400, "invalid_parameter", Some("interval")),
        ("/api/sentiment/tickers?limit=1000", 400, "invalid_parameter", Some("limit")),
        ("/api/sentiment/tickers?days=7&from=2026-11-01", 400, "invalid_parameter", Some("days")),
        ("/api/sentiment/tickers?from=2026-11-10&to=2026-11-01", 400, "invalid_parameter", Some("from")),
        ("/api/sentiment/tickers?tikcer=AAPL", 400, "invalid_parameter", Some("tikcer")),
        ("/api/sentiment/summary?ticker=AAPL,MSFT", 400, "invalid_parameter", Some("ticker")),
        ("/api/sentiment/records?cursor=garbage", 400, "invalid_parameter", Some("cursor")),
        ("/api/sentiment/toxicity?min_toxicity=NaN", 400, "invalid_parameter", Some("min_toxicity")),
        ("/api/sentiment/nonsense", 404, "not_found", None),
    ];
    for (path, status, code, parameter) in cases {
        let (got, body) = get(&server.base, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(body["error"]["parameter"].as_str(), parameter, "{path}");
    }
    // The Functions key parameter is tolerated; an empty table answers with empty data.
    let body = get_ok(&server.base, "/api/sentiment/tickers?code=functionkey").await;
    assert_eq!(body["data"], serde_json::json!([]));
    assert_eq!(body["meta"]["snapshot_id"], Value::Null);
    let doc = get_ok(&server.base, "/api/openapi.json").await;
    assert!(doc["paths"]["/api/sentiment/timeseries"]["get"]["parameters"].is_array());
    let html = client().get(format!("{}/api/reference", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("/api/sentiment/records"));
    let docs = client().get(format!("{}/api/docs", server.base)).send().await.unwrap();
    assert!(docs.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(docs.text().await.unwrap().contains("swagger-ui-bundle.js"), "the interactive docs");
    let bundle = client().get(format!("{}/api/dashboard/vendor/swagger-ui/swagger-ui-bundle.js", server.base)).send().await.unwrap();
    assert_eq!(bundle.status(), 200);
    // Files are looked up by exact name in the embedded table: nothing outside it can be reached.
    for missing in ["/api/dashboard/nope.js", "/api/dashboard/..%2F..%2FCargo.toml", "/api/dashboard/vendor%2Fuplot%2FLICENSE%00"] {
        let (status, body) = get(&server.base, missing).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{missing}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_and_cors_follow_the_configuration() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let api = ApiConfig {
        cors_origins: vec!["https://dash.example.com".parse().unwrap()],
        requests_per_minute: NonZeroU32::new(60).unwrap(),
        burst: NonZeroU32::new(3).unwrap(),
        ..ApiConfig::default()
    };
    let server = serve_full(lake, IncompletePolicy::Enrich, QueryOptions::default(), api).await;
    let url = format!("{}/api/sentiment/tickers", server.base);
    let send = |client: &'static str| client_request(&url, client);
    for _ in 0..3 {
        assert_eq!(send("10.0.0.1").await.status(), 200);
    }
    let limited = send("10.0.0.1").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(send("10.0.0.2").await.status(), 200, "limits are per client");

    let preflight = |origin: &'static str| {
        client().request(reqwest::Method::OPTIONS, &url).header("origin", origin).header("access-control-request-method", "GET").send()
    };
    let allowed = preflight("https://dash.example.com").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://dash.example.com");
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(denied.headers().get("access-control-allow-origin").is_none());
}

async fn client_request(url: &str, forwarded_for: &str) -> reqwest::Response {
    client().get(url).header("x-forwarded-for", forwarded_for).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_are_cached_over_tls_with_a_private_ca() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    ingest(&lake, &events(instant(END), 0, 300)).await;
    let certs = tempfile::tempdir().unwrap();
    let (_redis, tls_port) = RedisServer::start_tls(certs.path());
    let mut config = RedisCacheConfig::new(format!("rediss://127.0.0.1:{tls_port}"));
    config.ca_cert = Some(certs.path().join("ca.pem"));
    let server =
        serve_full(lake, IncompletePolicy::Enrich, QueryOptions { redis: Some(config), ..QueryOptions::default() }, ApiConfig::default()).await;
    let path = format!("/api/sentiment/tickers?from={FROM}&to={TO}");
    assert_eq!(get_ok(&server.base, &path).await["meta"]["cache"], "miss");
    assert_eq!(get_ok(&server.base, &path).await["meta"]["cache"], "hit");
    let (_, health) = get(&server.base, "/api/health").await;
    assert_eq!(health["query"]["cache"]["ok"], true, "{health}");

    // Without the private CA the server's certificate is refused: TLS is verified, not just encrypted.
    let untrusted = RedisCacheConfig::new(format!("rediss://127.0.0.1:{tls_port}"));
    let lake = open(dir.path()).await;
    let server =
        serve_full(lake, IncompletePolicy::Enrich, QueryOptions { redis: Some(untrusted), ..QueryOptions::default() }, ApiConfig::default()).await;
    assert_eq!(get_ok(&server.base, &path).await["meta"]["cache"], "bypass");
}

/// Cutover switches the seed's dashboards to this API unchanged: `tickers` rows carry `avg_sentiment`,
/// time-series points `time_bucket` and `avg_sentiment`, the seed's defaults apply (`days=30`,
/// `interval=day`), and 32-bit scores read as they were sent (0.61, not 0.6100000143051147).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_dashboards_fields_and_defaults_are_served() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let now = Utc::now();
    let mut sent = Vec::new();
    for (i, days_ago) in [1i64, 3, 3, 20, 40].into_iter().enumerate() {
        let mut event = events(now, i as u64, 1).remove(0);
        event["ticker"] = Value::String("ZZZZ".into());
        event["sentiment_score"] = serde_json::json!(0.61);
        event["event_timestamp"] = Value::String((now - chrono::Duration::days(days_ago)).to_rfc3339());
        sent.push(event);
    }
    ingest(&lake, &sent).await;
    let server = serve(lake).await;

    let tickers = get_ok(&server.base, "/api/sentiment/tickers?days=30&limit=10").await;
    let row = tickers["data"].as_array().unwrap().iter().find(|r| r["ticker"] == "ZZZZ").unwrap();
    assert_eq!((row["message_count"].as_i64(), row["avg_sentiment"].as_f64()), (Some(4), Some(0.61)), "{row}");
    assert_eq!(row["avg_sentiment"], row["average_score"]);

    // No interval and no days: the seed's `interval='day', days=30`.
    let series = get_ok(&server.base, "/api/sentiment/timeseries?ticker=ZZZZ").await;
    let points = series["data"].as_array().unwrap();
    assert_eq!(points.len(), 3, "three days with messages in the last 30: {points:?}");
    for point in points {
        assert_eq!(point["time_bucket"], point["bucket_start"]);
        assert!(point["time_bucket"].as_str().unwrap().ends_with("T00:00:00Z"), "daily buckets: {point}");
        assert_eq!(point["avg_sentiment"].as_f64(), Some(0.61));
        assert!(point["message_count"].as_i64().unwrap() >= 1);
    }
    assert_eq!(points.iter().map(|p| p["message_count"].as_i64().unwrap()).sum::<i64>(), 4);

    let text = client().get(format!("{}/api/sentiment/records?ticker=ZZZZ&limit=1", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("\"sentiment_score\":0.61,"), "{text}");
    assert!(text.contains("\"text_content\":"), "{text}");
}
