//! Load benchmark: the HTTP API of the real `sentiment-lake serve` process under 16, 64 and 256 concurrent
//! closed-loop clients, uncached (no Redis: every answer computed by the embedded engine), cached (Redis,
//! every answer a hit), with the server's default guards, and while four Event Hubs partitions post
//! ingestion invocations; afterwards the table must hold exactly the generated plus the acknowledged rows.
//! Run: `cargo bench --bench load` (needs Debian's redis-server; scripts/setup-redis.sh installs it).
//!
//! Environment: `LOAD_BENCH_ROWS` (1,000,000 over 7 days), `LOAD_BENCH_CLIENTS` ("16,64,256"),
//! `LOAD_BENCH_SECONDS` per phase (10), `LOAD_BENCH_MIXED_SECONDS` (30), `LOAD_BENCH_MIXED_CLIENTS` (64),
//! `LOAD_BENCH_PARTITIONS` (4), `LOAD_BENCH_BATCH` events per invocation (500), `LOAD_BENCH_COMMIT_SECS`
//! (5), `LOAD_BENCH_WAREHOUSE` (`target/load-bench-warehouse`, reused when it holds the generated rows
//! only: the ingestion phase's commits are rolled back with `sentiment-lake rollback` at the end).
//!
//! Only loopback addresses are used: the server binds 127.0.0.1 and Redis is started on a free port of it.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array};
use chrono::{DateTime, Utc};
use datafusion::execution::context::SessionContext;
use iceberg_datafusion::IcebergStaticTableProvider;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::synthetic::EventGenerator;
use serde_json::{json, Value};

use common::redis::RedisServer;

const DAYS: u32 = 7;
const TICKERS: usize = 50;
/// Fixed, so a reused table and a fresh one are the same data; queries name their windows explicitly.
const END: &str = "2026-11-01T00:00:00Z";
const WEEK: &str = "from=2026-10-25T00:00:00Z&to=2026-11-01T00:00:00Z";
const LAST_DAY: &str = "from=2026-10-31T00:00:00Z&to=2026-11-01T00:00:00Z";
/// High enough that no client of the capacity phases is ever limited: those measure the server, the
/// guards phases measure the limits.
const UNLIMITED: &str = "1000000000";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    f64::from(sorted[((sorted.len() as f64 - 1.0) * p).round() as usize])
}

struct Settings {
    rows: u64,
    clients: Vec<usize>,
    seconds: f64,
    mixed_seconds: f64,
    mixed_clients: usize,
    partitions: usize,
    batch: usize,
    commit_secs: u64,
    dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        let clients = std::env::var("LOAD_BENCH_CLIENTS").unwrap_or_else(|_| "16,64,256".into());
        let dir = std::env::var("LOAD_BENCH_WAREHOUSE").unwrap_or_else(|_| format!("{}/target/load-bench-warehouse", env!("CARGO_MANIFEST_DIR")));
        Self {
            rows: env_or("LOAD_BENCH_ROWS", 1_000_000),
            clients: clients.split(',').filter_map(|c| c.trim().parse().ok()).filter(|&c| c > 0).collect(),
            seconds: env_or("LOAD_BENCH_SECONDS", 10.0),
            mixed_seconds: env_or("LOAD_BENCH_MIXED_SECONDS", 30.0),
            mixed_clients: env_or("LOAD_BENCH_MIXED_CLIENTS", 64),
            partitions: env_or("LOAD_BENCH_PARTITIONS", 4).max(1),
            batch: env_or("LOAD_BENCH_BATCH", 500).max(1),
            commit_secs: env_or("LOAD_BENCH_COMMIT_SECS", 5).max(1),
            dir: PathBuf::from(dir),
        }
    }
}

/// The queries clients pick from, each with the endpoint (and interval) it is reported under.
struct Mix {
    paths: Vec<String>,
    labels: Vec<String>,
    label_of: Vec<usize>,
}

impl Mix {
    fn new(paths: Vec<String>) -> Self {
        let mut labels: Vec<String> = Vec::new();
        let mut label_of = Vec::with_capacity(paths.len());
        for path in &paths {
            let (endpoint, query) = path.trim_start_matches("/api/sentiment/").split_once('?').unwrap_or((path, ""));
            let interval = query.split('&').find_map(|p| p.strip_prefix("interval="));
            let label = interval.map_or_else(|| endpoint.to_string(), |i| format!("{endpoint} ({i})"));
            let index = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                labels.push(label);
                labels.len() - 1
            });
            label_of.push(index);
        }
        Self { paths, labels, label_of }
    }

    fn len(&self) -> usize {
        self.paths.len()
    }
}

/// What dashboards ask, over the generated week: every endpoint, time series weighted most as the
/// dashboard draws one per ticker and interval.
fn query_mix() -> Vec<String> {
    let mut mix = vec![format!("/api/sentiment/tickers?{WEEK}&limit=10"), format!("/api/sentiment/tickers?{LAST_DAY}&limit=20")];
    for ticker in ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "JPM", "KO", "GS"] {
        mix.push(format!("/api/sentiment/timeseries?ticker={ticker}&interval=hour&{WEEK}"));
        mix.push(format!("/api/sentiment/timeseries?ticker={ticker}&interval=day&{WEEK}"));
    }
    for ticker in ["AAPL", "TSLA"] {
        mix.push(format!("/api/sentiment/timeseries?ticker={ticker}&interval=minute&{LAST_DAY}"));
    }
    for ticker in ["AAPL", "MSFT", "NVDA", "TSLA", "JPM", "GS"] {
        mix.push(format!("/api/sentiment/summary?ticker={ticker}&{WEEK}"));
    }
    for ticker in ["AAPL", "TSLA", "V"] {
        mix.push(format!("/api/sentiment/records?ticker={ticker}&limit=100&{LAST_DAY}"));
    }
    mix.push(format!("/api/sentiment/records?limit=50&{WEEK}"));
    mix.push(format!("/api/sentiment/toxicity?min_toxicity=0.15&limit=20&{WEEK}"));
    mix.push(format!("/api/sentiment/toxicity?ticker=AAPL&min_toxicity=0.1&{WEEK}"));
    mix.push(format!("/api/sentiment/intents?{WEEK}"));
    mix.push(format!("/api/sentiment/intents?ticker=MSFT&{WEEK}"));
    mix.push(format!("/api/sentiment/aspects?ticker=NVDA&{WEEK}"));
    mix.push(format!("/api/sentiment/entities?limit=20&{WEEK}"));
    mix
}

/// 7 days x 50 tickers x 4 sources through the real pipeline, one commit per day (as benches/query.rs).
async fn generate(lake: &Lake, per_day: u64, end: DateTime<Utc>) {
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    for day in 0..DAYS {
        let started = Instant::now();
        let day_end = end - chrono::Duration::days(i64::from(DAYS - 1 - day));
        let mut generator = EventGenerator::new(u64::from(day) + 1, day_end, 1, TICKERS);
        let batch = batch_from_file(&generator.ndjson(u64::from(day) * per_day, per_day), &format!("load-bench-day-{day}"), None).unwrap();
        let report = pipeline.ingest(lake, &batch).await.unwrap();
        assert_eq!(report.dead_lettered, 0);
        lake.commit().await.unwrap();
        eprintln!("day {day}: {per_day} rows in {:.1}s", started.elapsed().as_secs_f64());
    }
}

/// What this run's ingestion committed, oldest first: the current snapshot's ancestors above `base`. The
/// history also lists what earlier runs committed and then rolled back; those are not on this lineage.
fn lineage_above(history: &[Value], base: i64) -> Vec<Value> {
    let by_id: HashMap<i64, &Value> = history.iter().filter_map(|c| Some((c["snapshot_id"].as_i64()?, c))).collect();
    let mut commits = Vec::new();
    let mut at = history.iter().find(|c| c["current"].as_bool() == Some(true));
    while let Some(commit) = at.filter(|c| c["snapshot_id"].as_i64() != Some(base)) {
        commits.push(commit.clone());
        at = commit["parent_id"].as_i64().and_then(|parent| by_id.get(&parent).copied());
    }
    commits.reverse();
    commits
}

/// Rows and distinct message ids in the records table, read by DataFusion over the table's files (not
/// from the snapshot summary, which would not show a duplicate), and the current snapshot id.
async fn count_rows(dir: &Path) -> (i64, i64, Option<i64>) {
    let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().into_owned())).await.unwrap();
    let table = lake.load(TableKind::Records).await.unwrap();
    let snapshot = table.metadata().current_snapshot_id();
    let provider = IcebergStaticTableProvider::try_new_from_table(table).await.unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("records", Arc::new(provider)).unwrap();
    let batches = ctx.sql("SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM records").await.unwrap().collect().await.unwrap();
    let column = |i: usize| batches[0].column(i).as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)).unwrap();
    (column(0), column(1), snapshot)
}

fn flush_redis(redis: &RedisServer) {
    let mut connection = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    redis::cmd("FLUSHALL").query::<()>(&mut connection).unwrap();
}

/// The `serve` process. Killed when dropped; [`Server::stop`] is the orderly SIGTERM that makes it commit.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(dir: &Path, logs: &Path, name: &str, args: &[&str], http: &reqwest::Client) -> Server {
        let port = common::free_port();
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .arg("--warehouse")
            .arg(dir)
            .args(["serve", "--port", &port.to_string()])
            .args(args)
            // The deployments' setting (README): glibc's default arenas inflate RSS on many threads.
            .env("MALLOC_ARENA_MAX", "2")
            // The log is a file, not a terminal.
            .env("NO_COLOR", "1")
            .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
            .env_remove("SENTIMENT_LAKE_REDIS_URL")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = Server { child, base: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("serve ({name}) exited with {status}; see {}", logs.join(format!("{name}.log")).display());
            }
            // The port answers at once; the functions once the lake is open.
            if matches!(http.get(format!("{}/api/health", server.base)).send().await, Ok(r) if r.status().is_success()) {
                return server;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "serve ({name}) not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait: `serve` stops accepting, commits what is staged and exits.
    async fn stop(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "serve did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Peak memory and CPU of the server process over a phase, from /proc.
#[derive(Default, Clone, Copy)]
struct Usage {
    peak_rss_kib: u64,
    hwm_kib: u64,
    cpu_seconds: f64,
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Samples the server every 100 ms until `stop` is set; the VmRSS peak, the VmHWM at the end (the
/// process's own high-water mark since it started) and the CPU seconds the phase cost it.
fn sample_usage(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Usage> {
    tokio::spawn(async move {
        let ticks = clock_ticks_per_second();
        let cpu_before = cpu_ticks(pid).unwrap_or(0);
        let mut usage = Usage::default();
        loop {
            usage.peak_rss_kib = usage.peak_rss_kib.max(status_kib(pid, "VmRSS:").unwrap_or(0));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        usage.hwm_kib = status_kib(pid, "VmHWM:").unwrap_or(0);
        usage.cpu_seconds = cpu_ticks(pid).unwrap_or(cpu_before).saturating_sub(cpu_before) as f64 / ticks;
        usage
    })
}

/// What one client saw. Latencies in ms of 2xx answers only: a 429 answered in microseconds would make
/// a shedding server look fast.
#[derive(Default)]
struct Tally {
    /// Per label of the mix; [`Tally::finish`] gathers them into `latencies`.
    by_label: Vec<Vec<f32>>,
    latencies: Vec<f32>,
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    cache: BTreeMap<String, u64>,
}

impl Tally {
    fn new(labels: usize) -> Self {
        Self { by_label: vec![Vec::new(); labels], ..Self::default() }
    }

    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.by_label.iter_mut().zip(other.by_label) {
            mine.extend(theirs);
        }
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.cache {
            *self.cache.entry(k).or_default() += v;
        }
        self.transport_errors += other.transport_errors;
    }

    fn finish(&mut self) {
        for latencies in &mut self.by_label {
            latencies.sort_by(f32::total_cmp);
            self.latencies.extend_from_slice(latencies);
        }
        self.latencies.sort_by(f32::total_cmp);
    }

    fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors
    }

    fn status(&self, code: u16) -> u64 {
        self.statuses.get(&code).copied().unwrap_or(0)
    }
}

/// `meta.cache` of an answer without parsing it: `meta` is serialized after `data`, so the last match.
fn cache_status(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"cache\":\"";
    let at = body.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let end = body[at..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&body[at..at + end]).into_owned())
}

/// A phase's clients: how many, and where they come from.
#[derive(Clone, Copy)]
struct Clients {
    count: usize,
    /// Numbers the phase's client addresses.
    phase: usize,
    addresses: Addresses,
}

/// How the clients reach the server: a distinct address each, as Azure's front end appends them to
/// `X-Forwarded-For` (the rate limit's key), or all from one address (a NAT, a proxy that adds nothing).
#[derive(Clone, Copy, PartialEq)]
enum Addresses {
    PerClient,
    Shared,
}

/// `clients` closed-loop clients over `mix` for `duration`: each sends its next request when the previous
/// answer has arrived, and waits out a 429's Retry-After as a well-behaved client would. Memory: one f32
/// per request.
async fn run_clients(target: &Target<'_>, clients: Clients, duration: Duration) -> Tally {
    let Clients { count, phase, addresses } = clients;
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(count);
    for c in 0..count {
        let (http, mix, base) = (target.http.clone(), target.mix.clone(), target.base.to_string());
        // Second octet per phase, so a phase starts with fresh buckets on a server that served another.
        let address = format!("10.{}.{}.{}", phase % 256, c / 250, c % 250 + 1);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(mix.labels.len());
            let mut k = c * 7;
            while Instant::now() < deadline {
                let query = k % mix.len();
                let path = &mix.paths[query];
                k += 1;
                let mut request = http.get(format!("{base}{path}"));
                if addresses == Addresses::PerClient {
                    request = request.header("x-forwarded-for", &address);
                }
                let started = Instant::now();
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(_) => {
                        tally.transport_errors += 1;
                        continue;
                    }
                };
                let status = response.status();
                let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
                let Ok(body) = response.bytes().await else {
                    tally.transport_errors += 1;
                    continue;
                };
                let elapsed = started.elapsed();
                *tally.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_success() {
                    tally.by_label[mix.label_of[query]].push((elapsed.as_secs_f64() * 1e3) as f32);
                    *tally.cache.entry(cache_status(&body).unwrap_or_else(|| "?".into())).or_default() += 1;
                } else if status.as_u16() == 429 {
                    let wait = Duration::from_secs(retry_after.unwrap_or(1));
                    tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
                }
            }
            tally
        }));
    }
    let mut total = Tally::new(target.mix.labels.len());
    for task in tasks {
        total.merge(task.await.unwrap());
    }
    total.finish();
    total
}

/// One sequential pass over the mix: proves every query is valid, opens the engine's session, and with a
/// cache fills it.
async fn prime(http: &reqwest::Client, base: &str, mix: &Mix) -> BTreeMap<String, u64> {
    let mut cache = BTreeMap::new();
    for path in &mix.paths {
        let response = http.get(format!("{base}{path}")).header("x-forwarded-for", "10.255.255.1").send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {}", String::from_utf8_lossy(&body));
        *cache.entry(cache_status(&body).unwrap_or_default()).or_default() += 1;
    }
    cache
}

struct Row {
    phase: String,
    clients: usize,
    tally: Tally,
    elapsed: f64,
    usage: Usage,
}

/// Where the clients send what.
struct Target<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    mix: &'a Arc<Mix>,
}

async fn measure(name: &str, server: &Server, http: &reqwest::Client, mix: &Arc<Mix>, clients: Clients, seconds: f64) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_usage(server.pid(), stop.clone());
    let started = Instant::now();
    let target = Target { http, base: &server.base, mix };
    let tally = run_clients(&target, clients, Duration::from_secs_f64(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let usage = sampler.await.unwrap();
    let row = Row { phase: name.to_string(), clients: clients.count, tally, elapsed, usage };
    eprintln!("{}", markdown_row(&row));
    row
}

fn cache_summary(cache: &BTreeMap<String, u64>) -> String {
    cache.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn markdown_row(row: &Row) -> String {
    let t = &row.tally;
    let ok: u64 = t.statuses.iter().filter(|(k, _)| (200..300).contains(*k)).map(|(_, v)| v).sum();
    let other: u64 = t.statuses.iter().filter(|(k, _)| !(200..300).contains(*k) && ![429, 503, 504].contains(*k)).map(|(_, v)| v).sum();
    let other = if t.transport_errors > 0 { format!("{other} (+{} transport)", t.transport_errors) } else { other.to_string() };
    format!(
        "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {ok} | {} | {} | {} | {other} | {} | {:.0} | {:.0} | {:.0} |",
        row.phase,
        row.clients,
        t.requests(),
        t.requests() as f64 / row.elapsed,
        percentile(&t.latencies, 0.5),
        percentile(&t.latencies, 0.99),
        t.latencies.last().map_or(f64::NAN, |&v| f64::from(v)),
        t.status(429),
        t.status(503),
        t.status(504),
        cache_summary(&t.cache),
        row.usage.cpu_seconds / row.elapsed * 100.0,
        row.usage.peak_rss_kib as f64 / 1024.0,
        row.usage.hwm_kib as f64 / 1024.0,
    )
}

const TABLE_HEADER: &str = "| phase | clients | requests | req/s | p50 ms | p99 ms | max ms | 2xx | 429 | 503 | 504 | other errors | meta.cache of 2xx | server CPU % | server peak RSS MiB | server VmHWM MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|";

/// The host's encoding of an Event Hubs batch for a custom handler with `dataType: string`, as
/// testdata/payloads/eventhub-batch-string.json: the events and every metadata array double-encoded,
/// enqueued times without an offset, `PartitionContext` as an object.
fn invocation_body(events: &[Value], partition: usize, first_sequence: i64, namespace: &str) -> Vec<u8> {
    let now = Utc::now();
    let enqueued = now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let sequences: Vec<i64> = (0..events.len() as i64).map(|k| first_sequence + k).collect();
    let offsets: Vec<String> = sequences.iter().map(|s| (s * 2048).to_string()).collect();
    let bodies: Vec<String> = events.iter().map(Value::to_string).collect();
    let system: Vec<Value> = sequences
        .iter()
        .zip(&offsets)
        .map(|(s, o)| json!({"x-opt-sequence-number": s, "SequenceNumber": s, "Offset": o, "PartitionKey": null, "EnqueuedTimeUtc": enqueued}))
        .collect();
    let body = json!({
        "Data": {"events": encode(&bodies)},
        "Metadata": {
            "PartitionContext": {
                "FullyQualifiedNamespace": namespace,
                "EventHubName": "sentiment-events",
                "ConsumerGroup": "$Default",
                "PartitionId": partition.to_string(),
                "IsCheckpointingAfterInvocation": true,
            },
            "PartitionKeyArray": encode(&vec![Value::Null; events.len()]),
            "OffsetArray": encode(&offsets),
            "SequenceNumberArray": encode(&sequences),
            "EnqueuedTimeUtcArray": encode(&vec![enqueued.clone(); events.len()]),
            "PropertiesArray": encode(&vec![json!({}); events.len()]),
            "SystemPropertiesArray": encode(&system),
            "sys": {"MethodName": "IngestEvents", "UtcNow": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "RandGuid": uuid::Uuid::new_v4().to_string()},
        },
    });
    serde_json::to_vec(&body).unwrap()
}

/// A value as the host sends arrays: JSON text inside a JSON string.
fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

#[derive(Default)]
struct IngestTally {
    /// Events of invocations the server acknowledged (2xx): what the host would checkpoint.
    acknowledged: u64,
    staged_rows: u64,
    dead_lettered: u64,
    invocations: u64,
    retries: u64,
    latencies: Vec<f32>,
    /// Seconds from the phase's start to this partition's last acknowledgement.
    elapsed: f64,
}

/// One Event Hubs partition as the host drives it: one invocation at a time, the next batch after the
/// previous one was acknowledged, a failed invocation retried with the same events and sequence numbers.
async fn run_partition(http: reqwest::Client, base: String, partition: usize, batch: usize, namespace: String, duration: Duration) -> IngestTally {
    let phase_started = Instant::now();
    let deadline = phase_started + duration;
    let end: DateTime<Utc> = END.parse().unwrap();
    // Live events land in the current day (one day x 50 tickers x 4 sources of partitions), not spread
    // over the week, so a commit writes the files a live commit writes.
    let mut generator = EventGenerator::new(1_000 + partition as u64, end, 1, TICKERS);
    let mut tally = IngestTally::default();
    let mut sequence: i64 = 1;
    while Instant::now() < deadline {
        // Message ids far above the generated table's, one range per partition: a duplicate would show.
        let first_index = 1_000_000_000 * (partition as u64 + 1) + sequence as u64;
        let events: Vec<Value> = (0..batch as u64).map(|k| generator.event(first_index + k)).collect();
        let body = invocation_body(&events, partition, sequence, &namespace);
        let invocation = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut attempts = 0;
        let report = loop {
            attempts += 1;
            let response = http
                .post(format!("{base}/IngestEvents"))
                .header("content-type", "application/json")
                .header("x-azure-functions-invocationid", &invocation)
                .body(body.clone())
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => break r.json::<Value>().await.unwrap(),
                Ok(r) => eprintln!("partition {partition}: invocation answered {}; retrying", r.status()),
                Err(e) => eprintln!("partition {partition}: invocation failed ({e}); retrying"),
            }
            assert!(attempts < 20, "partition {partition}: invocation kept failing");
            tally.retries += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        tally.latencies.push((started.elapsed().as_secs_f64() * 1e3) as f32);
        let value = &report["ReturnValue"];
        assert!(value.get("quarantined").is_none(), "partition {partition}: the invocation was quarantined: {report}");
        tally.acknowledged += batch as u64;
        tally.staged_rows += value["staged_rows"].as_u64().unwrap_or(0);
        tally.dead_lettered += value["dead_lettered"].as_u64().unwrap_or(0);
        tally.invocations += 1;
        sequence += batch as i64;
    }
    tally.elapsed = phase_started.elapsed().as_secs_f64();
    tally
}

fn main() {
    let settings = Settings::from_env();
    assert!(!settings.clients.is_empty(), "LOAD_BENCH_CLIENTS names no client count");
    let dir = settings.dir.clone();
    let marker = dir.join("bench-rows.txt");
    let logs = PathBuf::from(format!("{}/target/load-bench-logs", env!("CARGO_MANIFEST_DIR")));
    std::fs::create_dir_all(&logs).unwrap();
    let end: DateTime<Utc> = END.parse().unwrap();
    let per_day = settings.rows / u64::from(DAYS);
    let base_rows = (per_day * u64::from(DAYS)) as i64;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let reusable = std::fs::read_to_string(&marker).ok().as_deref() == Some(base_rows.to_string().as_str()) && {
            let (rows, distinct, _) = count_rows(&dir).await;
            rows == base_rows && distinct == base_rows
        };
        if !reusable {
            let _ = std::fs::remove_dir_all(&dir);
            let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().into_owned())).await.unwrap();
            let started = Instant::now();
            generate(&lake, per_day, end).await;
            eprintln!("generated {base_rows} rows in {:.0}s", started.elapsed().as_secs_f64());
            std::fs::write(&marker, base_rows.to_string()).unwrap();
        }
        let (rows, distinct, base_snapshot) = count_rows(&dir).await;
        assert_eq!((rows, distinct), (base_rows, base_rows), "the generated table");
        let base_snapshot = base_snapshot.expect("the generated table has a snapshot");

        let mix = Arc::new(Mix::new(query_mix()));
        // Closed-loop clients keep one connection each; the pool must not cap them below the client count.
        let http = reqwest::Client::builder().tcp_nodelay(true).pool_idle_timeout(Duration::from_secs(90)).timeout(Duration::from_secs(120)).build().unwrap();
        let seconds = settings.seconds;
        let unlimited = ["--rate-limit-per-minute", UNLIMITED, "--rate-limit-burst", UNLIMITED];
        let mut rows = Vec::new();
        let mut phase = 0;

        // (a) Uncached: no Redis, every request computed by the engine (identical concurrent requests still
        // share one computation: single-flight, `shared` below).
        {
            let server = Server::start(&dir, &logs, "cold", &unlimited, &http).await;
            prime(&http, &server.base, &mix).await;
            for &clients in &settings.clients {
                phase += 1;
                rows.push(measure("uncached (no Redis)", &server, &http, &mix, Clients { count: clients, phase, addresses: Addresses::PerClient }, seconds).await);
            }
        }

        let redis = RedisServer::start();
        let redis_url = redis.url();
        // (b) Cached: the same mix after FLUSHALL and one pass that stores every answer, so all are hits.
        {
            let args: Vec<&str> = unlimited.iter().copied().chain(["--redis-url", &redis_url]).collect();
            let server = Server::start(&dir, &logs, "warm", &args, &http).await;
            for &clients in &settings.clients {
                flush_redis(&redis);
                let primed = prime(&http, &server.base, &mix).await;
                assert_eq!(primed.get("miss").copied().unwrap_or(0) as usize, mix.len(), "after FLUSHALL every answer is computed once: {primed:?}");
                phase += 1;
                rows.push(measure("cached (Redis hits)", &server, &http, &mix, Clients { count: clients, phase, addresses: Addresses::PerClient }, seconds).await);
            }
        }

        // (c) The server's own limits (600/min, burst 60 per client; 25 s deadline), cached, clients with
        // their own addresses, then all behind one.
        {
            let server = Server::start(&dir, &logs, "guards", &["--redis-url", &redis_url], &http).await;
            flush_redis(&redis);
            prime(&http, &server.base, &mix).await;
            for &clients in &settings.clients {
                phase += 1;
                rows.push(measure("default limits, cached, one address per client", &server, &http, &mix, Clients { count: clients, phase, addresses: Addresses::PerClient }, seconds).await);
            }
            let most = settings.clients.iter().copied().max().unwrap_or(1);
            phase += 1;
            rows.push(measure("default limits, cached, all clients behind one address", &server, &http, &mix, Clients { count: most, phase, addresses: Addresses::Shared }, seconds).await);
        }

        // (d) Ingestion of several partitions at once while query clients run, committing every few seconds
        // (each commit makes every cached answer stale: the queries meet misses and the engine again).
        flush_redis(&redis);
        let commit_secs = settings.commit_secs.to_string();
        let mut args: Vec<&str> = unlimited.iter().copied().chain(["--redis-url", &redis_url]).collect();
        args.extend(["--commit-interval-secs", &commit_secs]);
        let server = Server::start(&dir, &logs, "mixed", &args, &http).await;
        prime(&http, &server.base, &mix).await;
        // A namespace per run: the sources' watermarks of an earlier run never meet this run's sequence numbers.
        let namespace = format!("load-bench-{}.servicebus.windows.net", uuid::Uuid::new_v4().simple());
        let duration = Duration::from_secs_f64(settings.mixed_seconds);
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample_usage(server.pid(), stop.clone());
        let started = Instant::now();
        let started_at = Utc::now();
        let partitions: Vec<_> = (0..settings.partitions)
            .map(|p| tokio::spawn(run_partition(http.clone(), server.base.clone(), p, settings.batch, namespace.clone(), duration)))
            .collect();
        phase += 1;
        let target = Target { http: &http, base: &server.base, mix: &mix };
        let queries = run_clients(&target, Clients { count: settings.mixed_clients, phase, addresses: Addresses::PerClient }, duration).await;
        let query_elapsed = started.elapsed().as_secs_f64();
        let mut ingest = IngestTally::default();
        for partition in partitions {
            let t = partition.await.unwrap();
            ingest.acknowledged += t.acknowledged;
            ingest.staged_rows += t.staged_rows;
            ingest.dead_lettered += t.dead_lettered;
            ingest.invocations += t.invocations;
            ingest.retries += t.retries;
            ingest.latencies.extend(t.latencies);
            ingest.elapsed = ingest.elapsed.max(t.elapsed);
        }
        stop.store(true, Ordering::Relaxed);
        let usage = sampler.await.unwrap();
        ingest.latencies.sort_by(f32::total_cmp);
        let mixed = Row { phase: format!("during ingestion ({} partitions x {} events)", settings.partitions, settings.batch), clients: settings.mixed_clients, tally: queries, elapsed: query_elapsed, usage };
        eprintln!("{}", markdown_row(&mixed));
        let expected = base_rows + ingest.acknowledged as i64;
        // The server's own committer, not the commit on shutdown, must make every acknowledged row visible:
        // how long that takes after the last acknowledgement is the visibility the interval promises.
        let waiting = Instant::now();
        let commits = loop {
            let history: Value = http.get(format!("{}/api/sentiment/snapshots?limit=1000", server.base)).send().await.unwrap().json().await.unwrap();
            let commits = lineage_above(history["data"].as_array().map(Vec::as_slice).unwrap_or_default(), base_snapshot);
            if commits.last().and_then(|c| c["total_rows"].as_i64()) == Some(expected) || waiting.elapsed() > Duration::from_secs(300) {
                break commits;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let offset = |c: &Value| {
            let at: DateTime<Utc> = c["committed_at"].as_str().and_then(|t| t.parse().ok()).unwrap_or(started_at);
            (at - started_at).num_milliseconds() as f64 / 1e3
        };
        let commit_list: Vec<String> = commits.iter().map(|c| format!("+{:.1} s: {}", offset(c), c["added_rows"].as_i64().unwrap_or(0))).collect();
        let visible = commits.iter().find(|c| c["total_rows"].as_i64() == Some(expected)).map(|c| offset(c) - ingest.elapsed);
        let exit = server.stop().await;
        assert!(exit.success(), "serve exited with {exit} after SIGTERM (final commit)");
        let (after_rows, after_distinct, _) = count_rows(&dir).await;
        rows.push(mixed);

        // Back to the generated table, so the next run can reuse it.
        let rollback = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .arg("--warehouse")
            .arg(&dir)
            .args(["rollback", "--to", &base_snapshot.to_string()])
            .output()
            .unwrap();
        let rolled_back = rollback.status.success() && count_rows(&dir).await.0 == base_rows;
        if !rolled_back {
            eprintln!("rollback failed ({}); the next run regenerates the table", String::from_utf8_lossy(&rollback.stderr));
            let _ = std::fs::remove_file(&marker);
        }
        drop(redis);

        println!(
            "load benchmark: {base_rows} generated rows ({DAYS} days x {TICKERS} tickers x 4 sources); {} distinct queries over every endpoint; closed-loop clients, {seconds} s per phase ({} s with ingestion); server `sentiment-lake serve` (release), MALLOC_ARENA_MAX=2",
            mix.len(),
            settings.mixed_seconds
        );
        println!();
        println!("{TABLE_HEADER}");
        for row in &rows {
            println!("{}", markdown_row(row));
        }
        println!();
        println!("Latencies are of 2xx answers; req/s counts every answer until the last client's last one; 429 clients waited out Retry-After before their next request.");
        println!();
        println!("p50 / p99 ms of 2xx answers per endpoint:");
        println!();
        println!("| phase | clients | {} |", mix.labels.join(" | "));
        println!("|---|---:|{}", "---:|".repeat(mix.labels.len()));
        for row in &rows {
            let cells: Vec<String> = row
                .tally
                .by_label
                .iter()
                .map(|l| if l.is_empty() { "-".into() } else { format!("{:.0} / {:.0}", percentile(l, 0.5), percentile(l, 0.99)) })
                .collect();
            println!("| {} | {} | {} |", row.phase, row.clients, cells.join(" | "));
        }
        println!();
        println!("| ingestion during the mixed phase | value |");
        println!("|---|---:|");
        println!("| partitions x events per invocation | {} x {} |", settings.partitions, settings.batch);
        println!("| invocations acknowledged (retried) | {} ({}) |", ingest.invocations, ingest.retries);
        println!("| events acknowledged | {} |", ingest.acknowledged);
        println!("| events/s acknowledged | {:.0} |", ingest.acknowledged as f64 / ingest.elapsed);
        println!("| invocation p50 / p99 / max ms | {:.0} / {:.0} / {:.0} |", percentile(&ingest.latencies, 0.5), percentile(&ingest.latencies, 0.99), percentile(&ingest.latencies, 1.0));
        println!("| rows staged / dead-lettered (server reports) | {} / {} |", ingest.staged_rows, ingest.dead_lettered);
        println!("| commits by the server's committer (interval {} s), s after the phase started: rows | {} |", settings.commit_secs, commit_list.join("; "));
        match visible {
            Some(lag) => println!("| every acknowledged row visible, s after the last acknowledgement ({:.1} s) | {lag:.1} |", ingest.elapsed),
            None => println!("| every acknowledged row visible | not within 300 s of the phase's end (the commit on SIGTERM did it) |"),
        }
        println!("| rows in the table after SIGTERM (final commit) | {after_rows} (distinct message ids {after_distinct}) |");
        println!("| generated + acknowledged | {expected} |");
        println!("| verdict | {} |", if after_rows == expected && after_distinct == expected { "no loss, no duplicates" } else { "MISMATCH" });
        println!("| table restored to the generated snapshot | {} |", if rolled_back { "yes (rollback)" } else { "no" });
        assert_eq!(ingest.dead_lettered, 0, "generated events are all valid");
        assert_eq!(after_distinct, after_rows, "no duplicate message ids");
        assert_eq!(after_rows, expected, "the table holds the generated rows plus every acknowledged event");
    });
}
