//! Legacy Parquet migration with files written by pyarrow (an independent writer) in the old system's
//! layouts: rows land once with their legacy scores, unreadable files are refused whole, a second run adds
//! nothing, and files are read from blob storage (Azurite) as from disk.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use common::azurite::Azurite;
use common::*;
use object_store::ObjectStoreExt;
use sentiment_lake::lake::TableKind;
use sentiment_lake::storage::{Location, OpenedLocation, StorageSettings};
use serde_json::Value;

/// Writes the legacy files into `dir` and returns what a correct migration finds.
fn write_legacy(dir: &Path) -> Value {
    let output =
        Command::new(python_with("pyarrow")).arg(format!("{}/tests/interop/write_legacy.py", env!("CARGO_MANIFEST_DIR"))).arg(dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Legacy files in a temporary directory, and an Azurite with an empty `legacy` container.
async fn legacy_files_and_azurite() -> (tempfile::TempDir, Azurite) {
    let legacy = tempfile::tempdir().unwrap();
    write_legacy(legacy.path());
    let azurite = Azurite::start();
    azurite.create_container("legacy").await;
    (legacy, azurite)
}

fn migrate(warehouse: &Path, env: &[(&str, &str)], paths: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(warehouse)
        .arg("migrate")
        .args(paths)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("no report: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_layouts_migrate_once_and_unreadable_files_are_refused_whole() {
    let legacy = tempfile::tempdir().unwrap();
    let expected = write_legacy(legacy.path());
    let dir = warehouse();
    let (ok, report) = migrate(dir.path(), &[], &[legacy.path().to_str().unwrap()]);
    assert!(!ok, "two files cannot be migrated: the run says so");
    let failed: Vec<String> = report["failed"].as_array().unwrap().iter().map(|f| f["error"].as_str().unwrap().to_string()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|e| e.contains("not a readable Parquet file")), "{failed:?}");
    let files = report["files"].as_array().unwrap();
    let rows: u64 = files.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    let dead: u64 = files.iter().map(|f| f["dead_lettered"].as_u64().unwrap()).sum();
    assert_eq!((rows, dead), (expected["rows"].as_u64().unwrap() + 1, 1), "{report}");
    assert_eq!(report["committed"][0]["rows_committed"], expected["rows"]);

    let lake = open(dir.path()).await;
    let table = scan(&lake, TableKind::Records).await;
    let ids = sorted(&table, "message_id");
    assert!(counts(&ids).values().all(|&n| n == 1));
    let named: Vec<String> = ids.iter().filter(|id| !id.starts_with("legacy-")).cloned().collect();
    let want: Vec<String> = expected["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(named, want, "every id the files carry, once");
    assert_eq!(ids.len() - named.len(), expected["generated_ids"].as_u64().unwrap() as usize);
    let tickers = counts(&sorted(&table, "ticker"));
    assert_eq!((tickers["AAPL"], tickers["TSLA"], tickers["MSFT"]), (299, 100, 50), "TSLA only from its file name");
    // Legacy scores are kept, with their provenance; files with a label got a score from it.
    let versions: HashSet<Option<String>> = strings(&table, "processing_version").into_iter().collect();
    assert!(versions.contains(&Some(sentiment_lake::migrate::layout::LEGACY_PROCESSING_VERSION.to_string())), "{versions:?}");
    let dead_letters = scan(&lake, TableKind::DeadLetters).await;
    assert_eq!(dead_letters.num_rows(), 1);
    assert!(strings(&dead_letters, "error_message")[0].as_deref().unwrap_or_default().contains("text_content"));

    // Verified against the table, and each file retired: its record is in the migration ledger, not in the
    // watermarks every commit rewrites.
    assert_eq!(report["verification"]["verified"], true, "{report}");
    assert_eq!(report["verification"]["reconciliation"]["dead_lettered"], 1, "the row without text, found in the dead letters");
    assert_eq!(report["retirement"]["retired"].as_array().unwrap().len(), 3, "{report}");
    let seed_file = files.iter().find(|f| f["file"].as_str().unwrap().contains("seed_layout")).unwrap();
    assert_eq!(seed_file["checksums"]["MSFT/2023-01-02"], serde_json::json!({"rows": 50, "scored": 50, "score_sum": 12.5}), "{seed_file}");
    for kind in [TableKind::Records, TableKind::DeadLetters] {
        let watermarks = lake.committed_state(kind).await.unwrap().watermarks;
        assert!(watermarks.iter().all(|(source, _)| !source.starts_with("legacy+")), "{kind:?}: {watermarks:?}");
    }
    let retired = lake.retired_sources().await.unwrap();
    assert_eq!(retired.len(), 3);
    let old_writer = retired.iter().find(|r| r.report.as_ref().unwrap()["file"].as_str().unwrap().contains("old_writer")).unwrap();
    assert_eq!(old_writer.through, 300);
    assert_eq!(old_writer.report.as_ref().unwrap()["dead_lettered"], 1, "{old_writer:?}");

    // Again, as after a crash or a second trigger: nothing twice, nothing read.
    let (_, again) = migrate(dir.path(), &[], &[legacy.path().to_str().unwrap()]);
    assert_eq!(again["committed"][0]["rows_committed"], 0, "{again}");
    for file in again["files"].as_array().unwrap() {
        assert_eq!((file["already_committed"].clone(), file["staged"].clone()), (file["rows"].clone(), Value::from(0)), "not read again: {file}");
        assert_eq!(file["retired"], true, "{file}");
    }
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), ids.len());
    assert_eq!(lake.retired_sources().await.unwrap().len(), 3, "retired once");

    // A duplicate trigger that read the file before it was retired stages its rows after: the committer
    // finds the source retired and drops them.
    let source = &old_writer.source;
    let late: Vec<sentiment_lake::ingest::SourceEvent> = events(chrono::Utc::now(), 0, 20)
        .iter()
        .enumerate()
        .map(|(i, e)| sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::from(e.to_string())))
        .collect();
    let batch = sentiment_lake::ingest::SourceBatch { source: source.clone(), invocation_id: None, events: late };
    sentiment_lake::ingest::Pipeline::default().ingest(&lake, &batch).await.unwrap();
    let committed = lake.commit().await.unwrap();
    assert_eq!(committed[0].rows_committed, 0, "{committed:?}");
    assert_eq!(committed[0].obsolete_deleted, 1, "{committed:?}");
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), ids.len());
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    assert!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.get(source).is_none(), "not brought back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_per_file_and_per_run_are_written_to_the_report_location() {
    let legacy = tempfile::tempdir().unwrap();
    write_legacy(legacy.path());
    let reports = tempfile::tempdir().unwrap();
    let dir = warehouse();
    let file = legacy.path().join("TSLA.parquet");
    let (ok, report) = migrate(dir.path(), &[], &["--report", reports.path().to_str().unwrap(), file.to_str().unwrap()]);
    assert!(ok, "{report}");
    let run_dir = reports.path().join(report["run_id"].as_str().unwrap());
    let run: Value = serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run, report, "the run report on storage is the one printed");
    let per_file: Vec<_> = std::fs::read_dir(run_dir.join("files")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(per_file.len(), 1);
    let file_report: Value = serde_json::from_slice(&std::fs::read(&per_file[0]).unwrap()).unwrap();
    assert_eq!(file_report, report["files"][0]);
    assert!(per_file[0].file_name().unwrap().to_str().unwrap().ends_with("TSLA.parquet.json"), "{per_file:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_files_are_read_from_blob_storage() {
    let (legacy, azurite) = legacy_files_and_azurite().await;
    let settings = StorageSettings {
        azure: sentiment_lake::storage::AzureSettings { connection_string: Some(azurite.connection_string()), ..Default::default() },
        ..Default::default()
    };
    let uploads = OpenedLocation::open(Location::parse(&Azurite::url("legacy", "exports")).unwrap(), &settings).unwrap();
    let content = std::fs::read(legacy.path().join("old_writer.parquet")).unwrap();
    uploads.store.put(&object_store::path::Path::from("old_writer.parquet"), bytes::Bytes::from(content).into()).await.unwrap();

    let dir = warehouse();
    let connection = azurite.connection_string();
    let (ok, report) =
        migrate(dir.path(), &[("AZURE_STORAGE_CONNECTION_STRING", &connection)], &[&Azurite::url("legacy", "exports/old_writer.parquet")]);
    assert!(ok, "{report}");
    assert_eq!(report["files"][0]["rows"], 300);
    assert!(report["files"][0]["source"].as_str().unwrap().starts_with("legacy+sha256:"), "named by content: {report}");
    assert_eq!(report["files"][0]["file"], Azurite::url("legacy", "exports/old_writer.parquet"), "{report}");
    assert!(report["files"][0]["version"].is_string(), "the ETag read: {report}");
    assert_eq!(report["committed"][0]["rows_committed"], 299);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_file_names_the_columns_inference_cannot_decide() {
    let legacy = tempfile::tempdir().unwrap();
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
n = 20
pq.write_table(pa.table({
    "posted_on": pa.array([f"2023-03-0{1 + i % 9} 12:00:00" for i in range(n)]),
    "edited_on": pa.array([f"2023-03-0{1 + i % 9} 13:00:00" for i in range(n)]),
    "msg": pa.array([f"chips demand looks strong {i}" for i in range(n)]),
    "polarity": pa.array([0.4] * n, pa.float32()),
}), sys.argv[1] + "/export-0001.parquet")
"#;
    let written = Command::new(python_with("pyarrow")).args(["-c", script]).arg(legacy.path()).output().unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let dir = warehouse();
    let (ok, report) = migrate(dir.path(), &[], &[legacy.path().to_str().unwrap()]);
    assert!(!ok);
    let error = report["failed"][0]["error"].as_str().unwrap();
    assert!(error.contains("`posted_on`, `edited_on`") && error.contains("name the column in a rule"), "{report}");

    let mapping = legacy.path().join("mapping.json");
    std::fs::write(
        &mapping,
        r#"{"columns": {"event_timestamp": "posted_on", "text_content": "msg", "sentiment_score": "polarity"},
            "defaults": {"ticker": "NVDA", "source_system": "stocktwits"}}"#,
    )
    .unwrap();
    let (ok, report) = migrate(dir.path(), &[], &["--mapping", mapping.to_str().unwrap(), legacy.path().to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(report["committed"][0]["rows_committed"], 20);
    let lake = open(dir.path()).await;
    let table = scan(&lake, TableKind::Records).await;
    assert_eq!(counts(&sorted(&table, "ticker"))["NVDA"], 20);
    assert_eq!(counts(&sorted(&table, "source_system"))["stocktwits"], 20);
}

/// A lake on local disk that reads Azurite with the development key, and a legacy file uploaded to its
/// `legacy` container.
struct Upload {
    lake: sentiment_lake::lake::Lake,
    azurite: Azurite,
    uploads: OpenedLocation,
    /// The upload's URL, as an Event Grid event names it, and its ETag.
    url: String,
    e_tag: Option<String>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn upload_legacy_file(path: &str) -> Upload {
    let (legacy, azurite) = legacy_files_and_azurite().await;
    let dir = warehouse();
    let mut config = config(dir.path());
    config.storage.azure.connection_string = Some(azurite.connection_string());
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let uploads = OpenedLocation::open(Location::parse(&Azurite::url("legacy", "")).unwrap(), &config.storage).unwrap();
    let content = std::fs::read(legacy.path().join("old_writer.parquet")).unwrap();
    let put = uploads.store.put(&object_store::path::Path::from(path), bytes::Bytes::from(content).into()).await.unwrap();
    let url = format!("{}/legacy/{path}", azurite.endpoint);
    Upload { lake, azurite, uploads, url, e_tag: put.e_tag, _dirs: (legacy, dir) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_grid_upload_is_migrated_once_however_often_it_is_delivered() {
    let Upload { lake, azurite, uploads, url, e_tag, _dirs } = upload_legacy_file("2023/old_writer.parquet").await;
    let server = serve(lake.clone()).await;

    // A Data Lake upload announces itself when the file is created, before a byte is written: ignored.
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&url, e_tag.as_deref(), "CreateFile")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"]["ignored"], "Microsoft.Storage.BlobCreated", "{reply}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty(), "nothing staged for a partial upload");

    // Event Grid delivers at least once: the completed upload arrives twice.
    for delivery in 0..2 {
        let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&url, e_tag.as_deref(), "PutBlob")).await;
        assert_eq!(status, 200, "delivery {delivery}: {reply}");
        let file = &reply["ReturnValue"];
        let (staged, dead) = if delivery == 0 { (299, 1) } else { (0, 0) };
        assert_eq!(
            (file["rows"].as_u64(), file["staged"].as_u64(), file["dead_lettered"].as_u64()),
            (Some(300), Some(staged), Some(dead)),
            "{reply}"
        );
        assert_eq!(file["retirement"]["retired"].as_array().map(Vec::len), Some(1), "committed and retired by the route: {reply}");
    }
    lake.commit().await.unwrap();
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 299);
    assert!(counts(&ids).values().all(|&n| n == 1));
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 1);

    // While one delivery migrates a file, another of the same file is refused (Event Grid delivers it
    // again later) instead of reading the file a second time at once.
    let location = sentiment_lake::storage::AzureLocation::from_blob_url(&url).unwrap();
    let lease = sentiment_lake::migrate::lease_name(&location.url());
    assert!(lake.try_lease(&lease, "another-invocation", std::time::Duration::from_secs(60)).await.unwrap());
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&url, e_tag.as_deref(), "PutBlob")).await;
    assert_eq!(status, 500, "busy: the delivery fails so Event Grid retries it: {reply}");
    assert!(reply["Logs"][0].as_str().unwrap().contains("being migrated by another invocation"), "{reply}");
    lake.release_lease(&lease, "another-invocation").await.unwrap();

    // A file that is not Parquet is kept with its reason and acknowledged; a deleted one is nothing to do.
    let broken =
        uploads.store.put(&object_store::path::Path::from("broken.parquet"), bytes::Bytes::from_static(b"not parquet").into()).await.unwrap();
    let broken_url = format!("{}/legacy/broken.parquet", azurite.endpoint);
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&broken_url, broken.e_tag.as_deref(), "PutBlob")).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["ReturnValue"]["reason"].as_str().unwrap().contains("not a readable Parquet file"), "{reply}");
    let quarantined = lake.quarantine().list().await.unwrap();
    assert!(quarantined.iter().any(|(_, r)| r.reason.contains("broken.parquet")), "{quarantined:?}");
    // The lake's own dual-write output, landing in the store the trigger watches: acknowledged, not migrated.
    let dual_written = tempfile::tempdir().unwrap();
    let dual = sentiment_lake::ingest::dual_write::DualWrite::open(dual_written.path().to_str().unwrap(), &StorageSettings::default()).unwrap();
    let live = sentiment_lake::ingest::SourceBatch {
        source: "eventhubs://ns/hub/$Default/0".into(),
        invocation_id: None,
        events: events(chrono::Utc::now(), 0, 5)
            .iter()
            .enumerate()
            .map(|(i, e)| sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::from(e.to_string())))
            .collect(),
    };
    let rows = sentiment_lake::ingest::Pipeline::default().validate_batch(&live, chrono::Utc::now()).records;
    let written = dual.write(&live.source, (1, 5), &rows).await.unwrap();
    let content = std::fs::read(dual_written.path().join(&written[0])).unwrap();
    let put = uploads.store.put(&object_store::path::Path::from("dual/AAPL.parquet"), bytes::Bytes::from(content).into()).await.unwrap();
    let dual_url = format!("{}/legacy/dual/AAPL.parquet", azurite.endpoint);
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&dual_url, put.e_tag.as_deref(), "PutBlob")).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["ReturnValue"]["reason"].as_str().unwrap().contains("dual-write"), "{reply}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty(), "nothing staged");
    assert_eq!(lake.quarantine().list().await.unwrap().len(), 1, "not quarantined: only broken.parquet is");

    let gone = format!("{}/legacy/deleted.parquet", azurite.endpoint);
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&gone, Some("0x1"), "PutBlob")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"]["missing"], "abfss://legacy@devstoreaccount1.dfs.core.windows.net/deleted.parquet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_outside_the_legacy_location_is_refused() {
    let upload = upload_legacy_file("elsewhere/old_writer.parquet").await;
    let lake = upload.lake.clone();
    let allowed = sentiment_lake::storage::AzureLocation::parse(&Azurite::url("legacy", "exports")).unwrap().unwrap();
    let server = serve_state(lake.clone(), |state| state.legacy_location = Some(allowed)).await;
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&upload.url, upload.e_tag.as_deref(), "PutBlob")).await;
    assert_eq!(status, 200, "refused for good, so acknowledged: {reply}");
    assert!(reply["ReturnValue"]["reason"].as_str().unwrap().contains("outside the legacy location"), "{reply}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_file_resumes_after_its_committed_rows() {
    use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
    let legacy = tempfile::tempdir().unwrap();
    write_legacy(legacy.path());
    let dir = warehouse();
    let lake = open(dir.path()).await;
    // What an interrupted run of an earlier version left: the file's first 100 rows committed under the
    // source id it gave files (their location and ETag). The file goes on under that id after an upgrade.
    let folder = OpenedLocation::open(Location::parse(legacy.path().to_str().unwrap()).unwrap(), &StorageSettings::default()).unwrap();
    let meta = folder.head(&object_store::path::Path::from("old_writer.parquet")).await.unwrap();
    let source = sentiment_lake::migrate::located_source_id(&folder.location.url(), &meta);
    let first: Vec<SourceEvent> = events(chrono::Utc::now(), 0, 100)
        .iter()
        .enumerate()
        .map(|(i, e)| SourceEvent::new(i as i64 + 1, bytes::Bytes::from(e.to_string())))
        .collect();
    Pipeline::default().ingest(&lake, &SourceBatch { source: source.clone(), invocation_id: None, events: first }).await.unwrap();
    lake.commit().await.unwrap();

    let (ok, report) = migrate(dir.path(), &[], &[legacy.path().join("old_writer.parquet").to_str().unwrap()]);
    // The 100 rows standing in for the interrupted run's are other events than the file's first rows: the
    // verification finds the file's first 100 ids missing and fails the run, as it should.
    assert!(!ok, "{report}");
    assert_eq!(report["verification"]["verified"], false, "{report}");
    assert_eq!(report["verification"]["reconciliation"]["missing_from_table"], 100, "{report}");
    let file = &report["files"][0];
    assert_eq!(file["source"], source.as_str());
    assert_eq!((file["already_committed"].as_u64(), file["rows"].as_u64(), file["staged"].as_u64()), (Some(100), Some(300), Some(200)), "{file}");
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 300);
    assert!(ids.contains(&"old-100".to_string()) && !ids.contains(&"old-99".to_string()), "rows after the watermark, and only those");
}

fn reconcile(warehouse: &Path, paths: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(warehouse)
        .arg("reconcile")
        .args(paths)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stderr))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_agrees_after_a_migration_and_names_what_differs() {
    let legacy = tempfile::tempdir().unwrap();
    write_legacy(legacy.path());
    let files: Vec<String> = ["TSLA.parquet", "seed_layout.parquet"].iter().map(|f| legacy.path().join(f).display().to_string()).collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let dir = warehouse();
    let (agrees, report) = reconcile(dir.path(), &files);
    assert!(!agrees);
    assert_eq!(report["report"]["missing_from_table"], 150, "{report}");

    let (ok, _) = migrate(dir.path(), &[], &files);
    assert!(ok);
    let (agrees, report) = reconcile(dir.path(), &files);
    assert!(agrees, "{report}");
    assert_eq!(report["report"]["groups_compared"].as_u64().map(|n| n > 0), Some(true));

    // A row the legacy store does not have, on a ticker and day it covers (a dual-write that missed it).
    let lake = open(dir.path()).await;
    let mut extra = events(chrono::Utc::now(), 0, 1).remove(0);
    extra["ticker"] = Value::String("MSFT".into());
    extra["event_timestamp"] = Value::String("2023-01-02T12:00:00Z".into());
    let ndjson = format!("{extra}\n");
    let batch = sentiment_lake::ingest::file::batch_from_file(ndjson.as_bytes(), "extra", Some(chrono::Utc::now())).unwrap();
    sentiment_lake::ingest::Pipeline::default().ingest(&lake, &batch).await.unwrap();
    lake.commit().await.unwrap();
    let (agrees, report) = reconcile(dir.path(), &files);
    assert!(!agrees);
    assert_eq!(report["report"]["extra_in_table"], 1, "{report}");
    assert_eq!(report["report"]["count_differences"]["MSFT/2023-01-02"], serde_json::json!([50, 51]), "{report}");
    assert_eq!(report["report"]["extra_examples"][0], extra["message_id"]);
}

/// The `*.parquet` files below `dir`, relative to it, sorted.
fn parquet_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_write_keeps_the_legacy_store_in_step_and_reconciles_with_the_table() {
    let dir = warehouse();
    let legacy = tempfile::tempdir().unwrap();
    let input = tempfile::tempdir().unwrap();
    let events = events(chrono::Utc::now(), 0, 200);
    let file = input.path().join("batch.ndjson");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let mut written = Vec::new();
    // Delivered twice (a redelivery): the lake drops the second, the legacy store gets the same files again.
    for _ in 0..2 {
        let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .arg("--warehouse")
            .arg(dir.path())
            .arg("--dual-write")
            .arg(legacy.path())
            .arg("ingest")
            .arg(&file)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        written.push(parquet_files(legacy.path()));
    }
    let tickers: HashSet<&str> = events.iter().filter_map(|e| e["ticker"].as_str()).collect();
    assert_eq!(written[0].len(), tickers.len(), "one file per ticker of the batch: {:?}", written[0]);
    assert_eq!(written[0], written[1], "a redelivery rewrites, never adds");
    assert!(written[0].iter().all(|f| f.split('/').count() == 2), "<TICKER>/<file>: {:?}", written[0]);

    let (agrees, report) = reconcile(dir.path(), &[legacy.path().to_str().unwrap()]);
    assert!(agrees, "{report}");
    assert_eq!(report["report"]["dead_lettered"], 0);
    assert!(report["report"]["groups_compared"].as_u64().unwrap() > 0, "{report}");

    // The dual-written files are refused by `migrate` (their rows are in the table), not failed; told to
    // take them, it finds every row in the table by id.
    let folder = legacy.path().to_str().unwrap();
    let (ok, report) = migrate(dir.path(), &[], &[folder]);
    assert!(ok, "refusals are not failures: {report}");
    assert_eq!(report["refused"].as_array().unwrap().len(), written[0].len(), "{report}");
    assert!(report["refused"][0]["reason"].as_str().unwrap().contains("dual-write"), "{report}");
    assert_eq!(rows_committed(&report), 0, "{report}");
    let (ok, report) = migrate(dir.path(), &[], &["--include-dual-write", "--dedup-ids", folder]);
    assert!(ok, "{report}");
    let skipped: u64 = report["files"].as_array().unwrap().iter().map(|f| f["already_in_table"].as_u64().unwrap()).sum();
    assert_eq!((skipped, rows_committed(&report)), (200, 0), "{report}");
    let lake = open(dir.path()).await;
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 200);

    // Migrations are not written back to the legacy store, even with dual-write on.
    let old = tempfile::tempdir().unwrap();
    write_legacy(old.path());
    let (ok, report) =
        migrate(dir.path(), &[("SENTIMENT_LAKE_DUAL_WRITE", legacy.path().to_str().unwrap())], &[old.path().join("TSLA.parquet").to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(parquet_files(legacy.path()), written[0]);
}

/// A lake on local disk that reads Azurite, and Azurite's `legacy` container.
async fn lake_beside(azurite: &Azurite) -> (tempfile::TempDir, sentiment_lake::lake::Lake, OpenedLocation) {
    let dir = warehouse();
    let mut config = config(dir.path());
    config.storage.azure.connection_string = Some(azurite.connection_string());
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let container = OpenedLocation::open(Location::parse(&Azurite::url("legacy", "")).unwrap(), &config.storage).unwrap();
    (dir, lake, container)
}

/// Rows committed by a run, over every commit it made.
fn rows_committed(report: &Value) -> u64 {
    report["committed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["table"] != "sentiment_dead_letter")
        .map(|c| c["rows_committed"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_migrates_once_wherever_it_lies_and_however_its_url_is_spelt() {
    // TSLA.parquet has no ids: migration makes them, so a second migration of the same rows would not even
    // show as duplicated ids. Each step below migrated its 100 rows again before files were named by content.
    let (legacy, azurite) = legacy_files_and_azurite().await;
    let (dir, lake, container) = lake_beside(&azurite).await;
    let content = bytes::Bytes::from(std::fs::read(legacy.path().join("TSLA.parquet")).unwrap());
    let original = object_store::path::Path::from("exports/TSLA.parquet");
    let put = container.store.put(&original, content.clone().into()).await.unwrap();
    let connection = azurite.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", connection.as_str())];

    // The blob trigger: Event Grid names the upload by its blob URL.
    let server = serve(lake.clone()).await;
    let url = format!("{}/legacy/exports/TSLA.parquet", azurite.endpoint);
    let (status, reply) = post(&server.base, "MigrateBlob", eventgrid_invocation(&url, put.e_tag.as_deref(), "PutBlob")).await;
    assert_eq!((status, reply["ReturnValue"]["staged"].as_u64()), (200, Some(100)), "{reply}");

    // A CLI sweep spells the account wasbs://...blob.
    let wasbs = Azurite::url("legacy", "exports").replace("abfss://", "wasbs://").replace(".dfs.", ".blob.");
    let (ok, report) = migrate(dir.path(), &env, &[&wasbs]);
    assert!(ok, "{report}");
    assert_eq!((rows_committed(&report), report["files"][0]["staged"].as_u64()), (0, Some(0)), "{report}");
    assert_eq!(report["files"][0]["retired"], true, "found in the migration ledger by its content: {report}");

    // Re-uploaded (identical bytes, a new ETag) and copied elsewhere in the container: one content, read once.
    let reuploaded = container.store.put(&original, content.clone().into()).await.unwrap();
    assert_ne!(reuploaded.e_tag, put.e_tag, "a re-upload is a new version to the store");
    container.store.copy(&original, &object_store::path::Path::from("copies/2023/TSLA.parquet")).await.unwrap();
    let (ok, report) = migrate(dir.path(), &env, &[&Azurite::url("legacy", "")]);
    assert!(ok, "{report}");
    assert_eq!(rows_committed(&report), 0, "{report}");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{report}");
    assert!(files.iter().all(|f| f["staged"] == 0), "{report}");
    assert_eq!(files[0]["source"], files[1]["source"], "one content, one source: {report}");
    assert!(files.iter().any(|f| f["same_as"].is_string()), "the second copy is named after the first: {report}");

    // Downloaded, then touched and copied on disk.
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("a")).unwrap();
    std::fs::create_dir_all(local.path().join("b")).unwrap();
    std::fs::write(local.path().join("a/TSLA.parquet"), &content).unwrap();
    let (ok, report) = migrate(dir.path(), &env, &[local.path().join("a").to_str().unwrap()]);
    assert!(ok && rows_committed(&report) == 0, "{report}");
    let touched = std::fs::File::options().write(true).open(local.path().join("a/TSLA.parquet")).unwrap();
    touched.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60)).unwrap();
    std::fs::copy(local.path().join("a/TSLA.parquet"), local.path().join("b/TSLA.parquet")).unwrap();
    let (ok, report) = migrate(dir.path(), &env, &[local.path().to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_eq!(rows_committed(&report), 0, "{report}");
    assert!(report["verification"]["verified"] == true, "the table agrees with every copy: {report}");

    let table = scan(&lake, TableKind::Records).await;
    let ids = sorted(&table, "message_id");
    assert_eq!(ids.len(), 100, "the file's 100 rows, once");
    assert!(counts(&ids).values().all(|&n| n == 1));
    assert_eq!(lake.retired_sources().await.unwrap().len(), 1, "one content, one record in the migration ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_while_it_is_read_fails_the_read_instead_of_mixing_versions() {
    use sentiment_lake::migrate::{rules::Rules, LegacyFile, MigrateError, MigrateOptions, Migration};
    let (legacy, azurite) = legacy_files_and_azurite().await;
    let (_dir, lake, container) = lake_beside(&azurite).await;
    let bytes_of = |name: &str| bytes::Bytes::from(std::fs::read(legacy.path().join(name)).unwrap());
    let migration = Migration::new(Rules::default(), MigrateOptions::default());
    let pipeline = sentiment_lake::ingest::Pipeline::default();

    // Blob storage: the read carries If-Match with the listed ETag.
    let path = object_store::path::Path::from("exports/AAPL.parquet");
    container.store.put(&path, bytes_of("old_writer.parquet").into()).await.unwrap();
    let listed = container.head(&path).await.unwrap();
    container.store.put(&path, bytes_of("seed_layout.parquet").into()).await.unwrap();
    let error = migration.file(&lake, &pipeline, container.store.clone(), &container.location.url(), &listed).await.err().unwrap();
    assert!(matches!(error, MigrateError::Changed { .. }) && error.is_retryable(), "{error}");

    // A local file: its size, time and inode are its version. Replaced after its footer was read, the next
    // range read fails.
    let local = tempfile::tempdir().unwrap();
    let folder = OpenedLocation::open(Location::parse(local.path().to_str().unwrap()).unwrap(), &StorageSettings::default()).unwrap();
    let file = local.path().join("AAPL.parquet");
    std::fs::write(&file, bytes_of("old_writer.parquet")).unwrap();
    let listed = folder.head(&object_store::path::Path::from("AAPL.parquet")).await.unwrap();
    let opened =
        LegacyFile::open(folder.store.clone(), &folder.location.url(), &listed, Rules::default().for_file("AAPL.parquet"), false).await.unwrap();
    std::fs::write(&file, bytes_of("seed_layout.parquet")).unwrap();
    let mut stream = opened.opened.stream(0).unwrap();
    use futures::TryStreamExt;
    let read = stream.try_next().await;
    assert!(read.is_err(), "a row group of another version is never decoded: {read:?}");
    let error = migration.file(&lake, &pipeline, folder.store.clone(), &folder.location.url(), &listed).await.err().unwrap();
    assert!(matches!(error, MigrateError::Changed { .. }), "{error}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty(), "nothing of either version staged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_exports_add_no_id_twice_with_dedup_ids() {
    let legacy = tempfile::tempdir().unwrap();
    // Two re-exports of the same feed that overlap by 20 rows (ids 40..59), as pyarrow writes them.
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
from datetime import datetime, timedelta, timezone
start = datetime(2023, 4, 3, 14, 0, tzinfo=timezone.utc)
def export(name, ids):
    pq.write_table(pa.table({
        "message_id": pa.array([f"feed-{i}" for i in ids]),
        "event_timestamp": pa.array([start + timedelta(minutes=i) for i in ids], pa.timestamp("us", tz="UTC")),
        "text_content": pa.array([f"Nvidia supply update {i}" for i in ids]),
        "ticker": pa.array(["NVDA"] * len(ids)),
        "source_system": pa.array(["newsapi"] * len(ids)),
        "sentiment_score": pa.array([0.5] * len(ids), pa.float32()),
    }), sys.argv[1] + "/" + name)
export("export-a.parquet", range(0, 60))
export("export-b.parquet", range(40, 100))
"#;
    let written = Command::new(python_with("pyarrow")).args(["-c", script]).arg(legacy.path()).output().unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let folder = legacy.path().to_str().unwrap();

    // Without the option the overlap lands twice, and the verification says so.
    let plain = warehouse();
    let (ok, report) = migrate(plain.path(), &[], &[folder]);
    assert!(!ok, "{report}");
    assert_eq!(report["verification"]["reconciliation"]["duplicated_in_table"], 20, "{report}");

    let dir = warehouse();
    let (ok, report) = migrate(dir.path(), &[], &["--dedup-ids", folder]);
    assert!(ok, "{report}");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files[0]["already_in_table"], 0, "{report}");
    assert_eq!((files[1]["already_in_table"].as_u64(), files[1]["staged"].as_u64()), (Some(20), Some(40)), "{report}");
    assert_eq!(rows_committed(&report), 100, "{report}");
    let lake = open(dir.path()).await;
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 100);
    assert!(counts(&ids).values().all(|&n| n == 1));

    // The check would miss rows staged but not committed: it refuses to run without committing.
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir.path())
        .args(["migrate", "--dedup-ids", "--no-commit", folder])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

/// Writes the estate of differing exports (tests/interop/write_estate.py) into `dir`; returns what each file
/// must give.
fn write_estate(dir: &Path) -> Value {
    let output =
        Command::new(python_with("pandas")).arg(format!("{}/tests/interop/write_estate.py", env!("CARGO_MANIFEST_DIR"))).arg(dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Per ticker: rows, the first and last event time (RFC 3339, µs) and the sum of the scores.
fn by_ticker(table: &arrow_array::RecordBatch) -> std::collections::BTreeMap<String, (u64, String, String, f64)> {
    use arrow_array::cast::AsArray;
    let times = arrow_cast::cast(
        table.column_by_name("event_timestamp").unwrap(),
        &arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None),
    )
    .unwrap();
    let times = times.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
    let scores = arrow_cast::cast(table.column_by_name("sentiment_score").unwrap(), &arrow_schema::DataType::Float64).unwrap();
    let scores = scores.as_primitive::<arrow_array::types::Float64Type>();
    let mut out = std::collections::BTreeMap::new();
    for (row, ticker) in strings(table, "ticker").into_iter().enumerate() {
        let at = chrono::DateTime::from_timestamp_micros(times.value(row)).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let entry = out.entry(ticker.unwrap()).or_insert((0, at.clone(), at.clone(), 0.0));
        entry.0 += 1;
        entry.1 = entry.1.clone().min(at.clone());
        entry.2 = entry.2.clone().max(at);
        entry.3 += scores.value(row);
    }
    out
}

fn plan_of<'a>(plan: &'a Value, file: &str) -> &'a Value {
    plan["plan"].as_array().unwrap().iter().find(|p| p["file"].as_str().unwrap().ends_with(file)).unwrap_or_else(|| panic!("{file} not planned"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estate_of_unseen_layouts_is_planned_then_migrated_in_one_run_with_one_rule() {
    let estate = tempfile::tempdir().unwrap();
    let expected = write_estate(estate.path());
    let root = estate.path().to_str().unwrap();
    let dir = warehouse();

    // The plan reads footers and samples, commits nothing, and says what a rule must decide.
    let (ok, plan) = migrate(dir.path(), &[], &["--plan", root]);
    assert!(!ok, "a file needs a rule: the plan fails");
    assert_eq!(plan["ready"], false);
    assert_eq!(plan["files"], 6);
    let needs: Vec<&str> = plan["need_a_rule"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(needs.len() == 1 && needs[0].ends_with("two_times.parquet"), "{needs:?}");
    let tie = &plan_of(&plan, "two_times.parquet")["layout"]["ties"][0];
    assert_eq!((tie["field"].as_str(), tie["candidates"].clone()), (Some("event_timestamp"), serde_json::json!(["opened", "closed"])), "{tie}");
    let field = |file: &str, field: &str| plan_of(&plan, file)["layout"]["fields"][field].clone();
    assert_eq!(field("AAPL/ts.parquet", "event_timestamp"), serde_json::json!({"column": "ts", "by": "name_and_content", "read_as": "timestamp"}));
    assert_eq!(field("MSFT/event_time.parquet", "event_timestamp")["by"], "name_and_content");
    assert_eq!(field("NVDA/created_utc.parquet", "event_timestamp")["read_as"], "epoch seconds, ms, µs or ns (by magnitude)");
    assert_eq!(field("news/headlines_TSLA.parquet", "event_timestamp")["read_as"], "date strings (midnight UTC)");
    assert_eq!(
        (field("news/headlines_TSLA.parquet", "text_content")["column"].clone(), field("news/headlines_TSLA.parquet", "ticker")["column"].clone()),
        ("headline".into(), "stock".into())
    );
    assert_eq!(field("AAPL/ts.parquet", "ticker"), serde_json::json!({"value": "AAPL", "by": "path"}));
    assert_eq!(field("AAPL/ts.parquet", "message_id")["by"], "generated");
    let pandas = plan_of(&plan, "pandas/AMD.parquet");
    assert_eq!(pandas["status"], "ready", "{pandas}");
    assert!(pandas["layout"]["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("__index_level_0__")), "{pandas}");
    assert_eq!(
        field("pandas/AMD.parquet", "sentiment_score"),
        serde_json::json!({"column": "vader", "by": "name_and_content", "read_as": "rescaled from [-4, 4] to [-1, 1]"})
    );
    let first = &pandas["sample"][0];
    assert_eq!(first["before"]["posted"], "2021-06-01T10:30:00-04:00", "{first}");
    assert_eq!(first["before"]["vader"], "-3.75");
    assert_eq!(first["after"]["event_timestamp"], "2021-06-01T14:30:00.000000Z", "{first}");
    assert_eq!(first["after"]["sentiment_score"], -0.9375);
    assert_eq!(first["outcome"], "staged");
    let msft = plan_of(&plan, "MSFT/event_time.parquet");
    assert_eq!(msft["dead_letters"]["null_in_footer"]["text_content"], 1, "{msft}");
    assert_eq!(msft["dead_letters"]["estimated"], 1, "{msft}");
    assert_eq!(msft["dead_letters"]["in_sample"].as_object().unwrap().values().map(|r| r["rows"].as_u64().unwrap()).sum::<u64>(), 1, "{msft}");
    let lake = open(dir.path()).await;
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 0, "a plan commits nothing");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty(), "nor stages anything");

    // Without a rule the five files inference decides migrate in one run; the sixth is refused, naming both.
    let (ok, report) = migrate(dir.path(), &[], &[root]);
    assert!(!ok);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(failed[0]["error"].as_str().unwrap().contains("`opened`, `closed`"), "{report}");
    assert_eq!(report["committed"][0]["rows_committed"], 5 * 40 - 1, "{report}");
    for file in report["files"].as_array().unwrap() {
        let name = file["file"].as_str().unwrap();
        let planned = plan["plan"].as_array().unwrap().iter().find(|p| p["file"] == name).unwrap();
        assert_eq!(file["layout"], planned["layout"], "the run follows the plan: {name}");
    }

    // One rules file decides the sixth: it migrates, and nothing else is read twice.
    let rules = estate.path().join("rules.json");
    std::fs::write(&rules, r#"{"rules": [{"match": "two_times.parquet", "columns": {"event_timestamp": "opened"}}]}"#).unwrap();
    let (ok, plan) = migrate(dir.path(), &[], &["--plan", "--rules", rules.to_str().unwrap(), root]);
    assert!(ok, "{plan}");
    assert_eq!(plan_of(&plan, "two_times.parquet")["layout"]["fields"]["event_timestamp"]["by"], "rule");
    assert_eq!(plan_of(&plan, "AAPL/ts.parquet")["status"], "migrated");
    assert_eq!(plan["rows"], 40, "only the sixth file's rows are left");
    let (ok, report) = migrate(dir.path(), &[], &["--rules", rules.to_str().unwrap(), root]);
    assert!(ok, "{report}");
    assert_eq!(report["committed"][0]["rows_committed"], 40);
    assert_eq!(report["verification"]["verified"], true, "{report}");
    let two = report["files"].as_array().unwrap().iter().find(|f| f["file"].as_str().unwrap().ends_with("two_times.parquet")).unwrap();
    assert_eq!(two["rule"], "two_times.parquet");

    let table = scan(&lake, TableKind::Records).await;
    assert_eq!(table.num_rows(), 6 * 40 - 1);
    assert!(counts(&sorted(&table, "message_id")).values().all(|&n| n == 1));
    let found = by_ticker(&table);
    for (file, want) in expected.as_object().unwrap() {
        let ticker = want["ticker"].as_str().unwrap();
        let (rows, first, last, score_sum) = &found[ticker];
        assert_eq!(*rows, want["rows"].as_u64().unwrap() - want["dead"].as_u64().unwrap(), "{file}");
        assert_eq!((first.as_str(), last.as_str()), (want["first"].as_str().unwrap(), want["last"].as_str().unwrap()), "{file}: event times");
        if let Some(sum) = want["score_sum"].as_f64() {
            assert!((score_sum - sum).abs() < 1e-4, "{file}: scores {score_sum} != {sum}");
        }
    }

    // Under another rule later, a migrated file keeps the layout it was migrated with (recorded in the
    // migration ledger): reconciliation still agrees, and the plan says so.
    std::fs::write(&rules, r#"{"rules": [{"match": "two_times.parquet", "columns": {"event_timestamp": "closed"}}]}"#).unwrap();
    let (agrees, reconciled) = reconcile(dir.path(), &["--rules", rules.to_str().unwrap(), root]);
    assert!(agrees, "{reconciled}");
    let (_, plan) = migrate(dir.path(), &[], &["--plan", "--rules", rules.to_str().unwrap(), root]);
    let two = plan_of(&plan, "two_times.parquet");
    assert_eq!((two["status"].as_str(), two["layout"]["fields"]["event_timestamp"]["column"].as_str()), (Some("migrated"), Some("opened")), "{two}");
    assert!(two["layout"]["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("recorded")), "{two}");
}

fn migrate_failing(warehouse: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(warehouse)
        .arg("migrate")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing migrated, no report");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_match_no_file_or_carry_unknown_keys_stop_the_run_before_it_reads() {
    let estate = tempfile::tempdir().unwrap();
    write_estate(estate.path());
    let root = estate.path().to_str().unwrap();
    let dir = warehouse();
    let rules = estate.path().join("rules.json");
    std::fs::write(&rules, r#"{"rules": [{"match": "two_times.parquet", "columns": {"event_timestamp": "opened"}}, {"match": "stocktwits/**", "defaults": {"source_system": "stocktwits"}}]}"#).unwrap();
    let stderr = migrate_failing(dir.path(), &["--rules", rules.to_str().unwrap(), root]);
    assert!(stderr.contains("`stocktwits/**`") && !stderr.contains("`two_times.parquet`"), "{stderr}");
    std::fs::write(&rules, r#"{"rules": [{"match": "*.parquet", "column": {}}]}"#).unwrap();
    assert!(migrate_failing(dir.path(), &["--rules", rules.to_str().unwrap(), root]).contains("unknown field `column`"));
    std::fs::write(&rules, r#"{"rules": [{"match": "*.parquet", "columns": {"event_timestamp": "opened"}}]}"#).unwrap();
    let (ok, report) = migrate(dir.path(), &[], &["--rules", rules.to_str().unwrap(), root]);
    assert!(!ok, "a rule naming a column a matched file lacks fails that file, naming the column");
    assert!(report["failed"].as_array().unwrap().iter().any(|f| f["error"].as_str().unwrap().contains("`opened`")), "{report}");
    let lake = open(dir.path()).await;
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 40, "only the file the rule fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_staged_under_one_rule_is_mapped_by_it_again_under_another() {
    let legacy = tempfile::tempdir().unwrap();
    let script = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq
from datetime import datetime, timedelta, timezone
start = datetime(2022, 5, 2, 9, 0, tzinfo=timezone.utc)
n = 20
pq.write_table(pa.table({
    "opened": pa.array([start + timedelta(minutes=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
    "closed": pa.array([start + timedelta(days=3, minutes=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
    "text": [f"orders look firm again, note {i}" for i in range(n)],
}), sys.argv[1] + "/export.parquet")
"#;
    let written = Command::new(python_with("pyarrow")).args(["-c", script]).arg(legacy.path()).output().unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let root = legacy.path().to_str().unwrap();
    let dir = warehouse();
    let rules = legacy.path().join("rules.json");
    // A first run stages the file under one rule and is interrupted before its commit (its staged
    // segments are lost too): only the recorded layout remains.
    std::fs::write(&rules, r#"{"rules": [{"match": "*.parquet", "columns": {"event_timestamp": "opened"}, "defaults": {"ticker": "NVDA", "source_system": "stocktwits"}}]}"#).unwrap();
    let (ok, report) = migrate(dir.path(), &[], &["--no-commit", "--rules", rules.to_str().unwrap(), root]);
    assert!(ok, "{report}");
    std::fs::remove_dir_all(dir.path().join("_staging")).unwrap();
    // The next run's rule says otherwise; every row is still mapped as the first run mapped it.
    std::fs::write(&rules, r#"{"rules": [{"match": "*.parquet", "columns": {"event_timestamp": "closed"}, "defaults": {"ticker": "AMD"}}]}"#)
        .unwrap();
    let (ok, report) = migrate(dir.path(), &[], &["--rules", rules.to_str().unwrap(), root]);
    assert!(ok, "{report}");
    assert!(report["files"][0]["layout"]["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("now say otherwise")), "{report}");
    let lake = open(dir.path()).await;
    let table = scan(&lake, TableKind::Records).await;
    assert_eq!(table.num_rows(), 20);
    assert_eq!(counts(&sorted(&table, "ticker"))["NVDA"], 20, "the recorded rule's ticker");
    assert_eq!(counts(&sorted(&table, "source_system"))["stocktwits"], 20);
    let (_, first, last, _) = &by_ticker(&table)["NVDA"];
    assert_eq!((first.as_str(), last.as_str()), ("2022-05-02T09:00:00.000000Z", "2022-05-02T09:19:00.000000Z"), "the recorded time column");
}
