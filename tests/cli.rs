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

/// `serve` answers the host at once, even while its catalog cannot be opened (in Azure: a firewall, roles
/// still propagating, a refused sign-in): every function says why with a 503 so the host retries, `doctor`
/// works, and the lake is opened as soon as it can be, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_before_its_catalog_can_be_opened_and_opens_it_when_it_can() {
    use sqlx::Connection;
    let database = format!("sl_start_{}", uuid::Uuid::new_v4().simple());
    let catalog = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let dir = warehouse();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir.path())
        .args(["--catalog-uri", &catalog, "serve", "--port", &port.to_string()])
        .env("RUST_LOG", "error")
        .env_remove("SENTIMENT_LAKE_REDIS_URL")
        .spawn()
        .unwrap();
    let _serve = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client().get(format!("{base}/")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not bind its port");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The database does not exist yet: the host's probe is answered, everything else says why.
    let (status, health) = get(&base, "/api/health").await;
    assert_eq!(status, 503, "{health}");
    assert!(health["error"].as_str().unwrap().contains("does not exist"), "the reason is the catalog's: {health}");
    let batch = host_envelope("0", 1, &events(chrono::Utc::now(), 0, 10).iter().map(|e| e.to_string()).collect::<Vec<_>>(), chrono::Utc::now());
    let (status, reply) = post(&base, "IngestEvents", batch.clone()).await;
    assert_eq!(status, 503, "not acknowledged, so the host delivers the batch again: {reply}");
    let doctor = client().get(format!("{base}/api/doctor")).send().await.unwrap();
    assert_eq!(doctor.status().as_u16(), 503);
    assert!(doctor.text().await.unwrap().contains("[FAIL] catalog"), "doctor runs and says what is wrong");

    // The database appears: the lake opens without a restart and the same batch lands.
    let mut admin = sqlx::postgres::PgConnection::connect(common::postgres::SERVER).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {database}")).execute(&mut admin).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    while get(&base, "/api/health").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the lake was not opened once it could be");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (status, reply) = post(&base, "IngestEvents", batch).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(post(&base, "CommitStaged", fixture("timer.json")).await.0, 200);
    let mut config = config(dir.path());
    config.catalog_uri = Some(catalog);
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 10);
    drop(lake);
    drop(_serve);
    let _ = sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)")).execute(&mut admin).await;
}
