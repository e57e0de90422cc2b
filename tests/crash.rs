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
    while client().get(format!("{base}/")).send().await.is_err() {
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
}
