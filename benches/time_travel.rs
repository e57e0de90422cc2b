//! Time-travel benchmark: what `as_of` costs against answering at the current snapshot, on a table with
//! many snapshots, with the embedded engine and no cache (every answer computed). Also the snapshot listing
//! and a rollback. Run: `cargo bench --bench time_travel`. `TIME_TRAVEL_BENCH_ROWS` (default 40,000),
//! `TIME_TRAVEL_BENCH_COMMITS` (default 20), `TIME_TRAVEL_BENCH_ITERATIONS` (default 10).

use std::time::Instant;

use sentiment_lake::app::{query_service, QueryOptions};
use sentiment_lake::engine::AsOf;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::query::{Query, QueryKind};
use sentiment_lake::synthetic::EventGenerator;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn p50(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let rows: u64 = env_or("TIME_TRAVEL_BENCH_ROWS", 40_000);
        let commits: u64 = env_or("TIME_TRAVEL_BENCH_COMMITS", 20);
        let iterations: usize = env_or("TIME_TRAVEL_BENCH_ITERATIONS", 10);
        let dir = tempfile::tempdir().unwrap();
        // The day layout (docs/maintenance.md): with the seed's, every commit of a week's events writes a file
        // per day x ticker x source, and answer times measure small files, not time travel.
        let mut config = LakeConfig::local(dir.path().to_str().unwrap());
        config.layout = sentiment_lake::schema::Layout::Day;
        let lake = Lake::open(&config).await.unwrap();
        let end = chrono::Utc::now();
        let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
        let per_commit = rows / commits;
        let mut generator = EventGenerator::new(5, end, 7, 20);
        let mut snapshots = Vec::new();
        for commit in 0..commits {
            let batch = batch_from_file(&generator.ndjson(commit * per_commit, per_commit), &format!("bench-{commit}"), None).unwrap();
            pipeline.ingest(&lake, &batch).await.unwrap();
            lake.commit().await.unwrap();

            let table = lake.load(TableKind::Records).await.unwrap();
            snapshots.push((table.metadata().current_snapshot_id().unwrap(), chrono::Utc::now()));
        }
        let service = query_service(&lake, &QueryOptions::default()).unwrap();
        let query = Query::parse(QueryKind::TopTickers, Some("days=7&limit=10"), end).unwrap();
        let time = |label: &str, as_of: Option<AsOf>| {
            let service = service.clone();
            let query = query.clone();
            let label = label.to_string();
            async move {
                let mut samples = Vec::with_capacity(iterations);
                for _ in 0..iterations {
                    let started = Instant::now();
                    std::hint::black_box(service.answer_at(&query, as_of).await.unwrap());
                    samples.push(started.elapsed().as_secs_f64() * 1e3);
                }
                (label, p50(samples))
            }
        };
        let (oldest, _) = snapshots[0];
        let (middle, middle_at) = snapshots[snapshots.len() / 2];
        let results = vec![
            time("current snapshot", None).await,
            time(&format!("as_of=<id> of the middle snapshot ({middle})"), Some(AsOf::Snapshot(middle))).await,
            time("as_of=<instant> of the middle snapshot", Some(AsOf::Time(middle_at))).await,
            time(&format!("as_of=<id> of the oldest snapshot ({oldest})"), Some(AsOf::Snapshot(oldest))).await,
        ];
        let mut samples = Vec::new();
        for _ in 0..iterations {
            let started = Instant::now();
            std::hint::black_box(service.history().await.unwrap());
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let history = p50(samples);
        let started = Instant::now();
        let report = lake.rollback(TableKind::Records, middle).await.unwrap().unwrap();
        let rollback = started.elapsed().as_secs_f64() * 1e3;

        println!("time-travel benchmark: {rows} rows in {commits} commits (7 days x 20 tickers, day layout); tickers?days=7&limit=10, uncached, p50 of {iterations}");
        println!();
        println!("| answer at | p50 ms | vs current |");
        println!("|---|---:|---:|");
        let current = results[0].1;
        for (label, ms) in &results {
            println!("| {label} | {ms:.2} | {:.2}x |", ms / current);
        }
        println!();
        println!("| operation | ms |");
        println!("|---|---:|");
        println!("| `/api/sentiment/snapshots` history of {commits} snapshots (p50) | {history:.2} |");
        println!("| rollback over {} snapshots, {} sources reset | {rollback:.1} |", report.rolled_back, report.sources.len());
    });
}
