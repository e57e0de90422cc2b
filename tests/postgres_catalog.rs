//! The PostgreSQL catalog, the one a deployment's instances share: several committer processes racing on
//! the same table through the machine's real PostgreSQL commit every staged row exactly once. (Its Entra
//! sign-in is tested in tests/entra.rs, its TLS in tests/catalog_tls.rs.)

mod common;

use std::process::{Command, Stdio};

use chrono::Utc;
use common::*;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::{Lake, TableKind};
use serde_json::Value;

/// Stages batches `from..from + batches` (100 events each) of each of `sources` sources.
async fn stage(lake: &Lake, sources: usize, from: u64, batches: u64) -> usize {
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    let mut staged = 0;
    for source in 0..sources {
        for b in 0..batches {
            let first = (from + b) * 100;
            let events = events(Utc::now(), (source as u64) * 1_000_000 + first, 100)
                .into_iter()
                .enumerate()
                .map(|(i, e)| SourceEvent::new(first as i64 + i as i64 + 1, bytes::Bytes::from(e.to_string())))
                .collect();
            let batch = SourceBatch { source: format!("eventhubs://ns/hub/$Default/{source}"), invocation_id: None, events };
            staged += pipeline.ingest(lake, &batch).await.unwrap().staged_rows;
        }
    }
    staged
}

fn committer(dir: &std::path::Path, catalog: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir)
        .args(["--catalog-uri", catalog, "--commit-pass-mb", "1", "commit"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committer_processes_commit_every_row_exactly_once() {
    let dir = warehouse();
    let catalog = common::postgres::fresh_catalog().await;
    let mut config = config(dir.path());
    config.catalog_uri = Some(catalog.clone());
    let lake = Lake::open(&config).await.unwrap();
    let mut staged = stage(&lake, 4, 0, 5).await;

    // Four committers race while more data arrives.
    let children: Vec<_> = (0..4).map(|_| committer(dir.path(), &catalog)).collect();
    staged += stage(&lake, 4, 5, 3).await;
    let mut committed_by_processes = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a committer failed: {}", String::from_utf8_lossy(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        committed_by_processes += report["committed"][0]["rows_committed"].as_u64().unwrap();
    }
    let last = lake.commit().await.unwrap()[0].rows_committed as u64;

    let rows = scan(&lake, TableKind::Records).await;
    let ids = sorted(&rows, "message_id");
    assert!(counts(&ids).values().all(|&n| n == 1), "a row was committed twice");
    assert_eq!(ids.len(), staged, "every staged row is in the table");
    assert_eq!(committed_by_processes + last, staged as u64, "the reports add up to the table: nothing counted twice");
    assert!(committed_by_processes > 0);
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    for source in 0..4 {
        assert_eq!(state.watermarks.get(&format!("eventhubs://ns/hub/$Default/{source}")), Some(800), "{state:?}");
    }
}
