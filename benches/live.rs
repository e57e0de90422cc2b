//! Live benchmark: the real `sentiment-lake serve` process on the seed's default layout as a living
//! system. Four Event Hubs partitions post events of the present (a few late) at 200 events/s, the
//! committer commits every 30 s, the maintenance timer fires every 5 minutes, and one dashboard client
//! polls every endpoint every 2 s without a cache, for 20 minutes. Reports the uncached latency of each
//! endpoint per minute (it must stay flat however many commits have landed), which path answered, and at
//! the end that the table holds every acknowledged event exactly once and that the rollup equals its
//! recomputation from raw rows.
//!
//! Freshness: every few seconds a probe event is posted on a partition of its own and, once acknowledged,
//! `records` is polled every 50 ms until it shows the probe; the report gives the time to visible (p50,
//! p99, worst) and the data files the run's commits wrote per hour, the two sides of the commit interval.
//!
//! Run: `cargo bench --bench live`. Environment: `LIVE_BENCH_MINUTES` (20), `LIVE_BENCH_RATE` events/s
//! (200), `LIVE_BENCH_PARTITIONS` (4), `LIVE_BENCH_COMMIT_SECS` (30), `LIVE_BENCH_MAINTAIN_SECS` (300),
//! `LIVE_BENCH_POLL_SECS` (2), `LIVE_BENCH_PROBE_SECS` (3), `LIVE_BENCH_ROLLUPS` (`auto`, or `off` for the
//! same run answered from raw rows), `LIVE_BENCH_FRESH` (`true`, or `false`: answers from committed
//! snapshots only). Only loopback addresses are used.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::synthetic::EventGenerator;
use serde_json::Value;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What the dashboard polls: every endpoint, over the windows a live dashboard shows.
const POLLED: &[(&str, &str)] = &[
    ("tickers", "/api/sentiment/tickers?days=1&limit=10"),
    ("tickers 7d", "/api/sentiment/tickers?days=7&limit=10"),
    ("timeseries", "/api/sentiment/timeseries?ticker=AAPL&interval=minute&days=1"),
    ("timeseries hour", "/api/sentiment/timeseries?ticker=AAPL&interval=hour&days=7"),
    ("summary", "/api/sentiment/summary?ticker=AAPL&days=1"),
    ("aspects", "/api/sentiment/aspects?ticker=AAPL&days=1"),
    ("intents", "/api/sentiment/intents?days=1"),
    ("entities", "/api/sentiment/entities?days=1"),
    ("toxicity", "/api/sentiment/toxicity?days=1&min_toxicity=0.15"),
    ("records", "/api/sentiment/records?ticker=AAPL&days=1&limit=50"),
    // The dashboard's quality panel (issue #36): the quality table read whole for the day, with the drift.
    ("quality", "/api/quality?hours=24"),
];

/// One timed answer.
struct Sample {
    minute: usize,
    endpoint: &'static str,
    ms: f64,
    path: String,
}

/// Posts a probe event every `every` on partition `partition` and measures how long after its
/// acknowledgement `records` first shows it; returns the times in milliseconds.
async fn probe(base: String, partition: usize, every: Duration, stop: Arc<AtomicBool>, acknowledged: Arc<AtomicU64>) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut generator = EventGenerator::new(999, Utc::now(), 1, 50);
    let mut times = Vec::new();
    let mut tick = tokio::time::interval(every);
    let mut sequence = 0i64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = Utc::now();
        let mut event = generator.event(sequence as u64);
        let id = format!("probe-{sequence:08}");
        event["message_id"] = Value::String(id.clone());
        event["ticker"] = Value::String("PROBE".into());
        event["event_timestamp"] = Value::String(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let body = common::host_envelope(&partition.to_string(), sequence, &[event.to_string()], now);
        let posted = http.post(format!("{base}/IngestEvents")).header("content-type", "application/json").body(body).send().await;
        if !posted.is_ok_and(|r| r.status() == 200) {
            continue;
        }
        acknowledged.fetch_add(1, Ordering::Relaxed);
        sequence += 1;
        let acked = Instant::now();
        while acked.elapsed() < Duration::from_secs(900) {
            let answer: Value = match http.get(format!("{base}/api/sentiment/records?ticker=PROBE&days=1&limit=1")).send().await {
                Ok(response) => response.json().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            if answer["data"][0]["message_id"].as_str() == Some(id.as_str()) {
                times.push(acked.elapsed().as_secs_f64() * 1e3);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    times
}

fn main() {
    let minutes: u64 = env_or("LIVE_BENCH_MINUTES", 20);
    let rate: u64 = env_or("LIVE_BENCH_RATE", 200);
    let partitions: usize = env_or("LIVE_BENCH_PARTITIONS", 4);
    let commit_secs: u64 = env_or("LIVE_BENCH_COMMIT_SECS", 30);
    let maintain_secs: u64 = env_or("LIVE_BENCH_MAINTAIN_SECS", 300);
    let poll_secs: u64 = env_or("LIVE_BENCH_POLL_SECS", 2);
    let rollups: String = env_or("LIVE_BENCH_ROLLUPS", "auto".to_string());
    let fresh: String = env_or("LIVE_BENCH_FRESH", "true".to_string());
    let probe_secs: u64 = env_or("LIVE_BENCH_PROBE_SECS", 3);
    let dir = format!("{}/target/live-bench-warehouse", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let log = std::fs::File::create(format!("{dir}.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .args(["--warehouse", &dir, "serve", "--port", &port.to_string(), "--commit-interval-secs", &commit_secs.to_string()])
        .args(["--rollups", &rollups, "--fresh-reads", &fresh, "--rate-limit-per-minute", "1000000000", "--rate-limit-burst", "1000000000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the sentiment-lake binary");
    let server = common::Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let run_started = Utc::now();
    let (samples, acknowledged, maintenance_runs, mut visible) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/api/health")).send().await.map_or(true, |r| r.status() != 200) {
            assert!(started.elapsed() < Duration::from_secs(60), "serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let per_partition = rate / partitions as u64;
        let producers: Vec<_> =
            (0..partitions).map(|p| tokio::spawn(common::produce(base.clone(), p, per_partition, stop.clone(), acknowledged.clone()))).collect();
        let prober = tokio::spawn(probe(base.clone(), partitions, Duration::from_secs(probe_secs), stop.clone(), acknowledged.clone()));
        let maintainer = {
            let (base, stop, http) = (base.clone(), stop.clone(), http.clone());
            tokio::spawn(async move {
                let mut runs = 0;
                let mut tick = tokio::time::interval(Duration::from_secs(maintain_secs));
                tick.tick().await;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let response = http.post(format!("{base}/MaintainTable")).body(common::fixture("timer.json")).send().await;
                    runs += usize::from(response.is_ok_and(|r| r.status() == 200));
                }
                runs
            })
        };
        let mut samples = Vec::new();
        let run_for = Duration::from_secs(minutes * 60);
        let begun = Instant::now();
        let mut poll = tokio::time::interval(Duration::from_secs(poll_secs));
        while begun.elapsed() < run_for {
            poll.tick().await;
            let minute = (begun.elapsed().as_secs() / 60) as usize;
            for (endpoint, path) in POLLED {
                let asked = Instant::now();
                let response = http.get(format!("{base}{path}")).send().await.unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap_or_default();
                let ms = asked.elapsed().as_secs_f64() * 1e3;
                assert_eq!(status, 200, "{endpoint}: {body}");
                let path = body["meta"]["path"].as_str().or(body["meta"]["query"].as_str()).unwrap_or("?").to_string();
                samples.push(Sample { minute, endpoint, ms, path });
            }
            if begun.elapsed().as_secs() % 60 < poll_secs {
                eprintln!("minute {minute}: {} events acknowledged", acknowledged.load(Ordering::Relaxed));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.await.unwrap();
        }
        let maintenance_runs = maintainer.await.unwrap();
        let visible = prober.await.unwrap();
        // The last events: one more commit, as the timer would make.
        let committed = http.post(format!("{base}/CommitStaged")).body(common::fixture("timer.json")).send().await.unwrap();
        assert_eq!(committed.status(), 200);
        (samples, acknowledged.load(Ordering::Relaxed), maintenance_runs, visible)
    });
    let run_ended = Utc::now();
    drop(server);

    // Every acknowledged event exactly once, and the rollup exact.
    let (rows, distinct, mismatches, rollup_rows, data_files, written, profiled, profile_rows) = runtime.block_on(async {
        let lake = Lake::open(&LakeConfig::local(dir.clone())).await.unwrap();
        let batch = common::scan(&lake, TableKind::Records).await;
        let ids = common::strings(&batch, "message_id");
        let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
        let verified = lake.verify_rollups(None).await.unwrap();
        let table = lake.load(TableKind::Records).await.unwrap();
        let files =
            table.metadata().current_snapshot().and_then(|s| s.summary().additional_properties.get("total-data-files").cloned()).unwrap_or_default();
        // Data files the commits wrote during the run (compaction's rewrites are maintenance's, not counted).
        let written: u64 = table
            .metadata()
            .snapshots()
            .filter(|s| s.summary().operation == iceberg::spec::Operation::Append)
            .filter(|s| s.timestamp_ms() >= run_started.timestamp_millis() && s.timestamp_ms() <= run_ended.timestamp_millis())
            .filter_map(|s| s.summary().additional_properties.get("added-data-files")?.parse::<u64>().ok())
            .sum();
        // The quality table: a row per source and commit, whose rows add up to the table's when no append
        // was lost.
        let (mut profiled, mut profile_rows) = (0u64, 0usize);
        lake.quality_rows(run_started - chrono::Duration::hours(1), |row| {
            profiled += row.profile.rows;
            profile_rows += 1;
        })
        .await
        .unwrap();
        (batch.num_rows(), distinct, verified.mismatches.len(), verified.rows_compared, files, written, profiled, profile_rows)
    });

    let mut by_minute: BTreeMap<usize, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut paths: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for sample in &samples {
        by_minute.entry(sample.minute).or_default().entry(sample.endpoint).or_default().push(sample.ms);
        *paths.entry((sample.endpoint, sample.path.clone())).or_default() += 1;
    }
    println!(
        "live benchmark: {minutes} min, {rate} events/s over {partitions} partitions, commits every {commit_secs} s, maintenance every {maintain_secs} s ({maintenance_runs} runs), one dashboard client polling {} endpoints every {poll_secs} s uncached, rollups {rollups}, fresh reads {fresh}",
        POLLED.len()
    );
    println!();
    print!("| minute |");
    for (endpoint, _) in POLLED {
        print!(" {endpoint} p99 |");
    }
    println!(" all p50 | all p99 |");
    println!("|---:|{}---:|---:|", "---:|".repeat(POLLED.len()));
    let mut all_minutes_p99 = Vec::new();
    for (minute, endpoints) in &by_minute {
        print!("| {minute} |");
        let mut all: Vec<f64> = Vec::new();
        for (endpoint, _) in POLLED {
            let mut times = endpoints.get(endpoint).cloned().unwrap_or_default();
            times.sort_by(f64::total_cmp);
            print!(" {:.1} |", percentile(&times, 0.99));
            all.extend(times);
        }
        all.sort_by(f64::total_cmp);
        all_minutes_p99.push(percentile(&all, 0.99));
        println!(" {:.1} | {:.1} |", percentile(&all, 0.5), percentile(&all, 0.99));
    }
    println!();
    let mut overall: Vec<f64> = samples.iter().map(|s| s.ms).collect();
    overall.sort_by(f64::total_cmp);
    println!(
        "over the run: {} answers, p50 {:.1} ms, p99 {:.1} ms, worst minute's p99 {:.1} ms",
        overall.len(),
        percentile(&overall, 0.5),
        percentile(&overall, 0.99),
        all_minutes_p99.iter().cloned().fold(0.0, f64::max)
    );
    let described: Vec<String> = paths.iter().map(|((endpoint, path), n)| format!("{endpoint}: {path} x{n}")).collect();
    println!("paths: {}", described.join(", "));
    visible.sort_by(f64::total_cmp);
    let hours = (run_ended - run_started).num_milliseconds() as f64 / 3.6e6;
    println!(
        "freshness: {} probes, acknowledged to visible p50 {:.0} ms, p99 {:.0} ms, worst {:.0} ms; commits wrote {written} data files ({:.0} per hour)",
        visible.len(),
        percentile(&visible, 0.5),
        percentile(&visible, 0.99),
        visible.last().copied().unwrap_or(f64::NAN),
        written as f64 / hours
    );
    println!("table: {rows} rows ({distinct} distinct ids) for {acknowledged} acknowledged events; {data_files} data files; rollup verify: {rollup_rows} rows compared, {mismatches} mismatches");
    println!(
        "quality: {profile_rows} profile rows accounting for {profiled} committed rows (the table holds {rows}; a lost append would show as fewer)"
    );
    assert_eq!(rows as u64, acknowledged, "every acknowledged event is in the table");
    assert_eq!(distinct, rows, "none twice");
    assert_eq!(mismatches, 0, "the rollup equals its recomputation from raw rows");
}
