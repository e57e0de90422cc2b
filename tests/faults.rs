//! Storage and catalog faults injected under the real ingest, commit and compaction code: failing, slow and
//! torn writes, lost replies and broken listings (a fault-injecting `ObjectStore` around every client the
//! lake opens), and a catalog database that is locked or unreachable. Whatever fails is retried the way
//! the platform retries it (Event Hubs redelivers an unacknowledged batch, the timer runs the next commit
//! pass); at the end every generated event is in the table exactly once.
//!
//! Size: `FAULT_RUNS` seeded runs (default 3; `docs/reliability.md` records a full-size run).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sentiment_lake::engine::{EmbeddedEngine, QueryEngine, DEFAULT_MEMORY_LIMIT};
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::{Pipeline, SourceBatch};
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::maintain::compact::{compact, CompactionPolicy};
use sentiment_lake::storage::faults::{Fault, FaultPlan, FaultRule, Op};
use sentiment_lake::storage::StoreLayer;
use sentiment_lake::synthetic::EventGenerator;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn open_faulty(config: &mut LakeConfig, plan: &Arc<FaultPlan>) -> Lake {
    config.storage.layer = Some(StoreLayer::faults(plan.clone()));
    Lake::open(config).await.unwrap()
}

/// Every fault kind on every operation, at rates that make most passes meet several.
fn storm(plan: &FaultPlan) {
    for op in [Op::Put, Op::Get, Op::Head, Op::List, Op::Delete, Op::Move] {
        plan.add(FaultRule::new(op, Fault::Fail, 0.04));
        plan.add(FaultRule::new(op, Fault::LostReply, 0.04));
        plan.add(FaultRule::new(op, Fault::Slow(Duration::from_millis(20)), 0.02));
    }
    plan.add(FaultRule::new(Op::Put, Fault::PartialWrite, 0.03));
}

/// `batches` batches of `per_batch` events over 2 partitions of an Event Hub, as consecutive sequence
/// numbers of each (what redelivery repeats).
fn partition_batches(seed: u64, batches: u64, per_batch: u64) -> Vec<SourceBatch> {
    let end = "2025-06-30T00:00:00Z".parse().unwrap();
    let mut generator = EventGenerator::new(seed, end, 2, 8);
    (0..batches)
        .map(|b| {
            let ndjson = generator.ndjson(b * per_batch, per_batch);
            let mut batch = batch_from_file(&ndjson, &format!("eventhubs://faults/hub/$Default/{}", b % 2), None).unwrap();
            // Sequence numbers continue per partition across its batches, as Event Hubs numbers them.
            let offset = (b / 2) * per_batch;
            for (i, event) in batch.events.iter_mut().enumerate() {
                event.sequence_number = (offset + i as u64) as i64;
            }
            batch
        })
        .collect()
}

/// Stages `batch` until it is acknowledged, as Event Hubs redelivers what was not; returns the attempts.
async fn stage_until_acknowledged(pipeline: &Pipeline, lake: &Lake, batch: &SourceBatch) -> u32 {
    for attempt in 1..=200 {
        if pipeline.ingest(lake, batch).await.is_ok() {
            return attempt;
        }
    }
    panic!("a batch was refused 200 times in a row");
}

fn message_ids(batches: &[SourceBatch]) -> HashSet<String> {
    batches
        .iter()
        .flat_map(|b| &b.events)
        .map(|e| serde_json::from_slice::<serde_json::Value>(&e.body).unwrap()["message_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_faults_during_ingest_commit_and_compaction_lose_and_duplicate_nothing() {
    let runs: u64 = env_or("FAULT_RUNS", 3);
    let (mut faults, mut failed_stages, mut failed_commits, mut failed_compactions) = (0, 0, 0, 0);
    for seed in 1..=runs {
        let dir = warehouse();
        let plan = FaultPlan::new(seed);
        let lake = open_faulty(&mut config(dir.path()), &plan).await;
        let batches = partition_batches(seed, 8, 150);
        let expected = message_ids(&batches);
        storm(&plan);
        let pipeline = Pipeline::default();
        let compaction = CompactionPolicy { min_input_files: 2, ..Default::default() };
        for (i, batch) in batches.iter().enumerate() {
            failed_stages += stage_until_acknowledged(&pipeline, &lake, batch).await - 1;
            // Some batches are redelivered even though they were acknowledged (a lost checkpoint).
            if i % 3 == 0 {
                failed_stages += stage_until_acknowledged(&pipeline, &lake, batch).await - 1;
            }
            if i % 2 == 1 {
                failed_commits += u32::from(lake.commit().await.is_err());
                failed_compactions += u32::from(compact(&lake, TableKind::Records, &compaction).await.is_err());
            }
        }
        faults += plan.injected_total();
        // The storm passes; the next timer passes commit whatever is left.
        plan.heal();
        let mut passes = 0;
        while !lake.pending(TableKind::Records).await.unwrap().is_empty() {
            passes += 1;
            assert!(passes < 10, "seed {seed}: staged data does not drain");
            lake.commit().await.unwrap();
        }
        let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
        let duplicated: Vec<_> = counts(&ids).into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(duplicated.is_empty(), "seed {seed}: duplicated {duplicated:?}");
        let committed: HashSet<String> = ids.into_iter().collect();
        let lost: Vec<_> = expected.difference(&committed).collect();
        assert!(lost.is_empty(), "seed {seed}: lost {} rows, e.g. {:?}", lost.len(), lost.first());
        assert_eq!(committed.len(), expected.len(), "seed {seed}: rows that were never sent");
        // Torn segments that could not be read are set aside, never committed and never silently dropped.
        assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 0, "seed {seed}: valid events dead-lettered");
    }
    eprintln!(
        "fault runs: {runs}, faults injected: {faults}, stage attempts refused: {failed_stages}, commit passes failed: {failed_commits}, compactions failed: {failed_compactions}, rows lost: 0, rows duplicated: 0"
    );
    assert!(faults > 0 && failed_stages > 0 && failed_commits > 0, "the faults reached the code under test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_snapshot_is_known_without_reading_metadata_until_the_table_moves() {
    let dir = warehouse();
    let plan = FaultPlan::new(1);
    let lake = open_faulty(&mut config(dir.path()), &plan).await;
    ingest(&lake, &events(instant("2025-06-30T00:00:00Z"), 0, 50)).await;
    let ident = lake.target(TableKind::Records).ident.clone();
    let engine = EmbeddedEngine::new(lake.catalog(), ident.clone(), DEFAULT_MEMORY_LIMIT).unwrap().with_pointer(lake.metadata_pointer());
    let first = engine.current_snapshot().await.unwrap();

    plan.record();
    for _ in 0..20 {
        assert_eq!(engine.current_snapshot().await.unwrap(), first);
    }
    let reads = plan.recorded();
    assert!(reads.is_empty(), "an unchanged table is not re-read: {reads:?}");

    // A commit by another process is seen by the next lookup, never an older snapshot.
    let other = open(dir.path()).await;
    ingest(&other, &events(instant("2025-06-30T00:00:00Z"), 50, 50)).await;
    let second = engine.current_snapshot().await.unwrap();
    assert_ne!(second.snapshot_id, first.snapshot_id);
    assert_eq!(second.snapshot_id, other.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id());

    // Without the pointer every lookup reads the metadata file (what the pointer saves).
    let plain = EmbeddedEngine::new(lake.catalog(), ident, DEFAULT_MEMORY_LIMIT).unwrap();
    plain.current_snapshot().await.unwrap();
    plan.record();
    plain.current_snapshot().await.unwrap();
    assert!(plan.recorded().iter().any(|(op, path)| *op == Op::Get && path.ends_with(".metadata.json")));
}

/// A loopback TCP relay to a server, which can cut every connection and refuse new ones (the catalog
/// unreachable), then relay again on the same port.
struct Relay {
    port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: u16) -> Self {
        let mut relay = Relay { port: free_port(), target, task: None };
        relay.resume().await;
        relay
    }

    async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Drops the listener and every relayed connection (the JoinSet aborts them).
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_catalog_fails_commits_visibly_and_loses_nothing() {
    let dir = warehouse();
    let catalog = postgres::fresh_catalog().await;
    let mut relay = Relay::start(5432).await;
    let relayed = catalog.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", relay.port), 1);
    let mut config = config(dir.path());
    config.catalog_uri = Some(relayed);
    let lake = Lake::open(&config).await.unwrap();
    let batches = partition_batches(5, 4, 100);
    let pipeline = Pipeline::default();
    stage_until_acknowledged(&pipeline, &lake, &batches[0]).await;
    lake.commit().await.unwrap();

    relay.cut().await;
    let started = Instant::now();
    let staged_while_down: Vec<bool> =
        futures::future::join_all(batches[1..].iter().map(|b| pipeline.ingest(&lake, b))).await.iter().map(Result::is_ok).collect();
    let commit = lake.commit().await;
    let error = commit.expect_err("no catalog, no commit");
    assert!(error.is_retryable(), "an unreachable catalog is worth retrying: {error}");
    assert!(started.elapsed() < Duration::from_secs(120), "the outage is reported, not waited out: {:?}", started.elapsed());

    relay.resume().await;
    for (batch, staged) in batches[1..].iter().zip(&staged_while_down) {
        if !staged {
            stage_until_acknowledged(&pipeline, &lake, batch).await;
        }
    }
    let mut passes = 0;
    loop {
        passes += 1;
        match lake.commit().await {
            Ok(_) if lake.pending(TableKind::Records).await.unwrap().is_empty() => break,
            _ if passes < 20 => tokio::time::sleep(Duration::from_millis(250)).await,
            other => panic!("the catalog is back but commits fail: {other:?}"),
        }
    }
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert!(counts(&ids).values().all(|n| *n == 1), "no duplicates");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), message_ids(&batches), "nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_catalog_database_delays_a_commit_and_loses_nothing() {
    use sqlx::Connection;
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let batches = partition_batches(9, 2, 100);
    let pipeline = Pipeline::default();
    for batch in &batches {
        stage_until_acknowledged(&pipeline, &lake, batch).await;
    }
    // Another process holds the SQLite catalog's write lock (a long migration, a backup).
    let mut holder = sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("catalog.db").display())).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut holder).await.unwrap();
    let locked = tokio::time::timeout(Duration::from_secs(60), lake.commit()).await;
    let outcome = match locked {
        Ok(Ok(_)) => "committed after waiting",
        Ok(Err(e)) => {
            assert!(e.is_retryable(), "a locked database is worth retrying: {e}");
            "refused, retryable"
        }
        Err(_) => panic!("a commit waited over a minute on a locked catalog"),
    };
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    drop(holder);
    while !lake.pending(TableKind::Records).await.unwrap().is_empty() {
        lake.commit().await.unwrap();
    }
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert!(counts(&ids).values().all(|n| *n == 1), "no duplicates ({outcome})");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), message_ids(&batches), "nothing lost ({outcome})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commits_show_in_metrics_and_make_health_degraded_until_one_lands() {
    let dir = warehouse();
    let plan = FaultPlan::new(3);
    let lake = open_faulty(&mut config(dir.path()), &plan).await;
    let server = serve(lake.clone()).await;
    let (status, _) = post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
    assert_eq!(status, 200);
    // Every new metadata file is refused: no commit can land.
    plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("metadata"));
    for _ in 0..3 {
        let (status, _) = post(&server.base, "CommitStaged", fixture("timer.json")).await;
        assert_eq!(status, 500, "a failed pass asks the host to retry");
    }
    let health = client().get(format!("{}/api/health", server.base)).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["commits"]["consecutive"], 3, "{health}");
    assert!(health["commits"]["last_error"].as_str().unwrap().contains("injected fail"), "{health}");
    let metrics = client().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    for name in ["sentiment_lake_commit_failures_total", "sentiment_lake_invocations_failed_total", "sentiment_lake_storage_faults_injected_total"] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    plan.heal();
    let (status, _) = post(&server.base, "CommitStaged", fixture("timer.json")).await;
    assert_eq!(status, 200);
    let health: serde_json::Value = client().get(format!("{}/api/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["commits"]["consecutive"], 0);
    assert_eq!(sorted(&scan(&lake, TableKind::Records).await, "message_id"), vec!["tw-1001", "tw-1002", "tw-1003"]);
}
