//! Table maintenance on real tables: compaction keeps every row and makes a `replace` snapshot that
//! PyIceberg and DuckDB read; ingestion running beside compaction loses and duplicates nothing; expiry keeps
//! time travel to what it keeps and the ledger; orphan cleanup never touches a referenced or young file; a
//! maintenance process killed with SIGKILL leaves a valid table; the lease keeps runs apart.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use common::*;
use futures::TryStreamExt;
use sentiment_lake::lake::{Lake, TableKind};
use sentiment_lake::maintain::compact::{compact, CompactionPolicy};
use sentiment_lake::maintain::expire::{expire, ExpiryPolicy};
use sentiment_lake::maintain::health::health;
use sentiment_lake::maintain::orphans::{remove_orphans, OrphanPolicy};
use sentiment_lake::maintain::{self, MaintenancePolicy};
use serde_json::Value;

/// Every row of the table as text, sorted: equal multisets of rows give equal vectors.
async fn rows(lake: &Lake) -> Vec<String> {
    let batch = scan(lake, TableKind::Records).await;
    let options = FormatOptions::default();
    let columns: Vec<ArrayFormatter> = batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
    let mut out: Vec<String> = (0..batch.num_rows()).map(|r| columns.iter().map(|c| c.value(r).to_string()).collect::<Vec<_>>().join("|")).collect();
    out.sort();
    out
}

/// `batches` commits of `per_batch` generated events each: a table of many small files.
async fn fragmented(lake: &Lake, batches: u64, per_batch: u64) {
    let end = chrono::Utc::now();
    for b in 0..batches {
        ingest(lake, &events(end, b * per_batch, per_batch)).await;
    }
}

fn policy() -> CompactionPolicy {
    CompactionPolicy { min_input_files: 2, ..CompactionPolicy::default() }
}

fn duckdb_rows(warehouse: &std::path::Path) -> Value {
    let output = Command::new(python_with("duckdb"))
        .arg(format!("{}/tests/interop/duckdb_rows.py", env!("CARGO_MANIFEST_DIR")))
        .arg(warehouse)
        .arg("sentiment_records")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_rewrites_hundreds_of_small_files_into_few_with_the_same_rows() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 12, 60).await;
    let before_rows = rows(&lake).await;
    let before = health(&lake, TableKind::Records, &policy(), chrono::Utc::now()).await.unwrap();
    assert!(before.data_files >= 200, "a fragmented table: {before:?}");
    let watermarks = lake.committed_state(TableKind::Records).await.unwrap().watermarks;

    let report = compact(&lake, TableKind::Records, &policy()).await.unwrap();
    let after = health(&lake, TableKind::Records, &policy(), chrono::Utc::now()).await.unwrap();
    assert!(report.groups_committed > 0 && report.files_rewritten > report.files_written, "{report:?}");
    assert_eq!(after.data_files, before.data_files - report.files_rewritten + report.files_written);
    assert_eq!(after.max_files_per_partition, 1, "every partition is one file now: {after:?}");
    assert_eq!(after.data_files, after.partitions);
    assert_eq!(rows(&lake).await, before_rows, "the same multiset of rows");
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks, watermarks, "the ledger is untouched");

    // Independent readers see the replace snapshot and the same rows.
    let seen = read_with_pyiceberg(dir.path(), "sentiment_records");
    // (Snapshot order in the metadata is not time order: find the replace by what it left.)
    let replace =
        seen["snapshots"].as_array().unwrap().iter().find(|s| s["operation"] == "replace").unwrap_or_else(|| panic!("{}", seen["snapshots"]));
    assert_eq!(replace["props"]["total-data-files"], after.data_files.to_string(), "{replace}");
    assert_eq!(replace["props"]["total-records"], before_rows.len().to_string(), "{replace}");
    assert_eq!(seen["row_count"], before_rows.len());
    assert_eq!(seen["files"].as_array().unwrap().len(), after.data_files);
    let duck = duckdb_rows(dir.path());
    assert_eq!((duck["rows"].as_u64(), duck["distinct_ids"].as_u64()), (Some(before_rows.len() as u64), Some(before_rows.len() as u64)));

    // Nothing left to do: a second run commits nothing.
    let again = compact(&lake, TableKind::Records, &policy()).await.unwrap();
    assert_eq!(again.groups_committed, 0, "{again:?}");
    // Redelivered batches after compaction still add nothing (the ledger survived).
    let end = chrono::Utc::now();
    let redelivered: Vec<Value> = events(end, 0, 60);
    let ndjson: Vec<u8> = redelivered.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let source = watermarks.iter().next().unwrap().0.to_string();
    let batch = sentiment_lake::ingest::SourceBatch {
        source,
        invocation_id: None,
        events: ndjson
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::copy_from_slice(l)))
            .collect(),
    };
    sentiment_lake::ingest::Pipeline::default().ingest(&lake, &batch).await.unwrap();
    assert_eq!(lake.commit().await.unwrap()[0].rows_committed, 0);
}

/// A compaction leaves manifests that hold only the files it replaced; the next commit drops them, so a
/// table compacted every few minutes does not make every later scan read one more manifest per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_of_replaced_files_only_are_dropped_by_the_next_commit() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 6, 40).await;
    let report = compact(&lake, TableKind::Records, &policy()).await.unwrap();
    assert!(report.groups_committed > 0, "{report:?}");
    let dead = |table: iceberg::table::Table| async move {
        let current = table.metadata().current_snapshot().unwrap().clone();
        let list = table.manifest_list_reader(&current).load().await.unwrap();
        list.entries().iter().filter(|m| !m.has_added_files() && !m.has_existing_files()).map(|m| m.added_snapshot_id).collect::<Vec<_>>()
    };
    let compacted = lake.load(TableKind::Records).await.unwrap();
    let replace = compacted.metadata().current_snapshot_id().unwrap();
    assert!(dead(compacted).await.iter().all(|id| *id == replace), "only the replace's own manifests hold nothing live");
    ingest(&lake, &events(chrono::Utc::now(), 10_000, 20)).await;
    assert_eq!(dead(lake.load(TableKind::Records).await.unwrap()).await, Vec::<i64>::new(), "the next commit carries no dead manifest");
    assert_eq!(scan_rows(&lake).await, 6 * 40 + 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_beside_compaction_loses_and_duplicates_nothing() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 6, 60).await;
    let writer = lake.clone();
    let ingesting = tokio::spawn(async move {
        let end = chrono::Utc::now();
        for b in 0..15u64 {
            ingest(&writer, &events(end, 10_000 + b * 40, 40)).await;
        }
    });
    let mut committed = 0;
    let mut conflicts = 0;
    while !ingesting.is_finished() {
        let report = compact(&lake, TableKind::Records, &policy()).await.unwrap();
        committed += report.groups_committed;
        conflicts += report.conflicts;
    }
    ingesting.await.unwrap();
    committed += compact(&lake, TableKind::Records, &policy()).await.unwrap().groups_committed;
    assert!(committed > 0, "compaction ran while ingesting");
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 6 * 60 + 15 * 40, "every row once (conflicts along the way: {conflicts})");
    assert!(counts(&ids).values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_keeps_time_travel_to_kept_snapshots_and_the_ledger() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 5, 40).await;
    let table = lake.load(TableKind::Records).await.unwrap();
    let mut appends: Vec<(i64, i64)> = table.metadata().snapshots().map(|s| (s.timestamp_ms(), s.snapshot_id())).collect();
    appends.sort();
    assert_eq!(appends.len(), 5);
    let watermarks = lake.committed_state(TableKind::Records).await.unwrap().watermarks;

    let report =
        expire(&lake, TableKind::Records, &ExpiryPolicy { max_age: Duration::ZERO, min_snapshots: 2, ..ExpiryPolicy::default() }, chrono::Utc::now())
            .await
            .unwrap();
    assert_eq!(report.expired, 3, "{report:?}");
    assert_eq!(report.files_deleted, 3, "only the expired snapshots' manifest lists: their data is still live: {report:?}");
    let table = lake.load(TableKind::Records).await.unwrap();
    let kept: Vec<i64> = table.metadata().snapshots().map(|s| s.snapshot_id()).collect();
    assert_eq!(kept.len(), 2);
    // Time travel to the older kept snapshot (the fourth append) reads the table as it was then.
    let older = appends[3].1;
    assert!(kept.contains(&older));
    let scan = table.scan().snapshot_id(older).select_all().build().unwrap();
    let at_older: usize = scan.to_arrow().await.unwrap().try_collect::<Vec<_>>().await.unwrap().iter().map(|b| b.num_rows()).sum();
    assert_eq!(at_older, 160);
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks, watermarks, "the ledger is untouched");
    assert_eq!(scan_rows(&lake).await, 200);

    // After compaction, expiring the pre-compaction snapshots removes the small files only they reached.
    compact(&lake, TableKind::Records, &policy()).await.unwrap();
    let files_before = files_under(dir.path(), ".parquet").len();
    let report =
        expire(&lake, TableKind::Records, &ExpiryPolicy { max_age: Duration::ZERO, min_snapshots: 1, ..ExpiryPolicy::default() }, chrono::Utc::now())
            .await
            .unwrap();
    let files_after = files_under(dir.path(), ".parquet").len();
    assert!(files_after < files_before && report.files_deleted > 0, "{files_after} of {files_before}: {report:?}");
    assert_eq!(scan_rows(&lake).await, 200);
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks, watermarks);
    assert_eq!(read_with_pyiceberg(dir.path(), "sentiment_records")["row_count"], 200);
}

/// History is bounded by count as well as age: at a short commit interval, young snapshots beyond the
/// newest `max_snapshots` expire too (the ledger and every live row stay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_bounds_history_by_count_however_young() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 6, 40).await;
    let watermarks = lake.committed_state(TableKind::Records).await.unwrap().watermarks;
    let young = ExpiryPolicy { max_age: Duration::from_secs(24 * 3600), min_snapshots: 1, max_snapshots: 4 };
    let report = expire(&lake, TableKind::Records, &young, chrono::Utc::now()).await.unwrap();
    assert_eq!((report.snapshots_before, report.expired), (6, 2), "{report:?}");
    assert_eq!(lake.load(TableKind::Records).await.unwrap().metadata().snapshots().count(), 4);
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks, watermarks, "the ledger is untouched");
    assert_eq!(scan_rows(&lake).await, 240);
    assert_eq!(read_with_pyiceberg(dir.path(), "sentiment_records")["row_count"], 240);
}

/// A commit deletes the metadata files its metadata log drops (`write.metadata.previous-versions-max`), so
/// a table keeps a bounded number of them at any commit cadence, unless the table says
/// `write.metadata.delete-after-commit.enabled=false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_delete_the_metadata_files_their_log_drops() {
    for delete_after_commit in ["true", "false"] {
        let dir = warehouse();
        let lake = open(dir.path()).await;
        fragmented(&lake, 1, 10).await;
        let table = lake.load(TableKind::Records).await.unwrap();
        let properties = vec![
            ("write.metadata.previous-versions-max".to_string(), "3".to_string()),
            ("write.metadata.delete-after-commit.enabled".to_string(), delete_after_commit.to_string()),
        ];
        lake.commit_change(&table, sentiment_lake::lake::Change { properties, ..Default::default() }).await.unwrap();
        fragmented(&lake, 8, 10).await;
        let metadata = files_under(&dir.path().join("sentiment").join("sentiment_records").join("metadata"), ".metadata.json");
        let table = lake.load(TableKind::Records).await.unwrap();
        assert_eq!(table.metadata().metadata_log().len(), 3);
        if delete_after_commit == "true" {
            assert_eq!(metadata.len(), 4, "the current file and the three its log names: {metadata:?}");
            for logged in table.metadata().metadata_log() {
                assert!(metadata.iter().any(|m| logged.metadata_file.ends_with(m.file_name().unwrap().to_str().unwrap())), "{logged:?}");
            }
        } else {
            assert!(metadata.len() >= 10, "kept when the table says so: {}", metadata.len());
        }
        assert_eq!(read_with_pyiceberg(dir.path(), "sentiment_records")["row_count"], 90);
    }
}

async fn scan_rows(lake: &Lake) -> usize {
    scan(lake, TableKind::Records).await.num_rows()
}

fn age(path: &std::path::Path, by: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_cleanup_never_removes_a_referenced_or_young_file() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 3, 40).await;
    let table_dir = dir.path().join("sentiment").join("sentiment_records");
    let referenced = files_under(&table_dir, "");
    assert!(!referenced.is_empty());
    // Every file looks old, so age alone would condemn them all.
    for path in &referenced {
        age(path, Duration::from_secs(10 * 24 * 3600));
    }
    let old_orphan = table_dir.join("data").join("left-by-a-crashed-commit.parquet");
    let young_orphan = table_dir.join("data").join("being-written-now.parquet");
    std::fs::write(&old_orphan, b"orphan").unwrap();
    std::fs::write(&young_orphan, b"in flight").unwrap();
    age(&old_orphan, Duration::from_secs(4 * 24 * 3600));

    let dry = remove_orphans(&lake, TableKind::Records, &OrphanPolicy::default(), chrono::Utc::now()).await.unwrap();
    assert_eq!((dry.orphans, dry.too_young, dry.deleted), (1, 1, 0), "{dry:?}");
    assert!(old_orphan.exists(), "a dry run deletes nothing");
    let report =
        remove_orphans(&lake, TableKind::Records, &OrphanPolicy { delete: true, ..OrphanPolicy::default() }, chrono::Utc::now()).await.unwrap();
    assert_eq!((report.orphans, report.deleted), (1, 1), "{report:?}");
    assert!(!old_orphan.exists() && young_orphan.exists());
    assert!(referenced.iter().all(|p| p.exists()), "no referenced file was touched");
    assert_eq!(report.referenced, referenced.len());
    assert_eq!(scan_rows(&lake).await, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_process_killed_at_any_point_leaves_a_valid_table() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 8, 60).await;
    let before = rows(&lake).await;
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .arg("--warehouse")
            .arg(dir.path())
            .args(["maintain", "--compact-min-files", "2", "--lease-secs", "1", "--expire-after-hours", "0", "--keep-snapshots", "1"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    for delay_ms in [30u64, 80, 150, 250, 400, 600] {
        let mut child = run();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert_eq!(rows(&lake).await, before, "after a kill at {delay_ms} ms");
        std::thread::sleep(Duration::from_millis(1100)); // the dead run's lease lapses
    }
    let status = run().wait().unwrap();
    assert!(status.success());
    assert_eq!(rows(&lake).await, before);
    let after = health(&lake, TableKind::Records, &policy(), chrono::Utc::now()).await.unwrap();
    assert_eq!(after.max_files_per_partition, 1, "{after:?}");
    assert_eq!(read_with_pyiceberg(dir.path(), "sentiment_records")["row_count"], before.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_never_overlaps_another_and_the_timer_function_runs_one() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    fragmented(&lake, 3, 40).await;
    assert!(lake.try_lease("maintenance/sentiment_records", "someone-else", Duration::from_secs(60)).await.unwrap());
    let report = maintain::run(&lake, &MaintenancePolicy::default()).await.unwrap();
    assert!(!report.ran && report.compaction.is_none(), "the lease is held: {report:?}");
    lake.release_lease("maintenance/sentiment_records", "someone-else").await.unwrap();

    let server = serve(lake.clone()).await;
    let timer = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"MaintainTable"}}}"#;
    let (status, reply) = post(&server.base, "MaintainTable", timer.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ReturnValue"]["ran"], true, "{reply}");
    assert!(reply["ReturnValue"]["compaction"]["files_rewritten"].as_u64().unwrap() > 0, "{reply}");
    let health = get_ok(&server.base, "/api/health/table").await;
    assert_eq!(health["max_files_per_partition"], 1, "{health}");
    assert_eq!(health["records"], 120);
}
