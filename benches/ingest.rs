//! Ingest benchmark: events/s per core of the pipeline core (decode + validate + Arrow + Parquet), of
//! staging (what an invocation does before it acknowledges: the core plus the durable segment write) and of
//! the full path (stage + commit to an Iceberg table), measured in the same run as PyIceberg doing the same
//! work on the same events. Run: `cargo bench --bench ingest` (needs scripts/setup-python.sh for the peer).
//!
//! "Per core" is per CPU-second of the whole process (getrusage, every thread), on both sides: the commit
//! writes data files on several threads, and pyarrow may use more than one.
//!
//! The warehouses live under `$TMPDIR`: `TMPDIR=/dev/shm` puts them on a RAM disk, which takes the file
//! system's own cost out of both sides (docs/benchmarks.md reports both).
//!
//! `INGEST_BENCH_PROFILE=stage|commit` runs only that part, `INGEST_BENCH_PROFILE_ROUNDS` (10) times, for
//! `perf record -e cpu-clock` (see docs/benchmarks.md).
//!
//! The cost of the commit's quality profile (issue #36) is measured last: commits of copies of one staged
//! warehouse with the profile on and off, alternating; `INGEST_BENCH_ONLY=quality` runs only that.

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
/// Full-path runs of each side (each into a fresh warehouse, the two sides alternating); the median by CPU
/// time is reported.
const FULL_ROUNDS: usize = 5;

/// CPU seconds this process has used so far, every thread, user and system.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Wall and CPU seconds of one measured stretch.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall: f64,
    cpu: f64,
}

impl Cost {
    fn of<T>(work: impl FnOnce() -> T) -> (Self, T) {
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let out = work();
        (Self { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu }, out)
    }
}

/// decode + (enrich) + validate + Arrow + Parquet (zstd, to memory), batch by batch, as one core does it.
fn core_pass(pipeline: &Pipeline, batches: &[SourceBatch]) -> (Cost, usize) {
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap())).build();
    Cost::of(|| {
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
        bytes
    })
}

fn split(ndjson: &[u8]) -> Vec<SourceBatch> {
    let all = batch_from_file(ndjson, "bench", None).unwrap();
    all.events.chunks(BATCH).map(|chunk| SourceBatch { source: all.source.clone(), invocation_id: None, events: chunk.to_vec() }).collect()
}

/// The core pass of median CPU time of `ROUNDS` after a warm-up, and the Parquet size.
fn timed(pipeline: &Pipeline, batches: &[SourceBatch]) -> (Cost, usize) {
    core_pass(pipeline, batches);
    let mut passes: Vec<(Cost, usize)> = (0..ROUNDS).map(|_| core_pass(pipeline, batches)).collect();
    passes.sort_by(|a, b| a.0.cpu.total_cmp(&b.0.cpu));
    passes[ROUNDS / 2]
}

/// One full-path run into a fresh warehouse under `dir`: every batch staged as an invocation would
/// (sequentially, as one Event Hubs partition delivers them), then one commit. Returns the two costs, the
/// data files written and their bytes.
async fn full_run(pipeline: &Pipeline, batches: &[SourceBatch], dir: &std::path::Path) -> (Cost, Cost, usize, u64) {
    let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.unwrap();
    let (stage, wall) = (cpu_seconds(), Instant::now());
    for batch in batches {
        pipeline.ingest(&lake, batch).await.unwrap();
    }
    let stage = Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - stage };
    let (commit, wall) = (cpu_seconds(), Instant::now());
    let reports = lake.commit().await.unwrap();
    let commit = Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - commit };
    assert_eq!(reports[0].rows_committed as u64, EVENTS);
    (stage, commit, reports[0].data_files, data_file_bytes(dir))
}

/// Bytes of the Parquet data files under `dir` (staged segments excluded).
fn data_file_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && entry.file_name() != "_staging" {
            total += data_file_bytes(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            total += entry.metadata().unwrap().len();
        }
    }
    total
}

/// `INGEST_BENCH_PROFILE`: only staging, or only commits of copies of one staged warehouse, so a
/// sampling profiler sees one part.
fn profile(part: &str, runtime: &tokio::runtime::Runtime, pipeline: &Pipeline, batches: &[SourceBatch], scratch: &std::path::Path) {
    let rounds: usize = std::env::var("INGEST_BENCH_PROFILE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    runtime.block_on(async {
        let staged = scratch.join("staged");
        let lake = Lake::open(&LakeConfig::local(staged.to_string_lossy().to_string())).await.unwrap();
        for batch in batches {
            pipeline.ingest(&lake, batch).await.unwrap();
        }
        for round in 0..rounds {
            let dir = scratch.join(format!("round-{round}"));
            let copy = Command::new("cp").arg("-a").arg(&staged).arg(&dir).status().unwrap();
            assert!(copy.success());
            let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.unwrap();
            let (cost, ()) = match part {
                "stage" => {
                    let (cpu, wall) = (cpu_seconds(), Instant::now());
                    for batch in batches {
                        // A fresh source per round: the staged warehouse copy already holds this one's ranges.
                        let batch = SourceBatch { source: format!("{}-{round}", batch.source), ..batch.clone() };
                        pipeline.ingest(&lake, &batch).await.unwrap();
                    }
                    (Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu }, ())
                }
                "commit" => {
                    let (cpu, wall) = (cpu_seconds(), Instant::now());
                    let reports = lake.commit().await.unwrap();
                    assert_eq!(reports[0].rows_committed as u64, EVENTS);
                    (Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu }, ())
                }
                other => panic!("INGEST_BENCH_PROFILE={other}: expected stage or commit"),
            };
            eprintln!("{part} round {round}: {:.3} s CPU, {:.3} s wall", cost.cpu, cost.wall);
        }
    });
}

/// Commits with the quality profile on and off, of copies of one staged warehouse, alternating: the
/// median commit cost of each.
fn quality_cost(runtime: &tokio::runtime::Runtime, pipeline: &Pipeline, batches: &[SourceBatch], scratch: &std::path::Path) -> (Cost, Cost, Cost) {
    const QUALITY_ROUNDS: usize = 9;
    runtime.block_on(async {
        let staged = scratch.join("quality-staged");
        let lake = Lake::open(&LakeConfig::local(staged.to_string_lossy().to_string())).await.unwrap();
        for batch in batches {
            pipeline.ingest(&lake, batch).await.unwrap();
        }
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..QUALITY_ROUNDS * 2 {
            let profiled = (round % 2 == 0) == (round / 2 % 2 == 0);
            let dir = scratch.join(format!("quality-{round}"));
            assert!(Command::new("cp").arg("-a").arg(&staged).arg(&dir).status().unwrap().success());
            let config = LakeConfig { profile_quality: profiled, ..LakeConfig::local(dir.to_string_lossy().to_string()) };
            let lake = Lake::open(&config).await.unwrap();
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            let reports = lake.commit().await.unwrap();
            let cost = Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu };
            assert_eq!(reports[0].rows_committed as u64, EVENTS);
            let mut profiles = 0;
            lake.quality_rows(Utc::now() - chrono::Duration::hours(1), |_| profiles += 1).await.unwrap();
            assert_eq!(profiles > 0, profiled);
            if profiled {
                with.push(cost)
            } else {
                without.push(cost)
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let median = |mut costs: Vec<Cost>| {
            costs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
            costs[costs.len() / 2]
        };
        // The append alone: one commit's row (this bench's one source).
        let dir = scratch.join("quality-append");
        assert!(Command::new("cp").arg("-a").arg(&staged).arg(&dir).status().unwrap().success());
        let lake = Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string())).await.unwrap();
        lake.commit().await.unwrap();
        let mut rows = Vec::new();
        lake.quality_rows(Utc::now() - chrono::Duration::hours(1), |row| rows.push(row)).await.unwrap();
        assert_eq!(rows.len(), 1);
        let mut appends = Vec::new();
        for _ in 0..9 {
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            sentiment_lake::lake::commit::append_quality(lake.handle(sentiment_lake::lake::TableKind::Quality), lake.policy(), &rows).await.unwrap();
            appends.push(Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu });
        }
        (median(with), median(without), median(appends))
    })
}

/// The signals' evaluation (which reads the quality table's last eight days for the score drift) on a
/// lake holding eight days of profiles of a 32-partition hub committing every 5 minutes, compacted to a
/// file a day as maintenance leaves it: the median of 5 evaluations.
fn drift_evaluation_cost(runtime: &tokio::runtime::Runtime, scratch: &std::path::Path) -> (Cost, usize) {
    use sentiment_lake::quality::{Distribution, DistributionKey, QualityRow, SourceProfile};
    runtime.block_on(async {
        let lake = Lake::open(&LakeConfig::local(scratch.join("drift").to_string_lossy().to_string())).await.unwrap();
        let now = Utc::now();
        let mut total = 0;
        for day in 0..8i64 {
            let mut rows = Vec::new();
            for commit in 0..288i64 {
                let at = now - chrono::Duration::days(8 - day) + chrono::Duration::minutes(5 * commit);
                for partition in 0..32 {
                    let mut profile = SourceProfile { rows: 70, ..SourceProfile::default() };
                    for (system, model) in [("newswire", "finbert"), ("social", "vader")] {
                        let mut d = Distribution { rows: 35, ..Distribution::default() };
                        d.scores.iter_mut().enumerate().for_each(|(i, n)| *n = (i as u64 * 7 + partition) % 5);
                        let key = DistributionKey { source_system: system.into(), model_name: Some(model.into()), processing_version: "1".into() };
                        profile.distributions.insert(key, d);
                    }
                    rows.push(QualityRow {
                        profiled_at: at,
                        commit_id: format!("c{day}-{commit}"),
                        snapshot_id: None,
                        source: format!("eventhubs://bench/hub/$Default/{partition}"),
                        profile,
                    });
                }
            }
            total += rows.len();
            sentiment_lake::lake::commit::append_quality(lake.handle(sentiment_lake::lake::TableKind::Quality), lake.policy(), &rows).await.unwrap();
        }
        let policy = sentiment_lake::maintain::signals::SignalPolicy::default();
        let mut costs = Vec::new();
        for _ in 0..5 {
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            let signals = sentiment_lake::maintain::signals::signals(&lake, &policy, now).await.unwrap();
            costs.push(Cost { wall: wall.elapsed().as_secs_f64(), cpu: cpu_seconds() - cpu });
            assert_eq!(signals.score_drift.distributions.len(), 2);
        }
        costs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
        (costs[2], total)
    })
}

/// The profile's own work on the commit's rows, alone: the median of 21 rounds over every batch's rows.
fn profiling_cost(pipeline: &Pipeline, batches: &[SourceBatch]) -> Cost {
    let rows: Vec<_> = batches.iter().map(|b| pipeline.validate_batch(b, Utc::now()).records).collect();
    let mut costs: Vec<Cost> = (0..21)
        .map(|_| {
            Cost::of(|| {
                let mut profiles = sentiment_lake::quality::Profiles::default();
                for batch in &rows {
                    profiles.add_records("bench", batch, Some(Utc::now())).unwrap();
                }
                assert_eq!(profiles.total().rows, EVENTS);
            })
            .0
        })
        .collect();
    costs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
    costs[10]
}

fn print_quality_cost((with, without, append): (Cost, Cost, Cost), profiling: Cost) {
    println!();
    println!(
        "quality profile (issue #36): commit {:.3} CPU-s with the profile, {:.3} without ({:+.1} %), wall {:.3} / {:.3} s; medians of 9 alternating commits of {EVENTS} events",
        with.cpu,
        without.cpu,
        (with.cpu / without.cpu - 1.0) * 100.0,
        with.wall,
        without.wall
    );
    println!(
        "profiling the {EVENTS} rows alone: {:.1} ms CPU ({:.2} % of the commit without it), median of 21",
        profiling.cpu * 1e3,
        profiling.cpu / without.cpu * 100.0
    );
    println!(
        "appending its quality row alone: {:.1} ms CPU, {:.1} ms wall ({:.2} % of the commit's CPU), median of 9",
        append.cpu * 1e3,
        append.wall * 1e3,
        append.cpu / without.cpu * 100.0
    );
}

fn print_drift_cost((cost, rows): (Cost, usize)) {
    println!(
        "signals with score drift over 8 days of profiles ({rows} quality rows, one file a day): {:.3} CPU-s, {:.3} s wall per evaluation (median of 5)",
        cost.cpu, cost.wall
    );
}

fn python() -> Option<String> {
    let candidate = std::env::var("SENTIMENT_LAKE_PYTHON").unwrap_or_else(|_| format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR")));
    Command::new(&candidate).args(["-c", "import pyiceberg"]).status().ok()?.success().then_some(candidate)
}

/// PyIceberg appending the same events into a table created by the same code (identical schema and spec)
/// under `dir`: its report, and the bytes of the data files it wrote.
fn peer_run(runtime: &tokio::runtime::Runtime, python: &str, events: &std::path::Path, dir: &std::path::Path) -> (serde_json::Value, u64) {
    runtime.block_on(Lake::open(&LakeConfig::local(dir.to_string_lossy().to_string()))).unwrap();
    let output = Command::new(python)
        .arg(format!("{}/scripts/bench/pyiceberg_append.py", env!("CARGO_MANIFEST_DIR")))
        .arg(events)
        .arg(dir)
        .arg(LakeConfig::DEFAULT_CATALOG_NAME)
        .arg(format!("{}.{}", LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (serde_json::from_slice(&output.stdout).unwrap(), data_file_bytes(dir))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let end = Utc::now();
    // One day, 50 tickers, 4 sources: 200 partitions, the shape the reference measured PyIceberg on.
    let ndjson = EventGenerator::new(42, end, 1, 50).ndjson(0, EVENTS);
    let events_path = scratch.path().join("events.ndjson");
    std::fs::write(&events_path, &ndjson).unwrap();
    let input_mb = ndjson.len() as f64 / 1e6;
    let batches = split(&ndjson);
    let analysed = Pipeline::new(IncompletePolicy::DeadLetter);
    if let Ok(part) = std::env::var("INGEST_BENCH_PROFILE") {
        return profile(&part, &runtime, &analysed, &batches, scratch.path());
    }
    if std::env::var("INGEST_BENCH_ONLY").is_ok_and(|only| only == "quality") {
        print_quality_cost(quality_cost(&runtime, &analysed, &batches, scratch.path()), profiling_cost(&analysed, &batches));
        return print_drift_cost(drift_evaluation_cost(&runtime, scratch.path()));
    }
    // The same events as raw messages, so the enrichment path computes every analysis field.
    let raw_batches = split(&EventGenerator::new(42, end, 1, 50).ndjson_unanalysed(0, EVENTS));
    let enriching = Pipeline::new(IncompletePolicy::Enrich);
    let (core, parquet_bytes) = timed(&analysed, &batches);
    let (core_enrich, _) = timed(&enriching, &raw_batches);

    // Rust and PyIceberg runs alternate, so a slow stretch of this shared machine hits both sides alike;
    // each side's median run (by CPU time) is reported.
    let python = python();
    let mut runs: Vec<(Cost, Cost, usize, u64)> = Vec::new();
    let mut peer_runs: Vec<(serde_json::Value, u64)> = Vec::new();
    for round in 0..FULL_ROUNDS {
        runs.push(runtime.block_on(full_run(&analysed, &batches, &scratch.path().join(format!("rust-warehouse-{round}")))));
        if let Some(python) = &python {
            peer_runs.push(peer_run(&runtime, python, &events_path, &scratch.path().join(format!("pyiceberg-warehouse-{round}"))));
        }
    }
    runs.sort_by(|a, b| (a.0.cpu + a.1.cpu).total_cmp(&(b.0.cpu + b.1.cpu)));
    let (stage, commit, files, file_bytes) = runs[FULL_ROUNDS / 2];
    peer_runs.sort_by(|a, b| a.0["append"]["cpu_s"].as_f64().unwrap().total_cmp(&b.0["append"]["cpu_s"].as_f64().unwrap()));
    let peer = (!peer_runs.is_empty()).then(|| peer_runs.swap_remove(FULL_ROUNDS / 2));

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
        "| core: decode+validate+Arrow+Parquet | sentiment-lake | {:.0} | {:.3} | median of {ROUNDS}, zstd 3 to memory, {:.1} MB Parquet |",
        n / core.cpu,
        core.wall,
        parquet_bytes as f64 / 1e6
    );
    println!(
        "| core + enrichment, raw messages | sentiment-lake | {:.0} | {:.3} | every analysis field computed from the text |",
        n / core_enrich.cpu,
        core_enrich.wall
    );
    println!(
        "| staging: core + durable segment write | sentiment-lake | {:.0} | {:.3} | {} invocations of {BATCH}, one after another |",
        n / stage.cpu,
        stage.wall,
        batches.len()
    );
    println!(
        "| commit | sentiment-lake | {:.0} | {:.3} | {:.3} CPU-s; {files} data files ({:.1} MB), 1 snapshot |",
        n / commit.cpu,
        commit.wall,
        commit.cpu,
        file_bytes as f64 / 1e6
    );
    let full = Cost { wall: stage.wall + commit.wall, cpu: stage.cpu + commit.cpu };
    println!(
        "| full: stage + commit | sentiment-lake | {:.0} | {:.3} | {:.3} CPU-s, median of {FULL_ROUNDS} runs |",
        n / full.cpu,
        full.wall,
        full.cpu
    );
    if let Some((peer, peer_bytes)) = &peer {
        let cpu = |k: &str| peer[k]["cpu_s"].as_f64().unwrap();
        let wall = |k: &str| peer[k]["wall_s"].as_f64().unwrap();
        println!(
            "| core: json.loads+pyarrow+Parquet | PyIceberg/pyarrow | {:.0} | {:.3} | no validation; per CPU-second, in the median append's run |",
            n / cpu("core"),
            wall("core")
        );
        println!(
            "| full: decode + table.append | PyIceberg 0.12 | {:.0} | {:.3} | {} data files ({:.1} MB), 1 snapshot; per CPU-second, median of {FULL_ROUNDS} runs |",
            n / cpu("append"),
            wall("append"),
            peer["append"]["data_files"],
            *peer_bytes as f64 / 1e6
        );
        println!();
        println!("ratio core (Rust / Python, per core): {:.1}x", cpu("core") / core.cpu);
        println!("ratio full (Rust / PyIceberg, per core): {:.1}x", cpu("append") / full.cpu);
    } else {
        println!();
        println!("PyIceberg not installed (run scripts/setup-python.sh): peer figures skipped");
    }
    print_quality_cost(quality_cost(&runtime, &analysed, &batches, scratch.path()), profiling_cost(&analysed, &batches));
    print_drift_cost(drift_evaluation_cost(&runtime, scratch.path()));
}
