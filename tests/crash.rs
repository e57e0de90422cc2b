//! Crash safety with real processes: the handler binary is SIGKILLed after acknowledging a batch, and the
//! committer is SIGKILLed at many points of a commit. Recovery must lose nothing and duplicate nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sentiment_lake::ingest::{file::batch_from_file, Pipeline};
use sentiment_lake::lake::TableKind;
use sentiment_lake::synthetic::EventGenerator;

fn binary(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"));
    command.arg("--warehouse").arg(dir).args(args).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_ack_and_before_the_commit_loses_nothing() {
    let dir = warehouse();
    let port = free_port();
    let child = binary(dir.path(), &["serve", "--port", &port.to_string(), "--commit-interval-secs", "3600"]).spawn().unwrap();
    let mut server = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    // The port answers at once; the functions once the lake is open.
    while client().get(format!("{base}/api/health")).send().await.map_or(true, |r| r.status() != 200) {
        assert!(Instant::now() < deadline, "handler did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = post(&base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
    assert_eq!(status, 200, "the batch was acknowledged, so Event Hubs will checkpoint it");
    server.0.kill().unwrap();
    server.0.wait().unwrap();

    let lake = open(dir.path()).await;
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 0);
    assert_eq!(lake.pending(TableKind::Records).await.unwrap().len(), 1, "the acknowledged batch is staged durably");
    let status = binary(dir.path(), &["commit"]).status().unwrap();
    assert!(status.success());
    assert_eq!(sorted(&scan(&lake, TableKind::Records).await, "message_id"), vec!["tw-1001", "tw-1002", "tw-1003"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_point_of_a_commit_neither_loses_nor_duplicates() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let end = "2025-03-31T00:00:00Z".parse().unwrap();
    let mut generator = EventGenerator::new(11, end, 2, 5);
    let files = 6;
    let per_file = 400;
    for f in 0..files {
        let batch = batch_from_file(&generator.ndjson(f * per_file, per_file), &format!("part-{f}"), None).unwrap();
        Pipeline::default().ingest(&lake, &batch).await.unwrap();
    }
    let total = (files * per_file) as usize;
    // Kill the committer at spread-out moments: while reading segments, writing data files, committing.
    for delay_ms in [5u64, 30, 80, 150, 300, 600, 1200] {
        let child = binary(dir.path(), &["commit"]).spawn().unwrap();
        let mut child = Killed(child);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.0.kill();
        let _ = child.0.wait();
        let rows = scan(&lake, TableKind::Records).await;
        let ids = sorted(&rows, "message_id");
        assert!(counts(&ids).values().all(|&n| n == 1), "duplicate rows after a kill at {delay_ms} ms");
        let pending = lake.pending(TableKind::Records).await.unwrap().len();
        assert!(ids.len() == total || pending == files as usize, "after a kill at {delay_ms} ms: {} rows, {pending} segments", ids.len());
    }
    lake.commit().await.unwrap();
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), total);
    assert!(counts(&ids).values().all(|&n| n == 1));
    rollups_exact(&lake).await;
}

/// The rollup, however many of its follows a kill cut short, answers as the raw rows do, and follows to
/// the records table's current snapshot.
async fn rollups_exact(lake: &sentiment_lake::lake::Lake) {
    let verified = lake.verify_rollups(None).await.unwrap();
    assert!(verified.mismatches.is_empty(), "{:?}", &verified.mismatches[..verified.mismatches.len().min(3)]);
    let followed = lake.follow_rollups(lake.follow_options()).await.unwrap();
    assert_eq!(followed.behind, None);
    let verified = lake.verify_rollups(None).await.unwrap();
    assert!(verified.mismatches.is_empty() && verified.delta == 0, "{verified:?}");
    assert!(verified.rows_compared > 0);
}

/// xorshift64: the campaign's kill points repeat with its seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_ingest_commit_compaction_and_migration_loses_and_duplicates_nothing() {
    let runs: u64 = std::env::var("CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    let dir = warehouse();
    let inputs = tempfile::tempdir().unwrap();
    let end = "2025-04-30T00:00:00Z".parse().unwrap();
    let mut generator = EventGenerator::new(seed, end, 2, 6);
    let (files, per_file) = (4u64, 1_000u64);
    let ndjson: Vec<String> = (0..files)
        .map(|f| {
            let path = inputs.path().join(format!("events-{f}.ndjson"));
            std::fs::write(&path, generator.ndjson(f * per_file, per_file)).unwrap();
            path.display().to_string()
        })
        .collect();
    let legacy = inputs.path().join("legacy");
    let output = Command::new(python_with("pyarrow"))
        .arg(format!("{}/tests/interop/write_legacy.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // The unreadable files are refused whole (tests/migrate.rs); here every file can be migrated.
    for unreadable in ["corrupt.parquet", "truncated.parquet"] {
        std::fs::remove_file(legacy.join(unreadable)).unwrap();
    }
    let legacy = legacy.display().to_string();
    let compact = ["maintain", "--compact-min-files", "2", "--no-expiry"];

    let mut state = seed.max(1);
    let mut killed = [0u32; 4];
    for _ in 0..runs {
        let which = (next(&mut state) % 4) as usize;
        let args: Vec<&str> = match which {
            0 => vec!["ingest", "--no-commit", &ndjson[(next(&mut state) % files) as usize]],
            1 => vec!["commit"],
            2 => compact.to_vec(),
            _ => vec!["migrate", "--no-verify", &legacy],
        };
        let mut child = Killed(binary(dir.path(), &args).spawn().unwrap());
        // The operations take 50 ms to 2 s here (debug build, small inputs): most kills land in the first
        // 150 ms (opening the lake, staging, the first files of a commit), some later.
        let bound = if next(&mut state).is_multiple_of(3) { 1_500 } else { 150 };
        tokio::time::sleep(Duration::from_millis(next(&mut state) % bound)).await;
        if child.0.try_wait().unwrap().is_none() {
            killed[which] += 1;
        }
        let _ = child.0.kill();
        let _ = child.0.wait();
    }
    // Then everything once more without interruption, as the platform's retries would run it.
    for file in &ndjson {
        assert!(binary(dir.path(), &["ingest", file]).status().unwrap().success());
    }
    assert!(binary(dir.path(), &["migrate", &legacy]).status().unwrap().success());
    assert!(binary(dir.path(), &["commit"]).status().unwrap().success());

    let lake = open(dir.path()).await;
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    let duplicated = counts(&ids).values().filter(|n| **n > 1).count();
    let want = (files * per_file) as usize + expected["rows"].as_u64().unwrap() as usize;
    eprintln!(
        "crash runs: {runs} (seed {seed}), killed mid-run: ingest {}, commit {}, compaction {}, migration {}; rows {} of {want}, duplicated {duplicated}",
        killed[0],
        killed[1],
        killed[2],
        killed[3],
        ids.len()
    );
    assert_eq!(duplicated, 0, "duplicated rows");
    assert_eq!(ids.len(), want, "rows lost");
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 1, "the one legacy row without text, once");
    assert!(killed.iter().sum::<u32>() > 0, "some runs were killed mid-way");
    rollups_exact(&lake).await;
}
