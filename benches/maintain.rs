//! Maintenance and layout benchmark: for each partition layout a new table can be created with (the seed's
//! day x ticker x source, day only, day x bucket(8, ticker)), the same generated events are ingested in many
//! small commits (as an interval committer makes them), then the time-series query is timed (engine only,
//! in process), the table is compacted (files before/after, MB/s per CPU-second) and the query timed again.
//! Run: `cargo bench --bench maintain`. Environment: `MAINTAIN_BENCH_EVENTS` (default 200,000),
//! `MAINTAIN_BENCH_COMMITS` (default 20), `MAINTAIN_BENCH_ITERATIONS` (default 20).

use std::time::Instant;

use chrono::{DateTime, Utc};
use sentiment_lake::app::{query_service, QueryOptions};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::maintain::compact::{compact, CompactionPolicy};
use sentiment_lake::maintain::health::health;
use sentiment_lake::query::{Query, QueryKind};
use sentiment_lake::schema::Layout;
use sentiment_lake::synthetic::EventGenerator;

/// A week of data: 7 days x 50 tickers x 4 sources = 1,400 partitions under the seed's spec, each touched
/// by every commit of 10,000 events.
const DAYS: u32 = 7;
const TICKERS: usize = 50;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU seconds of this process so far (user + system, from /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn query_p50(lake: &Lake, query: &Query, iterations: usize) -> (f64, i64) {
    let service = query_service(lake, &QueryOptions::default()).unwrap();
    let answer = service.answer(query).await.unwrap();
    let points: serde_json::Value = serde_json::from_str(answer.stored.data.get()).unwrap();
    let messages = points.as_array().map(|b| b.iter().filter_map(|r| r["message_count"].as_i64()).sum()).unwrap_or(0);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        service.answer(query).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], messages)
}

#[derive(serde::Serialize)]
struct Figures {
    layout: Layout,
    ingest_events_per_s: f64,
    files_per_commit: f64,
    files_before: usize,
    query_p50_ms_before: f64,
    files_after: usize,
    compaction_mb_per_cpu_s: f64,
    compaction_s: f64,
    query_p50_ms_after: f64,
    messages: i64,
}

async fn measure(layout: Layout, events: u64, commits: u64, iterations: usize, end: DateTime<Utc>) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LakeConfig::local(dir.path().to_str().unwrap());
    config.layout = layout;
    let lake = Lake::open(&config).await.unwrap();
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    let per_commit = events / commits;
    let mut generator = EventGenerator::new(42, end, DAYS, TICKERS);
    let started = Instant::now();
    for c in 0..commits {
        let batch = batch_from_file(&generator.ndjson(c * per_commit, per_commit), &format!("bench-{c}"), None).unwrap();
        pipeline.ingest(&lake, &batch).await.unwrap();
        lake.commit().await.unwrap();
    }
    let ingest_s = started.elapsed().as_secs_f64();
    let policy = CompactionPolicy { min_input_files: 2, ..CompactionPolicy::default() };
    let before = health(&lake, TableKind::Records, &policy, Utc::now()).await.unwrap();
    let params = format!(
        "ticker=AAPL&interval=hour&from={}&to={}",
        (end - chrono::Duration::days(7)).format("%Y-%m-%dT%H:00:00Z"),
        end.format("%Y-%m-%dT%H:00:00Z")
    );
    let query = Query::parse(QueryKind::TimeSeries, Some(&params), Utc::now()).unwrap();
    let (p50_before, messages) = query_p50(&lake, &query, iterations).await;
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut bytes_read = 0;
    loop {
        let report = compact(&lake, TableKind::Records, &CompactionPolicy { max_input_bytes: u64::MAX, ..policy }).await.unwrap();
        bytes_read += report.bytes_read;
        if report.groups_committed == 0 {
            break;
        }
    }
    let (compaction_cpu, compaction_s) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let after = health(&lake, TableKind::Records, &policy, Utc::now()).await.unwrap();
    let (p50_after, messages_after) = query_p50(&lake, &query, iterations).await;
    assert_eq!(messages, messages_after, "compaction changed the answer");
    assert_eq!(before.records, after.records, "compaction changed the row count");
    Figures {
        layout,
        ingest_events_per_s: events as f64 / ingest_s,
        files_per_commit: before.data_files as f64 / commits as f64,
        files_before: before.data_files,
        query_p50_ms_before: p50_before,
        files_after: after.data_files,
        compaction_mb_per_cpu_s: bytes_read as f64 / 1e6 / compaction_cpu.max(0.01),
        compaction_s,
        query_p50_ms_after: p50_after,
        messages,
    }
}

fn main() {
    let events: u64 = env_or("MAINTAIN_BENCH_EVENTS", 200_000);
    let commits: u64 = env_or("MAINTAIN_BENCH_COMMITS", 20);
    let iterations: usize = env_or("MAINTAIN_BENCH_ITERATIONS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let end = Utc::now();
    let figures: Vec<Figures> = [Layout::Seed, Layout::Day, Layout::DayBucket]
        .into_iter()
        .map(|layout| runtime.block_on(measure(layout, events, commits, iterations, end)))
        .collect();
    println!("maintenance benchmark: {events} events over {DAYS} days x {TICKERS} tickers x 4 sources in {commits} commits; timeseries ticker=AAPL interval=hour over 7 days, engine only, p50 of {iterations}");
    println!();
    println!("| layout | ingest events/s | files per commit | files before | query p50 ms before | compaction MB/s per CPU-s | files after | query p50 ms after |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in &figures {
        println!(
            "| {:?} | {:.0} | {:.1} | {} | {:.2} | {:.1} | {} | {:.2} |",
            f.layout,
            f.ingest_events_per_s,
            f.files_per_commit,
            f.files_before,
            f.query_p50_ms_before,
            f.compaction_mb_per_cpu_s,
            f.files_after,
            f.query_p50_ms_after
        );
    }
    println!();
    println!("{}", serde_json::to_string(&figures).unwrap());
}
