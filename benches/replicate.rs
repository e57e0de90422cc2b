//! Replication benchmark (issue #35), in two parts.
//!
//! Live: the real `sentiment-lake serve` on the seed's default layout, with four Event Hubs partitions
//! posting 200 events/s, commits every 30 s, the maintenance timer every 5 minutes, and its own replication
//! loop (`--replica <dir> --replica-every-secs 10`). A sampler reads the primary's and the replica's
//! catalogs every 250 ms. Reported: for each commit of the records table, how long after it the replica
//! held it (p50, p99, worst); and the recovery point over the run, the age of the oldest commit the replica
//! lacked at each sample (what a region lost at that moment would lose), p50, p99 and worst. At the end the
//! replica, after one more round, holds the primary's rows exactly.
//!
//! Bulk: a history of `REPLICATE_BENCH_ROWS` rows (10M; the query bench's generator, reused when present)
//! replicated from scratch by `replicate` (MB copied per CPU second), then restored from the replica into an
//! empty location by `restore` (wall time), with the restored rows counted.
//!
//! Run: `cargo bench --bench replicate`. Environment: `REPLICATE_BENCH_PART` (`live`, `bulk` or `both`),
//! `REPLICATE_BENCH_MINUTES` (20), `REPLICATE_BENCH_RATE` (200), `REPLICATE_BENCH_COMMIT_SECS` (30),
//! `REPLICATE_BENCH_EVERY_SECS` (10), `REPLICATE_BENCH_MAINTAIN_SECS` (300), `REPLICATE_BENCH_ROWS`
//! (10,000,000). Only loopback addresses are used.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iceberg::{Catalog, TableIdent};
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::replica::replicate::open_place;
use sentiment_lake::replica::ReplicaConfig;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn replica_config(dir: &str) -> ReplicaConfig {
    ReplicaConfig {
        location: dir.to_string(),
        catalog_uri: None,
        catalog_name: LakeConfig::DEFAULT_CATALOG_NAME.into(),
        catalog_auth: Default::default(),
        storage: Default::default(),
        lease: sentiment_lake::replica::replicate::DEFAULT_LEASE,
    }
}

fn records() -> TableIdent {
    TableIdent::from_strs([LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE]).unwrap()
}

/// CPU seconds of the children this process has waited for so far (user + system).
fn children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the file (13 and 14 after the command name).
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    ticks / 100.0
}

fn run_cli(args: &[&str]) -> (f64, f64, serde_json::Value) {
    let cpu = children_cpu_seconds();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake")).args(args).env("RUST_LOG", "warn").output().unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).or_else(|_| serde_json::from_str(stdout.lines().last().unwrap_or_default())).unwrap_or_default();
    (wall, children_cpu_seconds() - cpu, json)
}

fn live() {
    let minutes: u64 = env_or("REPLICATE_BENCH_MINUTES", 20);
    let rate: u64 = env_or("REPLICATE_BENCH_RATE", 200);
    let partitions: usize = 4;
    let commit_secs: u64 = env_or("REPLICATE_BENCH_COMMIT_SECS", 30);
    let every_secs: u64 = env_or("REPLICATE_BENCH_EVERY_SECS", 10);
    let maintain_secs: u64 = env_or("REPLICATE_BENCH_MAINTAIN_SECS", 300);
    let root = format!("{}/target/replicate-bench", env!("CARGO_MANIFEST_DIR"));
    let (primary, replica) = (format!("{root}/primary"), format!("{root}/replica"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&primary).unwrap();
    let port = common::free_port();
    let log = std::fs::File::create(format!("{root}/serve.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .args(["--warehouse", &primary, "serve", "--port", &port.to_string(), "--commit-interval-secs", &commit_secs.to_string()])
        .args(["--replica", &replica, "--replica-every-secs", &every_secs.to_string()])
        .args(["--rate-limit-per-minute", "1000000000", "--rate-limit-burst", "1000000000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the sentiment-lake binary");
    let server = common::Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (first_seen, samples, acknowledged) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/api/health")).send().await.map_or(true, |r| r.status() != 200) {
            assert!(started.elapsed() < Duration::from_secs(60), "serve did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let producers: Vec<_> = (0..partitions)
            .map(|p| tokio::spawn(common::produce(base.clone(), p, rate / partitions as u64, stop.clone(), acknowledged.clone())))
            .collect();
        let maintainer = {
            let (base, stop, http) = (base.clone(), stop.clone(), http.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(maintain_secs));
                tick.tick().await;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let _ = http.post(format!("{base}/MaintainTable")).body(common::fixture("timer.json")).send().await;
                }
            })
        };
        let primary_lake = Lake::open(&LakeConfig::local(primary.clone())).await.unwrap();
        // When the replica first held each snapshot of the records table, and at each sample the primary's
        // commits so far (snapshot id, commit time) with the replica's snapshots then.
        let mut first_seen: HashMap<i64, i64> = HashMap::new();
        let mut samples: Vec<(i64, Vec<(i64, i64)>)> = Vec::new();
        let mut replica_catalog = None;
        let begun = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while begun.elapsed() < Duration::from_secs(minutes * 60) {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            if replica_catalog.is_none() && std::path::Path::new(&format!("{replica}/catalog.db")).exists() {
                replica_catalog = open_place(&replica_config(&replica)).await.ok().map(|(_, catalog)| catalog);
            }
            if let Some(catalog) = &replica_catalog {
                if let Ok(table) = catalog.load_table(&records()).await {
                    for snapshot in table.metadata().snapshots() {
                        first_seen.entry(snapshot.snapshot_id()).or_insert(now);
                    }
                }
            }
            let table = primary_lake.load(TableKind::Records).await.unwrap();
            samples.push((now, table.metadata().snapshots().map(|s| (s.snapshot_id(), s.timestamp_ms())).collect()));
            if begun.elapsed().as_secs().is_multiple_of(60) && begun.elapsed().subsec_millis() < 250 {
                eprintln!("minute {}: {} events acknowledged", begun.elapsed().as_secs() / 60, acknowledged.load(Ordering::Relaxed));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.await.unwrap();
        }
        maintainer.await.unwrap();
        let committed = http.post(format!("{base}/CommitStaged")).body(common::fixture("timer.json")).send().await.unwrap();
        assert_eq!(committed.status(), 200);
        (first_seen, samples, acknowledged.load(Ordering::Relaxed))
    });
    drop(server);

    // Per commit: how long until the replica held it.
    let mut delays: Vec<f64> = Vec::new();
    let mut commits: HashMap<i64, i64> = HashMap::new();
    for (_, snapshots) in &samples {
        commits.extend(snapshots.iter().copied());
    }
    let start = samples.first().map_or(0, |(at, _)| *at);
    for (id, committed) in &commits {
        if *committed < start {
            continue;
        }
        if let Some(seen) = first_seen.get(id) {
            delays.push((seen - committed).max(0) as f64 / 1000.0);
        }
    }
    let unseen = commits.iter().filter(|(id, at)| **at >= start && !first_seen.contains_key(id)).count();
    delays.sort_by(f64::total_cmp);
    // Per sample: the age of the oldest commit the replica did not hold yet.
    let mut rpo: Vec<f64> = samples
        .iter()
        .map(|(at, snapshots)| {
            let oldest_missing = snapshots.iter().filter(|(id, _)| first_seen.get(id).is_none_or(|seen| seen > at)).map(|(_, c)| *c).min();
            oldest_missing.map_or(0.0, |c| (at - c).max(0) as f64 / 1000.0)
        })
        .collect();
    rpo.sort_by(f64::total_cmp);

    // One last round: the replica holds every acknowledged event, once.
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake")).args(["--warehouse", &primary, "replicate", "--to", &replica]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (rows, distinct) = runtime.block_on(async {
        let (_, catalog) = open_place(&replica_config(&replica)).await.unwrap();
        let table = catalog.load_table(&records()).await.unwrap();
        let batches: Vec<arrow_array::RecordBatch> =
            futures::TryStreamExt::try_collect(table.scan().select(["message_id"]).build().unwrap().to_arrow().await.unwrap()).await.unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut rows = 0;
        for batch in &batches {
            let column = arrow_array::cast::AsArray::as_string::<i32>(batch.column(0));
            rows += batch.num_rows();
            ids.extend(column.iter().flatten().map(str::to_string));
        }
        (rows, ids.len())
    });
    println!(
        "replication, live: {minutes} min, {rate} events/s over {partitions} partitions, commits every {commit_secs} s, maintenance every {maintain_secs} s, a replication round every {every_secs} s"
    );
    println!(
        "commit to replica: {} commits, p50 {:.1} s, p99 {:.1} s, worst {:.1} s ({unseen} commits of the last seconds not replicated when the run stopped)",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "recovery point (age of the oldest commit the replica lacked, sampled every 250 ms): p50 {:.1} s, p99 {:.1} s, worst {:.1} s; target: one commit interval + 30 s = {} s",
        percentile(&rpo, 0.5),
        percentile(&rpo, 0.99),
        rpo.last().copied().unwrap_or(f64::NAN),
        commit_secs + 30
    );
    println!("replica after a last round: {rows} rows ({distinct} distinct ids) for {acknowledged} acknowledged events");
    assert_eq!(rows as u64, acknowledged, "the replica holds every acknowledged event");
    assert_eq!(distinct, rows, "none twice");
}

fn bulk() {
    let rows: u64 = env_or("REPLICATE_BENCH_ROWS", 10_000_000);
    let history = std::env::var("QUERY_BENCH_WAREHOUSE").unwrap_or_else(|_| format!("{}/target/query-bench-warehouse", env!("CARGO_MANIFEST_DIR")));
    let root = format!("{}/target/replicate-bench-bulk", env!("CARGO_MANIFEST_DIR"));
    let (replica, restored) = (format!("{root}/replica"), format!("{root}/restored"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let marker = format!("{history}/bench-rows.txt");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(rows.to_string().as_str()) {
        let _ = std::fs::remove_dir_all(&history);
        runtime.block_on(async {
            let lake = Lake::open(&LakeConfig::local(history.clone())).await.unwrap();
            let started = Instant::now();
            common::generate_history(&lake, rows, "2026-11-01T00:00:00Z".parse().unwrap()).await;
            eprintln!("generated {rows} rows in {:.0}s", started.elapsed().as_secs_f64());
        });
        std::fs::write(&marker, rows.to_string()).unwrap();
    }
    let (wall, cpu, report) = run_cli(&["--warehouse", &history, "replicate", "--to", &replica]);
    let bytes: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum();
    let files: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["files_copied"].as_u64().unwrap()).sum();
    let mb = bytes as f64 / (1 << 20) as f64;
    println!(
        "replication, bulk: {rows} rows, {files} files, {mb:.0} MiB copied from scratch in {wall:.1} s wall, {cpu:.1} CPU s: {:.0} MiB/s, {:.0} MiB per CPU second",
        mb / wall,
        mb / cpu
    );
    let (again_wall, _, again) = run_cli(&["--warehouse", &history, "replicate", "--to", &replica]);
    let copied_again: u64 = again["tables"].as_array().unwrap().iter().map(|t| t["files_copied"].as_u64().unwrap()).sum();
    println!("a round with nothing new: {again_wall:.2} s, {copied_again} files copied");
    let (restore_wall, restore_cpu, _) = run_cli(&["--warehouse", &restored, "restore", "--from", &replica]);
    let total_records = |dir: String| {
        runtime.block_on(async move {
            let lake = Lake::open(&LakeConfig::local(dir)).await.unwrap();
            let table = lake.load(TableKind::Records).await.unwrap();
            table.metadata().current_snapshot().and_then(|s| s.summary().additional_properties.get("total-records")?.parse::<u64>().ok()).unwrap_or(0)
        })
    };
    let restored_rows = total_records(restored);
    println!("restore of the replica into an empty location: {restore_wall:.1} s wall, {restore_cpu:.1} CPU s; {restored_rows} rows restored");
    assert_eq!(restored_rows, total_records(history), "the restored table holds the primary's rows");
}

fn main() {
    let part: String = env_or("REPLICATE_BENCH_PART", "both".to_string());
    if part == "live" || part == "both" {
        live();
    }
    if part == "bulk" || part == "both" {
        bulk();
    }
}
