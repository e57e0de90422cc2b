//! Shared helpers for integration tests: a temporary warehouse, the real server on a free loopback port,
//! and reading tables back through iceberg-rust's scan.
#![allow(dead_code)]

pub mod azurite;
pub mod expected;
pub mod identity;
pub mod postgres;
pub mod redis;
pub mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use futures::TryStreamExt;
use sentiment_lake::app::{query_service, warm_after_commit, QueryOptions};
use sentiment_lake::committer::Committer;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::functions::api::ApiConfig;
use sentiment_lake::functions::routes::{app, AppState, EventHubBinding, DEFAULT_MAX_INVOCATION_BYTES};
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use serde_json::Value;

/// The project's interpreter, checked to have `module`. Missing is a test failure with instructions, never a
/// silent skip.
pub fn python_with(module: &str) -> String {
    let candidate = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    let ok = std::process::Command::new(&candidate).args(["-c", &format!("import {module}")]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "{module} is not installed at {candidate}: run scripts/setup-python.sh (scripts/test.sh does)");
    candidate
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/payloads").join(name)).unwrap()
}

pub fn warehouse() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sentiment-lake-test").tempdir().unwrap()
}

/// A local lake. Its rollup keeps minute rows for every period: the tests' events lie at fixed dates that
/// stand for a live table's recent rows, which a rebuild's minute floor (a week before the wall clock)
/// would otherwise put into history. Tests of the floor set `rollup_minute_days` themselves.
pub fn config(dir: &Path) -> LakeConfig {
    LakeConfig { rollup_minute_days: None, ..LakeConfig::local(dir.to_string_lossy().to_string()) }
}

pub async fn open(dir: &Path) -> Lake {
    // Logs go through the test harness's capture, so they show only for failing tests.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
    Lake::open(&config(dir)).await.unwrap()
}

/// The router served on 127.0.0.1:<free port>; the server stops when the returned handle is dropped.
pub struct Server {
    pub base: String,
    pub committer: Committer,
    pub query: Arc<sentiment_lake::query::QueryService>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The server with the default policy (enrich records that lack analysis).
pub async fn serve(lake: Lake) -> Server {
    serve_with(lake, IncompletePolicy::Enrich).await
}

pub async fn serve_with(lake: Lake, policy: IncompletePolicy) -> Server {
    serve_full(lake, policy, QueryOptions::default(), ApiConfig::default()).await
}

/// The whole server, with the query service configured as given (cache, warming) and the API's limits.
pub async fn serve_full(lake: Lake, policy: IncompletePolicy, query: QueryOptions, api: ApiConfig) -> Server {
    serve_limited(lake, policy, query, api, DEFAULT_MAX_INVOCATION_BYTES).await
}

/// [`serve_full`] with a given limit on invocation bodies held in memory.
pub async fn serve_limited(lake: Lake, policy: IncompletePolicy, query: QueryOptions, api: ApiConfig, max_invocation_bytes: usize) -> Server {
    serve_configured(lake, policy, query, api, max_invocation_bytes, |_| {}).await
}

/// The default server with its state changed by `configure` first.
pub async fn serve_state(lake: Lake, configure: impl FnOnce(&mut AppState)) -> Server {
    serve_configured(lake, IncompletePolicy::Enrich, QueryOptions::default(), ApiConfig::default(), DEFAULT_MAX_INVOCATION_BYTES, configure).await
}

async fn serve_configured(
    lake: Lake,
    policy: IncompletePolicy,
    query: QueryOptions,
    api: ApiConfig,
    max_invocation_bytes: usize,
    configure: impl FnOnce(&mut AppState),
) -> Server {
    // Installed before anything is recorded, as `serve` does at start-up.
    sentiment_lake::observability::metrics_handle();
    let query = query_service(&lake, &query).unwrap();
    let committer = Committer::new(lake.clone(), usize::MAX, Some(warm_after_commit(&lake, query.clone())));
    let mut state = AppState {
        lake,
        pipeline: Pipeline::new(policy),
        binding: Arc::new(EventHubBinding::default()),
        committer: committer.clone(),
        query: query.clone(),
        max_invocation_bytes,
        // Test tables are small: a partition with two files is worth compacting here.
        maintenance: sentiment_lake::maintain::MaintenancePolicy {
            compaction: Some(sentiment_lake::maintain::compact::CompactionPolicy { min_input_files: 2, ..Default::default() }),
            ..Default::default()
        },
        maintenance_backend: Default::default(),
        legacy_location: None,
        doctor: None,
        replica: None,
        signals: Default::default(),
    };
    configure(&mut state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app(state, &api).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server { base, committer, query, task }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

pub async fn post(base: &str, function: &str, body: String) -> (u16, serde_json::Value) {
    let response = client()
        .post(format!("{base}/{function}"))
        .header("content-type", "application/json")
        .header("x-azure-functions-invocationid", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json", "the host only accepts JSON replies");
    (status, response.json().await.unwrap())
}

/// Every row of a table, via iceberg-rust's own reader.
pub async fn scan(lake: &Lake, kind: TableKind) -> RecordBatch {
    let table = lake.load(kind).await.unwrap();
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema()).unwrap());
    if table.metadata().current_snapshot_id().is_none() {
        return RecordBatch::new_empty(schema);
    }
    let stream = table.scan().select_all().build().unwrap().to_arrow().await.unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    if batches.is_empty() {
        return RecordBatch::new_empty(schema);
    }
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

pub fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap();
    let array = arrow_cast::cast(array, &arrow_schema::DataType::Utf8).unwrap();
    let array = array.as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    array.iter().map(|v| v.map(str::to_string)).collect()
}

/// Sorted non-null values of a string column.
pub fn sorted(batch: &RecordBatch, column: &str) -> Vec<String> {
    let mut values: Vec<String> = strings(batch, column).into_iter().flatten().collect();
    values.sort();
    values
}

pub fn counts(values: &[String]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for v in values {
        *out.entry(v.clone()).or_default() += 1;
    }
    out
}

/// Data and metadata files under the warehouse, for orphan checks.
pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out
}

/// An answer's data as JSON (what the API returns).
pub fn answer_data(answer: &sentiment_lake::query::Answer) -> serde_json::Value {
    serde_json::from_str(answer.stored.data.get()).unwrap()
}

pub fn instant(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

/// Events `first..first+count` of a seeded generator spanning the 3 days before `end` over 6 tickers.
pub fn events(end: chrono::DateTime<chrono::Utc>, first: u64, count: u64) -> Vec<Value> {
    let mut generator = sentiment_lake::synthetic::EventGenerator::new(7, end, 3, 6);
    (first..first + count).map(|i| generator.event(i)).collect()
}

/// Ingests through the real pipeline (validation, staging) and commits.
pub async fn ingest(lake: &Lake, events: &[Value]) {
    let ndjson: Vec<u8> = events.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, &format!("test-{}", uuid::Uuid::new_v4()), None).unwrap();
    let report = Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
    assert_eq!(report.dead_lettered, 0, "generated events are valid");
    lake.commit().await.unwrap();
}

pub async fn get(base: &str, path: &str) -> (u16, Value) {
    let response = client().get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn get_ok(base: &str, path: &str) -> Value {
    let (status, body) = get(base, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// An Event Hubs invocation body encoded as the host does for `dataType: string` (the event array and
/// every metadata array double-encoded as JSON strings, enqueued times without an offset): the events
/// `bodies` of partition `partition`, sequence numbers from `first_sequence`, all enqueued at `enqueued`.
pub fn host_envelope(partition: &str, first_sequence: i64, bodies: &[String], enqueued: chrono::DateTime<chrono::Utc>) -> String {
    let n = bodies.len();
    let seqs: Vec<i64> = (0..n as i64).map(|i| first_sequence + i).collect();
    let offsets: Vec<String> = seqs.iter().map(|s| (s * 1024).to_string()).collect();
    let enqueued = enqueued.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    let wrap = |v: Value| Value::String(v.to_string());
    serde_json::json!({
        "Data": {"events": wrap(serde_json::json!(bodies))},
        "Metadata": {
            "PartitionContext": {
                "FullyQualifiedNamespace": "test-ns.servicebus.windows.net",
                "EventHubName": "sentiment-events",
                "ConsumerGroup": "$Default",
                "PartitionId": partition,
                "IsCheckpointingAfterInvocation": true
            },
            "PartitionKeyArray": wrap(serde_json::json!(vec![Value::Null; n])),
            "OffsetArray": wrap(serde_json::json!(offsets)),
            "SequenceNumberArray": wrap(serde_json::json!(seqs)),
            "EnqueuedTimeUtcArray": wrap(serde_json::json!(vec![enqueued; n])),
            "sys": {"MethodName": "IngestEvents", "UtcNow": chrono::Utc::now().to_rfc3339(), "RandGuid": uuid::Uuid::new_v4().to_string()}
        }
    })
    .to_string()
}

/// An Event Grid trigger invocation as the host sends it for a blob created at `url` (the event only, wrapped
/// in a JSON string as the host encodes trigger values), announcing the operation `api` (`PutBlob`,
/// `FlushWithClose`, `CreateFile`, ...).
pub fn eventgrid_invocation(url: &str, etag: Option<&str>, api: &str) -> String {
    let event = serde_json::json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": "/blobServices/default/containers/legacy/blobs/upload.parquet",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "data": {"api": api, "url": url, "eTag": etag.map(|e| format!("\"{}\"", e.trim_matches('"'))), "blobType": "BlockBlob"},
        "dataVersion": "",
        "metadataVersion": "1"
    });
    serde_json::json!({
        "Data": {"event": event.to_string()},
        "Metadata": {"sys": {"MethodName": "MigrateBlob", "UtcNow": chrono::Utc::now().to_rfc3339(), "RandGuid": uuid::Uuid::new_v4().to_string()}}
    })
    .to_string()
}

/// The source id [`host_envelope`] batches of `partition` are staged under.
pub fn host_source(partition: &str) -> String {
    format!("eventhubs://test-ns.servicebus.windows.net/sentiment-events/$Default/{partition}")
}

/// Generated events as JSON text, each carrying a `text_content` padded to about `text_bytes` bytes.
pub fn padded_events(end: chrono::DateTime<chrono::Utc>, first: u64, count: u64, text_bytes: usize) -> Vec<String> {
    events(end, first, count)
        .into_iter()
        .map(|mut event| {
            let text = event["text_content"].as_str().unwrap_or_default().to_string();
            let mut padded = text.clone();
            while padded.len() < text_bytes {
                padded.push(' ');
                padded.push_str(&text);
            }
            padded.truncate(text_bytes);
            event["text_content"] = Value::String(padded);
            event.to_string()
        })
        .collect()
}

/// Every file under `dir` (recursively) whose path does not start with `root`: files that escaped.
pub fn files_outside(dir: &Path, root: &Path) -> Vec<PathBuf> {
    files_under(dir, "").into_iter().filter(|p| !p.starts_with(root)).collect()
}

/// Runs `tests/interop/<script>` with the project's PyIceberg on `table` of the warehouse's catalog and
/// returns the JSON it prints.
pub fn pyiceberg_script(script: &str, warehouse: &std::path::Path, table: &str) -> Value {
    use sentiment_lake::lake::LakeConfig;
    let output = std::process::Command::new(python_with("pyiceberg"))
        .arg(format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(warehouse)
        .arg(LakeConfig::DEFAULT_CATALOG_NAME)
        .arg(format!("{}.{table}", LakeConfig::DEFAULT_NAMESPACE))
        .output()
        .unwrap();
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What PyIceberg (an independent implementation) sees in a table of the warehouse: schema, spec,
/// snapshots, files and rows (`tests/interop/pyiceberg_read.py`).
pub fn read_with_pyiceberg(warehouse: &std::path::Path, table: &str) -> Value {
    pyiceberg_script("pyiceberg_read.py", warehouse, table)
}

/// The live benchmarks' producer: posts one partition's events of the present to `IngestEvents`, `rate`
/// per second in batches each second, until `stop`; counts the events acknowledged.
pub async fn produce(base: String, partition: usize, rate: u64, stop: Arc<AtomicBool>, acknowledged: Arc<AtomicU64>) {
    let http = reqwest::Client::new();
    let mut generator = sentiment_lake::synthetic::EventGenerator::new(100 + partition as u64, chrono::Utc::now(), 1, 50);
    let mut sequence = 0i64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = chrono::Utc::now();
        let bodies: Vec<String> = (0..rate)
            .map(|i| {
                let n = sequence as u64 + i;
                let mut event = generator.event(n);
                // Events of the present, one in fifty up to an hour late.
                let late_ms = if n.is_multiple_of(50) { (n * 7919) % 3_600_000 } else { (n * 31) % 2_000 };
                event["event_timestamp"] =
                    Value::String((now - chrono::Duration::milliseconds(late_ms as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                event["message_id"] = Value::String(format!("live-{partition}-{n:012}"));
                event.to_string()
            })
            .collect();
        let body = host_envelope(&partition.to_string(), sequence, &bodies, now);
        match http.post(format!("{base}/IngestEvents")).header("content-type", "application/json").body(body).send().await {
            Ok(response) if response.status() == 200 => {
                acknowledged.fetch_add(rate, Ordering::Relaxed);
                sequence += rate as i64;
            }
            // Not acknowledged: the host would redeliver the same batch; so does this producer.
            Ok(response) => eprintln!("partition {partition}: {}", response.status()),
            Err(e) => eprintln!("partition {partition}: {e}"),
        }
    }
}

/// Days of [`generate_history`].
pub const HISTORY_DAYS: u32 = 30;
/// Tickers of [`generate_history`].
pub const HISTORY_TICKERS: usize = 50;

/// The benchmarks' history: `rows` events over the 30 days before `end`, 50 tickers x 4 sources, one day
/// per commit through the real pipeline: 6,000 partitions, one data file each.
pub async fn generate_history(lake: &Lake, rows: u64, end: chrono::DateTime<chrono::Utc>) {
    let per_day = rows / u64::from(HISTORY_DAYS);
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    for day in 0..HISTORY_DAYS {
        let started = std::time::Instant::now();
        let day_end = end - chrono::Duration::days(i64::from(HISTORY_DAYS - 1 - day));
        let mut generator = sentiment_lake::synthetic::EventGenerator::new(u64::from(day), day_end, 1, HISTORY_TICKERS);
        let first = u64::from(day) * per_day;
        let batch = sentiment_lake::ingest::file::batch_from_file(&generator.ndjson(first, per_day), &format!("bench-day-{day}"), None).unwrap();
        let report = pipeline.ingest(lake, &batch).await.unwrap();
        assert_eq!(report.dead_lettered, 0);
        lake.commit().await.unwrap();
        eprintln!("day {day}: {per_day} rows in {:.1}s", started.elapsed().as_secs_f64());
    }
}

/// Where scripts/setup-browser.sh put playwright-core (Debian chromium beside it); `None` (a skip with a
/// note) outside CI, a failure in CI.
pub fn browser_dir() -> Option<String> {
    let dir = std::env::var("SENTIMENT_LAKE_BROWSER").ok().or_else(|| {
        let local = format!("{}/.cache/browser", env!("CARGO_MANIFEST_DIR"));
        std::path::Path::new(&format!("{local}/node_modules/playwright-core")).exists().then_some(local)
    });
    if dir.is_none() {
        assert!(std::env::var("CI").is_err(), "the browser test needs scripts/setup-browser.sh (Debian chromium, playwright-core from npm)");
        eprintln!("skipped: run scripts/setup-browser.sh (or scripts/test.sh) for the browser test");
    }
    dir
}
