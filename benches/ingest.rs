//! Ingest benchmark: events/s per core of the pipeline core (decode + validate + Arrow + Parquet) and of
//! the full path (stage + commit to an Iceberg table), measured in the same run as PyIceberg doing the same
//! work on the same events. Run: `cargo bench --bench ingest` (needs scripts/setup-python.sh for the peer).
//!
//! The Rust side runs on a single-threaded runtime, so wall time is CPU time on one core. PyIceberg's CPU
//! seconds are measured with getrusage, because pyarrow may use more than one thread.

use std::process::Command;
use std::time::Instant;

use chrono::Utc;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::{Pipeline, SourceBatch};
use sentiment_lake::lake::{Lake, LakeConfig};
use sentiment_lake::synthetic::EventGenerator;

const EVENTS: u64 = 20_000;
const BATCH: usize = 1_000;
const ROUNDS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// decode + (enrich) + validate + Arrow + Parquet (zstd, to memory), batch by batch, as one core does it.
fn core_pass(pipeline: &Pipeline, batches: &[SourceBatch]) -> (f64, usize) {
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap())).build();
    let started = Instant::now();
    let mut bytes = 0;
    for batch in batches {
        let validated = pipeline.validate_batch(batch, Utc::now());
        assert!(validated.dead_letters.is_empty());
        let mut buffer = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buffer, validated.records.schema(), Some(props.clone())).unwrap();
        writer.write(&validated.records).unwrap();
        writer.close().unwrap();
        bytes += buffer.len();
    }
    (started.elapsed().as_secs_f64(), bytes)
}

fn split(ndjson: &[u8]) -> Vec<SourceBatch> {
    let all = batch_from_file(ndjson, "bench", None).unwrap();
    all.events.chunks(BATCH).map(|chunk| SourceBatch { source: all.source.clone(), invocation_id: None, events: chunk.to_vec() }).collect()
}

/// Median seconds of `ROUNDS` core passes after a warm-up, and the Parquet size.
fn timed(pipeline: &Pipeline, batches: &[SourceBatch]) -> (f64, usize) {
    core_pass(pipeline, batches);
    let passes: Vec<(f64, usize)> = (0..ROUNDS).map(|_| core_pass(pipeline, batches)).collect();
    (median(passes.iter().map(|p| p.0).collect()), passes[0].1)
}

fn python() -> Option<String> {
    let candidate = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    Command::new(&candidate).args(["-c", "import pyiceberg"]).status().ok()?.success().then_some(candidate)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let end = Utc::now();
    // One day, 50 tickers, 4 sources: 200 partitions, the shape the reference measured PyIceberg on.
    let ndjson = EventGenerator::new(42, end, 1, 50).ndjson(0, EVENTS);
    let events_path = scratch.path().join("events.ndjson");
    std::fs::write(&events_path, &ndjson).unwrap();
    let input_mb = ndjson.len() as f64 / 1e6;
    let batches = split(&ndjson);
    // The same events as raw messages, so the enrichment path computes every analysis field.
    let raw_batches = split(&EventGenerator::new(42, end, 1, 50).ndjson_unanalysed(0, EVENTS));
    let analysed = Pipeline::new(IncompletePolicy::DeadLetter);
    let enriching = Pipeline::new(IncompletePolicy::Enrich);
    let (core, parquet_bytes) = timed(&analysed, &batches);
    let (core_enrich, _) = timed(&enriching, &raw_batches);

    // Full path: stage every batch (as invocations would), then one commit.
    let (stage, commit, files) = runtime.block_on(async {
        let dir = scratch.path().join("rust-warehouse");
        let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.unwrap();
        let started = Instant::now();
        for batch in &batches {
            analysed.ingest(&lake, batch).await.unwrap();
        }
        let stage = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let reports = lake.commit().await.unwrap();
        assert_eq!(reports[0].rows_committed as u64, EVENTS);
        (stage, started.elapsed().as_secs_f64(), reports[0].data_files)
    });

    // The peer appends into a table created by the same code (identical schema and spec).
    let peer = python().map(|python| {
        let dir = scratch.path().join("pyiceberg-warehouse");
        runtime.block_on(Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string()))).unwrap();
        let output = Command::new(python)
            .arg(format!("{}/scripts/bench/pyiceberg_append.py", env!("CARGO_MANIFEST_DIR")))
            .arg(&events_path)
            .arg(&dir)
            .arg(LakeConfig::DEFAULT_CATALOG_NAME)
            .arg(format!("{}.{}", LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    });

    let n = EVENTS as f64;
    println!(
        "ingest benchmark: {EVENTS} events, {:.1} MB NDJSON (mean {} B/event), batches of {BATCH}, 1 day x 50 tickers x 4 sources",
        input_mb,
        ndjson.len() as u64 / EVENTS
    );
    println!();
    println!("| path | implementation | events/s per core | wall s | note |");
    println!("|---|---|---:|---:|---|");
    println!(
        "| core: decode+validate+Arrow+Parquet | sentiment-lake | {:.0} | {:.3} | median of {ROUNDS}, {:.1} MB Parquet |",
        n / core,
        core,
        parquet_bytes as f64 / 1e6
    );
    println!(
        "| core + enrichment, raw messages | sentiment-lake | {:.0} | {:.3} | every analysis field computed from the text |",
        n / core_enrich,
        core_enrich
    );
    let full = stage + commit;
    println!(
        "| full: stage + commit | sentiment-lake | {:.0} | {:.3} | stage {:.3}s + commit {:.3}s, {files} data files, 1 snapshot |",
        n / full,
        full,
        stage,
        commit
    );
    if let Some(peer) = &peer {
        let cpu = |k: &str| peer[k]["cpu_s"].as_f64().unwrap();
        let wall = |k: &str| peer[k]["wall_s"].as_f64().unwrap();
        println!(
            "| core: json.loads+pyarrow+Parquet | PyIceberg/pyarrow | {:.0} | {:.3} | no validation; per CPU-second |",
            n / cpu("core"),
            wall("core")
        );
        println!(
            "| full: decode + table.append | PyIceberg 0.12 | {:.0} | {:.3} | {} data files, 1 snapshot; per CPU-second |",
            n / cpu("append"),
            wall("append"),
            peer["append"]["data_files"]
        );
        println!();
        println!("ratio core (Rust / Python, per core): {:.1}x", (n / core) / (n / cpu("core")));
        println!("ratio full (Rust / PyIceberg, per core): {:.1}x", (n / full) / (n / cpu("append")));
    } else {
        println!();
        println!("PyIceberg not installed (run scripts/setup-python.sh): peer figures skipped");
    }
}
