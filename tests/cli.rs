//! The binary as a user runs it: `ingest FILE` is idempotent, `doctor` says what is wrong.

mod common;

use std::process::Command;

use common::*;
use sentiment_lake::lake::TableKind;
use sentiment_lake::synthetic::EventGenerator;

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sentiment-lake")).arg("--warehouse").arg(dir).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingesting_the_same_file_twice_adds_nothing() {
    let dir = warehouse();
    let file = dir.path().join("events.ndjson");
    let mut events = EventGenerator::new(3, "2025-03-31T00:00:00Z".parse().unwrap(), 3, 10).ndjson(0, 250);
    events.extend_from_slice(b"{\"message_id\": \"broken\"}\n");
    std::fs::write(&file, events).unwrap();
    let first = run(dir.path(), &["ingest", file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["staged"]["staged_rows"], 250);
    assert_eq!(report["staged"]["dead_lettered"], 1);
    assert_eq!(report["committed"][0]["rows_committed"], 250);
    let second = run(dir.path(), &["ingest", file.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["committed"][0]["rows_committed"], 0);
    assert_eq!(report["committed"][0]["obsolete_deleted"], 1, "the staged copy is covered by the watermark");
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    let lake = open(dir.path()).await;
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 250);
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 1);
}

#[test]
fn doctor_reports_a_healthy_lake_and_explains_a_broken_one() {
    let dir = warehouse();
    let ok = run(dir.path(), &["doctor"]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("[ok]   warehouse"), "{text}");
    assert!(
        text.contains(
            "[ok]   table sentiment.sentiment_records: schema compatible, spec [day(event_timestamp_day), identity(ticker), identity(source_system)]"
        ),
        "{text}"
    );

    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let broken = run(&file, &["doctor"]);
    let text = String::from_utf8_lossy(&broken.stdout);
    assert!(!broken.status.success());
    assert!(text.contains("[FAIL] warehouse") && text.contains("hint:"), "{text}");
}
