//! Query benchmark on a generated table of 10 million rows, in the same run against DuckDB (iceberg
//! extension) over the same table:
//! - the time-series endpoint over HTTP, uncached (embedded engine) and cached (Redis);
//! - every dashboard endpoint uncached in process, answered from the rollups, from raw rows (`--rollups
//!   off`), and by DuckDB (the interop test's SQL for each endpoint), with a check that the first two agree.
//!
//! Run: `cargo bench --bench query` (needs scripts/setup-python.sh for DuckDB and Debian's redis-server;
//! scripts/setup-redis.sh installs it).
//!
//! Environment: `QUERY_BENCH_ROWS` (default 10,000,000), `QUERY_BENCH_ITERATIONS` (default 200: HTTP and
//! rollup measurements), `QUERY_BENCH_RAW_ITERATIONS` (default 10: raw-row and DuckDB measurements of the
//! dashboard endpoints, seconds each on the widest windows), `QUERY_BENCH_WAREHOUSE` (default
//! `target/query-bench-warehouse`; reused when it holds the same row count, since generating 10M rows takes
//! minutes; its rollups are rebuilt before measuring, and the rebuild is timed).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sentiment_lake::app::{query_service, QueryOptions};
use sentiment_lake::cache::RedisCacheConfig;
use sentiment_lake::committer::Committer;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::functions::api::ApiConfig;
use sentiment_lake::functions::routes::{app, AppState, EventHubBinding, DEFAULT_MAX_INVOCATION_BYTES};
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::query::{Query, QueryKind};

use common::{HISTORY_DAYS as DAYS, HISTORY_TICKERS as TICKERS};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn serve(lake: &Lake, options: QueryOptions) -> String {
    let query = query_service(lake, &options).unwrap();
    let state = AppState {
        lake: lake.clone(),
        pipeline: Pipeline::new(IncompletePolicy::DeadLetter),
        binding: Arc::new(EventHubBinding::default()),
        committer: Committer::new(lake.clone(), usize::MAX, None),
        query,
        max_invocation_bytes: DEFAULT_MAX_INVOCATION_BYTES,
        maintenance: Default::default(),
        maintenance_backend: Default::default(),
        legacy_location: None,
        doctor: None,
        replica: None,
        signals: Default::default(),
    };
    // The benchmark is one client: no rate limit should interfere.
    let api = ApiConfig { requests_per_minute: std::num::NonZeroU32::MAX, burst: std::num::NonZeroU32::MAX, ..ApiConfig::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(state, &api).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

/// Sorted latencies (ms) of `iterations` sequential requests, and the last body.
async fn measure(client: &reqwest::Client, url: &str, iterations: usize, expect_cache: &str) -> (Vec<f64>, serde_json::Value) {
    let mut latencies = Vec::with_capacity(iterations);
    let mut body = serde_json::Value::Null;
    for _ in 0..iterations {
        let started = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        body = response.json().await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(body["meta"]["cache"], expect_cache);
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, body)
}

fn main() {
    let rows: u64 = env_or("QUERY_BENCH_ROWS", 10_000_000);
    let iterations: usize = env_or("QUERY_BENCH_ITERATIONS", 200);
    let dir = std::env::var("QUERY_BENCH_WAREHOUSE").unwrap_or_else(|_| format!("{}/target/query-bench-warehouse", env!("CARGO_MANIFEST_DIR")));
    let marker = format!("{dir}/bench-rows.txt");
    // Fixed, so a reused table and a fresh one are the same data.
    let end: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(rows.to_string().as_str()) {
            let _ = std::fs::remove_dir_all(&dir);
            let lake = Lake::open(&LakeConfig::local(dir.clone())).await.unwrap();
            let started = Instant::now();
            common::generate_history(&lake, rows, end).await;
            eprintln!("generated {rows} rows in {:.0}s", started.elapsed().as_secs_f64());
            std::fs::write(&marker, rows.to_string()).unwrap();
        }
        // The table stands for a live one as of `end`, whose dashboards read recent minutes: its rollup keeps
        // minute rows for every period, as a rebuild within a week of `end` would (the default keeps a
        // week before the rebuild, and the data is older than that by the wall clock).
        let lake = Lake::open(&LakeConfig { rollup_minute_days: None, ..LakeConfig::local(dir.clone()) }).await.unwrap();
        let table = lake.load(TableKind::Records).await.unwrap();
        let metadata_location = table.metadata_location().unwrap().to_string();
        let (from, to) = ("2026-10-25T00:00:00Z", "2026-11-01T00:00:00Z");
        let path = format!("/api/sentiment/timeseries?ticker=AAPL&interval=hour&from={from}&to={to}");
        let client = reqwest::Client::new();

        let uncached_base = serve(&lake, QueryOptions::default()).await;
        // Warm-up (first session, metadata read), as DuckDB's first query is.
        measure(&client, &format!("{uncached_base}{path}"), 1, "bypass").await;
        let (uncached, body) = measure(&client, &format!("{uncached_base}{path}"), iterations, "bypass").await;
        let buckets = body["data"].as_array().unwrap().len();
        let messages: i64 = body["data"].as_array().unwrap().iter().map(|b| b["message_count"].as_i64().unwrap()).sum();

        let redis = common::redis::RedisServer::start();
        let cached_base = serve(&lake, QueryOptions { redis: Some(RedisCacheConfig::new(format!("redis://127.0.0.1:{}", redis.port))), ..QueryOptions::default() }).await;
        measure(&client, &format!("{cached_base}{path}"), 1, "miss").await;
        let (cached, _) = measure(&client, &format!("{cached_base}{path}"), iterations, "hit").await;

        // The peer of the cached path: Redis's own GET of the same stored answer, through the same client
        // library and connection kind the cache uses, sequential like the requests above.
        let redis_client = redis::Client::open(format!("redis://127.0.0.1:{}", redis.port)).unwrap();
        let mut connection = redis_client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("sentiment-lake:*").query_async(&mut connection).await.unwrap();
        assert_eq!(keys.len(), 1, "one answer cached: {keys:?}");
        let mut redis_get = Vec::with_capacity(iterations);
        let mut answer_bytes = 0;
        for _ in 0..iterations {
            let started = Instant::now();
            let value: Vec<u8> = redis::cmd("GET").arg(&keys[0]).query_async(&mut connection).await.unwrap();
            redis_get.push(started.elapsed().as_secs_f64() * 1e3);
            answer_bytes = value.len();
        }
        redis_get.sort_by(f64::total_cmp);

        // The cached answer in process (no HTTP): the snapshot check plus the Redis GET.
        let cached_service =
            query_service(&lake, &QueryOptions { redis: Some(RedisCacheConfig::new(format!("redis://127.0.0.1:{}", redis.port))), ..QueryOptions::default() }).unwrap();
        let cached_query = Query::parse(QueryKind::TimeSeries, Some(path.split_once('?').unwrap().1), Utc::now()).unwrap();
        cached_service.answer(&cached_query).await.unwrap();
        let mut cached_in_process = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            let answer = cached_service.answer(&cached_query).await.unwrap();
            cached_in_process.push(started.elapsed().as_secs_f64() * 1e3);
            assert_eq!(answer.cache.as_str(), "hit");
        }
        cached_in_process.sort_by(f64::total_cmp);

        // The engine alone, in process (no HTTP, no cache): where the uncached time goes.
        let service = query_service(&lake, &QueryOptions::default()).unwrap();
        let query = Query::parse(QueryKind::TimeSeries, Some(path.split_once('?').unwrap().1), Utc::now()).unwrap();
        let mut engine = Vec::with_capacity(iterations);
        service.answer(&query).await.unwrap();
        for _ in 0..iterations {
            let started = Instant::now();
            service.answer(&query).await.unwrap();
            engine.push(started.elapsed().as_secs_f64() * 1e3);
        }
        engine.sort_by(f64::total_cmp);

        let python = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
        let output = Command::new(python)
            .arg(format!("{}/scripts/bench/duckdb_timeseries.py", env!("CARGO_MANIFEST_DIR")))
            .args(["--metadata", &metadata_location, "--ticker", "AAPL", "--from", from, "--to", to, "--iterations", &iterations.to_string()])
            .output()
            .expect("python with duckdb (run scripts/setup-python.sh)");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let duck: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(duck["buckets"].as_u64().unwrap() as usize, buckets, "DuckDB and the API agree on the buckets");
        assert_eq!(duck["messages"].as_i64().unwrap(), messages, "DuckDB and the API agree on the message count");
        let (duck_p50, duck_p99) = (duck["p50_ms"].as_f64().unwrap(), duck["p99_ms"].as_f64().unwrap());

        let files = table.metadata().current_snapshot().map(|s| s.summary().additional_properties.get("total-data-files").cloned().unwrap_or_default()).unwrap_or_default();
        println!("query benchmark: {rows} rows, {DAYS} days x {TICKERS} tickers x 4 sources, {files} data files; timeseries ticker=AAPL interval=hour over 7 days ({buckets} buckets, {messages} messages); {iterations} sequential requests each");
        println!();
        println!("| path | p50 ms | p99 ms | p50 vs DuckDB |");
        println!("|---|---:|---:|---:|");
        let row = |name: &str, v: &[f64]| println!("| {name} | {:.2} | {:.2} | {:.2}x |", percentile(v, 0.5), percentile(v, 0.99), duck_p50 / percentile(v, 0.5));
        row("HTTP, uncached (embedded DataFusion engine)", &uncached);
        row("HTTP, cached (Redis hit)", &cached);
        row("engine only, in process (no HTTP, no cache)", &engine);
        row("cached, in process (snapshot check + Redis GET, no HTTP)", &cached_in_process);
        row(&format!("peer: Redis GET of the same {answer_bytes}-byte answer (redis-rs)"), &redis_get);
        println!("| DuckDB {} iceberg_scan, same query, in process | {duck_p50:.2} | {duck_p99:.2} | 1.00x |", duck["duckdb_version"].as_str().unwrap_or("?"));
        println!();
        println!("(`p50 vs DuckDB` above 1 means faster than DuckDB.)");
        println!(
            "cached over HTTP vs Redis GET: p50 {:.2}x, p99 {:.2}x (times Redis's own latency)",
            percentile(&cached, 0.5) / percentile(&redis_get, 0.5),
            percentile(&cached, 0.99) / percentile(&redis_get, 0.99)
        );
        drop(redis);

        dashboard_endpoints(&lake, &metadata_location, iterations, env_or("QUERY_BENCH_RAW_ITERATIONS", 10)).await;
    });
}

/// One dashboard endpoint: the API's query string and the interop test's DuckDB query with its parameters.
struct Endpoint {
    name: &'static str,
    kind: QueryKind,
    params: &'static str,
    duckdb: &'static str,
    duckdb_params: serde_json::Value,
}

fn endpoints() -> Vec<Endpoint> {
    use serde_json::json;
    let (month, week, day) = (
        ("2026-10-02T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-10-25T00:00:00Z", "2026-11-01T00:00:00Z"),
        ("2026-10-31T00:00:00Z", "2026-11-01T00:00:00Z"),
    );
    vec![
        Endpoint {
            name: "tickers, 30 days",
            kind: QueryKind::TopTickers,
            params: "from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z&limit=10",
            duckdb: "top_tickers",
            duckdb_params: json!({"from": month.0, "to": month.1, "limit": 10}),
        },
        Endpoint {
            name: "timeseries hour, 7 days",
            kind: QueryKind::TimeSeries,
            params: "ticker=AAPL&interval=hour&from=2026-10-25T00:00:00Z&to=2026-11-01T00:00:00Z",
            duckdb: "timeseries",
            duckdb_params: json!({"from": week.0, "to": week.1, "ticker": "AAPL", "interval": "hour"}),
        },
        Endpoint {
            name: "timeseries day, 30 days",
            kind: QueryKind::TimeSeries,
            params: "ticker=AAPL&interval=day&from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            duckdb: "timeseries",
            duckdb_params: json!({"from": month.0, "to": month.1, "ticker": "AAPL", "interval": "day"}),
        },
        Endpoint {
            name: "summary, 30 days",
            kind: QueryKind::Summary,
            params: "ticker=AAPL&from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            duckdb: "summary",
            duckdb_params: json!({"from": month.0, "to": month.1, "ticker": "AAPL"}),
        },
        Endpoint {
            name: "aspects, 30 days",
            kind: QueryKind::Aspects,
            params: "ticker=AAPL&from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            duckdb: "aspects",
            duckdb_params: json!({"from": month.0, "to": month.1, "ticker": "AAPL"}),
        },
        Endpoint {
            name: "intents, 30 days",
            kind: QueryKind::Intents,
            params: "from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z",
            duckdb: "intents",
            duckdb_params: json!({"from": month.0, "to": month.1}),
        },
        Endpoint {
            name: "entities, 30 days",
            kind: QueryKind::Entities,
            params: "from=2026-10-02T00:00:00Z&to=2026-11-01T00:00:00Z&limit=50",
            duckdb: "entities",
            duckdb_params: json!({"from": month.0, "to": month.1, "limit": 50}),
        },
        Endpoint {
            name: "toxicity, 7 days (raw rows)",
            kind: QueryKind::Toxicity,
            params: "from=2026-10-25T00:00:00Z&to=2026-11-01T00:00:00Z&min_toxicity=0.15&limit=50",
            duckdb: "toxicity",
            duckdb_params: json!({"from": week.0, "to": week.1, "min_toxicity": 0.15, "limit": 50}),
        },
        Endpoint {
            name: "records, 1 day of one ticker (raw rows)",
            kind: QueryKind::Records,
            params: "ticker=AAPL&from=2026-10-31T00:00:00Z&to=2026-11-01T00:00:00Z&limit=100",
            duckdb: "records",
            duckdb_params: json!({"from": day.0, "to": day.1, "ticker": "AAPL"}),
        },
    ]
}

/// Sorted latencies (ms) of `iterations` uncached answers in process, after one warm-up; and the last
/// answer's data and path.
async fn answer_times(service: &sentiment_lake::query::QueryService, query: &Query, iterations: usize) -> (Vec<f64>, serde_json::Value, String) {
    let warm = service.answer(query).await.unwrap();
    let (mut data, mut path) = (serde_json::from_str(warm.stored.data.get()).unwrap(), warm.stored.path.clone());
    let mut latencies = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let started = Instant::now();
        let answer = service.answer(query).await.unwrap();
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        data = serde_json::from_str(answer.stored.data.get()).unwrap();
        path = answer.stored.path.clone();
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, data, path)
}

/// Every dashboard endpoint uncached in process: from the rollups, from raw rows, and in DuckDB.
async fn dashboard_endpoints(lake: &Lake, metadata_location: &str, iterations: usize, raw_iterations: usize) {
    // Rebuilt from the live rows, whatever an earlier version wrote (and timed: the cost of `rollup rebuild`).
    let started = Instant::now();
    let rebuilt = lake.rebuild_rollups().await.unwrap();
    let rebuild_seconds = started.elapsed().as_secs_f64();
    eprintln!("rollups rebuilt in {rebuild_seconds:.1}s: {rebuilt:?}");
    // As the maintenance timer leaves them: partial rows of a partition re-aggregated.
    let compacted = sentiment_lake::lake::rollup::compact(lake.handle(TableKind::Rollup), &Default::default()).await.unwrap();
    eprintln!("rollup compaction: {compacted:?}");
    let rollup_table = lake.load(TableKind::Rollup).await.unwrap();
    let rollup_summary = rollup_table.metadata().current_snapshot().map(|s| s.summary().additional_properties.clone()).unwrap_or_default();
    let (rollup_rows, rollup_files, rollup_bytes) = (
        rollup_summary.get("total-records").cloned().unwrap_or_default(),
        rollup_summary.get("total-data-files").cloned().unwrap_or_default(),
        rollup_summary.get("total-files-size").cloned().unwrap_or_default(),
    );
    let no_cache =
        |rollups| QueryOptions { service: sentiment_lake::query::QueryServiceConfig { rollups, ..Default::default() }, ..QueryOptions::default() };
    let from_rollups = query_service(lake, &no_cache(sentiment_lake::query::RollupUse::Auto)).unwrap();
    let from_raw = query_service(lake, &no_cache(sentiment_lake::query::RollupUse::Off)).unwrap();
    let python = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    println!();
    println!("dashboard endpoints, uncached, in process; rollup table rebuilt from {} rows in {rebuild_seconds:.1} s: {rollup_rows} rows in {rollup_files} files ({rollup_bytes} bytes); {iterations} answers from rollups, {raw_iterations} from raw rows and DuckDB each", rebuilt.rows);
    println!();
    println!("| endpoint | path | rollups p50 / p99 ms | raw rows p50 / p99 ms | DuckDB p50 / p99 ms | rollups vs DuckDB | raw vs DuckDB |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for endpoint in endpoints() {
        let query = Query::parse(endpoint.kind, Some(endpoint.params), Utc::now()).unwrap();
        let raw_only = matches!(endpoint.kind, QueryKind::Records | QueryKind::Toxicity);
        // Records and toxicity take the raw path either way: measured once, with the raw iterations.
        let (rollup_times, rollup_data, path) = answer_times(&from_rollups, &query, if raw_only { 1 } else { iterations }).await;
        let (raw_times, raw_data, _) = answer_times(&from_raw, &query, raw_iterations).await;
        assert_eq!(rollup_data, raw_data, "{}: the answer from {path} differs from the raw rows'", endpoint.name);
        assert_eq!(path == "raw", raw_only, "{}: answered by {path}", endpoint.name);
        let output = Command::new(&python)
            .arg(format!("{}/scripts/bench/duckdb_endpoints.py", env!("CARGO_MANIFEST_DIR")))
            .args(["--metadata", metadata_location, "--query", endpoint.duckdb, "--params", &endpoint.duckdb_params.to_string()])
            .args(["--iterations", &raw_iterations.to_string()])
            .output()
            .expect("python with duckdb (run scripts/setup-python.sh)");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let duck: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let (duck_p50, duck_p99) = (duck["p50_ms"].as_f64().unwrap(), duck["p99_ms"].as_f64().unwrap());
        let (r50, r99, w50, w99) =
            (percentile(&rollup_times, 0.5), percentile(&rollup_times, 0.99), percentile(&raw_times, 0.5), percentile(&raw_times, 0.99));
        let rollup_cells = if path == "raw" {
            ("n/a (raw rows)".to_string(), "".to_string())
        } else {
            (format!("{r50:.2} / {r99:.2}"), format!("{:.1}x", duck_p50 / r50))
        };
        println!(
            "| {} | {path} | {} | {w50:.1} / {w99:.1} | {duck_p50:.1} / {duck_p99:.1} | {} | {:.2}x |",
            endpoint.name,
            rollup_cells.0,
            rollup_cells.1,
            duck_p50 / w50
        );
    }
    println!();
    println!("(`vs DuckDB` above 1 means faster than DuckDB. Records: the API returns a page of 100, DuckDB every id of the day.)");
}
