//! Commit memory benchmark: peak resident memory of the committer (the real `sentiment-lake commit`
//! process) against its pass bound, on
//! - a staged backlog of at least 2 GB (what an outage of the committer leaves behind), committed in
//!   bounded passes;
//! - events spread over at least 5,000 partitions (30 days x 50 tickers x 5 sources), where one writer
//!   per open partition used to need ~0.7 MB each; PyIceberg appends the same events in the same run.
//!
//! Run: `cargo bench --bench commit_memory` (needs scripts/setup-python.sh for the peer). Knobs:
//! `COMMIT_BENCH_STAGED_MB` (default 2048), `COMMIT_BENCH_PASS_MB` (default 64, the committer's default),
//! `COMMIT_BENCH_FANOUT_EVENTS` (default 20000).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use chrono::{Duration, Utc};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::{Lake, LakeConfig};
use sentiment_lake::synthetic::EventGenerator;
use serde_json::Value;

const MIB: u64 = 1024 * 1024;
const BATCH: u64 = 1_000;
const TABLE: &str = LakeConfig::DEFAULT_TABLE;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift words: text that compresses about as poorly as real prose does, so staged bytes mean events.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn sentence(&mut self, bytes: usize) -> String {
        let mut out = String::with_capacity(bytes + 12);
        while out.len() < bytes {
            let len = 3 + (self.next() % 8) as usize;
            for _ in 0..len {
                out.push((b'a' + (self.next() % 26) as u8) as char);
            }
            out.push(' ');
        }
        out
    }
}

/// Generated events with `extra_text` bytes of words appended to their text, and a fifth source system.
fn event(generator: &mut EventGenerator, words: &mut Words, i: u64, extra_text: usize) -> Value {
    let mut event = generator.event(i);
    if i % 5 == 4 {
        event["source_system"] = Value::String("seekingalpha".into());
    }
    if extra_text > 0 {
        let text = format!("{} {}", event["text_content"].as_str().unwrap_or_default(), words.sentence(extra_text));
        event["text_content"] = Value::String(text);
    }
    event
}

/// Stages batches of `BATCH` events round-robin over `sources` until `stop(events, staged bytes)`.
async fn stage(
    lake: &Lake,
    warehouse: &Path,
    sources: u64,
    mut next_event: impl FnMut(u64) -> Value,
    stop: impl Fn(u64, u64) -> bool,
) -> (u64, u64, f64) {
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    let started = Instant::now();
    let (mut staged_events, mut staged_bytes, mut i) = (0u64, 0u64, 0u64);
    let mut next_seq = vec![1i64; sources as usize];
    'outer: loop {
        for source in 0..sources {
            if stop(staged_events, staged_bytes) {
                break 'outer;
            }
            let first = next_seq[source as usize];
            let events: Vec<SourceEvent> = (0..BATCH)
                .map(|k| {
                    let body = serde_json::to_vec(&next_event(i + k)).expect("serialisable");
                    SourceEvent { enqueued_time: Some(Utc::now()), ..SourceEvent::new(first + k as i64, Bytes::from(body)) }
                })
                .collect();
            i += BATCH;
            next_seq[source as usize] += BATCH as i64;
            let batch = SourceBatch { source: format!("eventhubs://bench/sentiment-events/$Default/{source}"), invocation_id: None, events };
            let report = pipeline.ingest(lake, &batch).await.expect("staged");
            assert_eq!(report.dead_lettered, 0);
            staged_events += report.staged_rows as u64;
            staged_bytes += report
                .segments
                .iter()
                .filter(|p| p.contains(TABLE))
                .map(|p| std::fs::metadata(warehouse.join(p)).map_or(0, |m| m.len()))
                .sum::<u64>();
        }
    }
    (staged_events, staged_bytes, started.elapsed().as_secs_f64())
}

/// Runs the real committer binary and returns its report (with `peak_rss_bytes`) and wall seconds.
fn commit_process(warehouse: &Path, pass_mb: u64) -> (Value, f64) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(["--commit-pass-mb", &pass_mb.to_string(), "commit"])
        .output()
        .expect("the sentiment-lake binary runs");
    assert!(output.status.success(), "commit failed: {}", String::from_utf8_lossy(&output.stderr));
    (serde_json::from_slice(&output.stdout).expect("a JSON report"), started.elapsed().as_secs_f64())
}

fn fresh(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench warehouse");
    dir
}

fn python() -> Option<String> {
    let candidate = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    Path::new(&candidate).exists().then_some(candidate)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn records(report: &Value) -> &Value {
    &report["committed"][0]
}

fn main() {
    let staged_target = env_u64("COMMIT_BENCH_STAGED_MB", 2048) * MIB;
    let pass_mb = env_u64("COMMIT_BENCH_PASS_MB", 64);
    let fanout_events = env_u64("COMMIT_BENCH_FANOUT_EVENTS", 20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("| scenario | staged | events | partitions | passes | data files | commit s | peak RSS | peak / pass bound |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");

    // 0. What the committer process holds with nothing to do (runtime, catalog, table metadata).
    let dir = fresh("commit-bench-idle");
    runtime.block_on(async { Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.expect("lake") });
    let (report, commit_s) = commit_process(&dir, pass_mb);
    println!("| idle (nothing staged) | 0 | 0 | 0 | 0 | 0 | {commit_s:.1} | {:.0} MiB | - |", mib(report["peak_rss_bytes"].as_u64().unwrap_or(0)));
    let _ = std::fs::remove_dir_all(&dir);

    // 1. A backlog of >= 2 GB staged: one day, 50 tickers, 5 sources (250 partitions), ~1.4 KB texts.
    let dir = fresh("commit-bench-backlog");
    let (events, bytes, stage_s) = runtime.block_on(async {
        let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.expect("lake");
        // Within one UTC day, so the backlog has exactly 50 x 5 partitions.
        let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let mut generator = EventGenerator::new(17, midnight, 1, 50);
        let mut words = Words(0x9E37_79B9_7F4A_7C15);
        stage(&lake, &dir, 8, |i| event(&mut generator, &mut words, i, 1_100), |_, bytes| bytes >= staged_target).await
    });
    eprintln!("staged {events} events, {:.0} MiB, in {stage_s:.1} s", mib(bytes));
    let (report, commit_s) = commit_process(&dir, pass_mb);
    let r = records(&report);
    assert_eq!(r["rows_committed"].as_u64(), Some(events), "{report}");
    let peak = report["peak_rss_bytes"].as_u64().unwrap_or(0);
    println!(
        "| backlog | {:.0} MiB | {events} | 250 | {} | {} | {commit_s:.1} | {:.0} MiB | {:.1}x of {pass_mb} MiB |",
        mib(bytes),
        r["snapshots"],
        r["data_files"],
        mib(peak),
        mib(peak) / pass_mb as f64
    );
    let _ = std::fs::remove_dir_all(&dir);

    // 2. Fan-out: events over 30 days x 50 tickers x 5 sources (7,500 possible partitions).
    let dir = fresh("commit-bench-fanout");
    let ndjson_path = dir.join("events.ndjson");
    let (events, bytes, partitions) = runtime.block_on(async {
        let ours = dir.join("ours");
        let lake = Lake::open(&LakeConfig::local(ours.to_string_lossy().to_string())).await.expect("lake");
        let mut generator = EventGenerator::new(23, Utc::now() - Duration::minutes(1), 30, 50);
        let mut words = Words(0xD1B5_4A32_D192_ED03);
        let mut ndjson = Vec::new();
        let (events, bytes, _) = stage(
            &lake,
            &ours,
            4,
            |i| {
                let e = event(&mut generator, &mut words, i, 0);
                ndjson.extend_from_slice(format!("{e}\n").as_bytes());
                e
            },
            |events, _| events >= fanout_events,
        )
        .await;
        std::fs::write(&ndjson_path, &ndjson).expect("events file");
        let mut keys = std::collections::HashSet::new();
        for line in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let e: Value = serde_json::from_slice(line).expect("json");
            keys.insert((
                e["event_timestamp"].as_str().unwrap_or_default()[..10].to_string(),
                e["ticker"].to_string(),
                e["source_system"].to_string(),
            ));
        }
        (events, bytes, keys.len())
    });
    assert!(partitions >= 5_000, "{partitions} partitions");
    let (report, commit_s) = commit_process(&dir.join("ours"), pass_mb);
    let r = records(&report);
    let peak = report["peak_rss_bytes"].as_u64().unwrap_or(0);
    println!(
        "| fan-out | {:.1} MiB | {events} | {partitions} | {} | {} | {commit_s:.1} | {:.0} MiB | {:.1}x of {pass_mb} MiB |",
        mib(bytes),
        r["snapshots"],
        r["data_files"],
        mib(peak),
        mib(peak) / pass_mb as f64
    );

    // The peer, on the same events into a table with the same schema and spec.
    let Some(python) = python() else {
        eprintln!("PyIceberg peer skipped: run scripts/setup-python.sh");
        return;
    };
    let peer = dir.join("peer");
    runtime.block_on(async { Lake::open(&LakeConfig::local(peer.to_string_lossy().to_string())).await.expect("peer table") });
    let started = Instant::now();
    let output = Command::new(python)
        .arg(format!("{}/scripts/bench/pyiceberg_append.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&ndjson_path)
        .arg(&peer)
        .arg(LakeConfig::DEFAULT_CATALOG_NAME)
        .arg(format!("{}.{}", LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE))
        .arg("append-only")
        .output()
        .expect("python runs");
    assert!(output.status.success(), "PyIceberg failed: {}", String::from_utf8_lossy(&output.stderr));
    let peer_report: Value = serde_json::from_slice(&output.stdout).expect("peer JSON");
    let peer_peak = peer_report["peak_rss_bytes"].as_u64().unwrap_or(0);
    println!(
        "| fan-out, PyIceberg 0.12 `append` | (same events) | {} | {partitions} | 1 | {} | {:.1} | {:.0} MiB | - |",
        peer_report["events"],
        peer_report["append"]["data_files"],
        started.elapsed().as_secs_f64(),
        mib(peer_peak)
    );
    println!("\nPeak RSS ratio, fan-out: sentiment-lake / PyIceberg = {:.2}", peak as f64 / peer_peak.max(1) as f64);
    let _ = std::fs::remove_dir_all(&dir);
}
