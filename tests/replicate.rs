//! Replication (issue #35): the lake's tables copied to a replica in commit order while the primary lives
//! (ingestion, compaction, expiry), a replica that opens in PyIceberg and DuckDB with the primary gone, and
//! `replicate` killed at random points without leaving a replica that points at a missing file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sentiment_lake::lake::{LakeConfig, TableKind, WATERMARKS_PROPERTY};
use sentiment_lake::maintain::compact::{compact, CompactionPolicy};
use sentiment_lake::maintain::expire::{expire, ExpiryPolicy};
use sentiment_lake::replica::replicate::{REPLICA_OF_PROPERTY, SOURCE_METADATA_PROPERTY};
use sentiment_lake::replica::{ReplicaConfig, Replicator, Source};
use serde_json::Value;

fn replica_config(dir: &Path) -> ReplicaConfig {
    ReplicaConfig {
        location: dir.to_string_lossy().to_string(),
        catalog_uri: None,
        catalog_name: LakeConfig::DEFAULT_CATALOG_NAME.into(),
        catalog_auth: Default::default(),
        storage: Default::default(),
        lease: sentiment_lake::replica::replicate::DEFAULT_LEASE,
    }
}

/// Rows per ticker at every snapshot of a table, as PyIceberg reads them.
fn snapshot_counts(warehouse: &Path, table: &str) -> BTreeMap<String, Value> {
    let counts = pyiceberg_script("pyiceberg_snapshot_counts.py", warehouse, table);
    counts.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn duckdb_rows(warehouse: &Path, table: &str) -> Value {
    let output = Command::new(python_with("duckdb"))
        .arg(format!("{}/tests/interop/duckdb_rows.py", env!("CARGO_MANIFEST_DIR")))
        .arg(warehouse)
        .arg(table)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The replica's current metadata of `table`, as its catalog points at it.
async fn replica_metadata(replicator: &Replicator, table: &str) -> iceberg::spec::TableMetadata {
    let ident = iceberg::TableIdent::from_strs([LakeConfig::DEFAULT_NAMESPACE, table]).unwrap();
    replicator.catalog().load_table(&ident).await.unwrap().metadata().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_a_living_primary_and_opens_without_it() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(replica_dir.path())).await.unwrap();

    // The primary lives: 14 commits, compaction twice, expiry once, while rounds run as fast as they can.
    let end = chrono::Utc::now();
    let living = lake.clone();
    let writer = tokio::spawn(async move {
        for b in 0..14u64 {
            ingest(&living, &events(end, b * 50, 50)).await;
            if b == 5 || b == 10 {
                compact(&living, TableKind::Records, &CompactionPolicy { min_input_files: 2, ..CompactionPolicy::default() }).await.unwrap();
            }
            if b == 12 {
                let policy = ExpiryPolicy { max_age: Duration::ZERO, min_snapshots: 4, ..ExpiryPolicy::default() };
                expire(&living, TableKind::Records, &policy, chrono::Utc::now()).await.unwrap();
            }
        }
    });
    let mut rounds = 0;
    let mut versions = 0;
    while !writer.is_finished() {
        let report = replicator.round().await.unwrap();
        versions += report.tables.iter().map(|t| t.versions).sum::<usize>();
        rounds += 1;
    }
    writer.await.unwrap();
    let last = replicator.round().await.unwrap();
    assert!(!last.failed(), "{last:?}");
    assert_eq!(last.lag_seconds(), 0.0, "caught up: {last:?}");
    assert!(rounds >= 2 && versions >= 4, "rounds ran while the primary lived ({rounds} rounds, {versions} versions)");
    let again = replicator.round().await.unwrap();
    assert!(again.tables.iter().all(|t| t.versions == 0 && t.files_copied == 0), "nothing new, nothing copied: {again:?}");

    // The replica is the primary's state: every snapshot, with the same rows per ticker, and the ledger.
    let primary_counts = snapshot_counts(primary_dir.path(), "sentiment_records");
    assert!(primary_counts.len() >= 4, "{primary_counts:?}");
    let replica_records = replica_metadata(&replicator, "sentiment_records").await;
    let primary_records = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(replica_records.current_snapshot_id(), primary_records.metadata().current_snapshot_id());
    assert_eq!(replica_records.uuid(), primary_records.metadata().uuid());
    let property = |m: &iceberg::spec::TableMetadata, key: &str| m.properties().get(key).cloned();
    assert_eq!(property(&replica_records, WATERMARKS_PROPERTY), property(primary_records.metadata(), WATERMARKS_PROPERTY));
    assert!(property(&replica_records, WATERMARKS_PROPERTY).is_some());
    assert_eq!(property(&replica_records, SOURCE_METADATA_PROPERTY).as_deref(), primary_records.metadata_location());
    assert!(property(&replica_records, REPLICA_OF_PROPERTY).is_some());
    for table in ["sentiment_dead_letter", "migration_ledger", "sentiment_records_rollup"] {
        let ident = iceberg::TableIdent::from_strs([LakeConfig::DEFAULT_NAMESPACE, table]).unwrap();
        let primary = lake.catalog().load_table(&ident).await.unwrap();
        let replica = replica_metadata(&replicator, table).await;
        assert_eq!(replica.current_snapshot_id(), primary.metadata().current_snapshot_id(), "{table}");
    }
    let rollup_rows = scan(&lake, TableKind::Rollup).await.num_rows();
    assert!(rollup_rows > 0);

    // With the primary gone, PyIceberg reads every snapshot of the replica and DuckDB its rows: no path
    // inside the replica points back at the primary.
    let primary_rows = duckdb_rows(primary_dir.path(), "sentiment_records");
    let moved_away = primary_dir.path().with_extension("gone");
    std::fs::rename(primary_dir.path(), &moved_away).unwrap();
    let replica_counts = snapshot_counts(replica_dir.path(), "sentiment_records");
    let replica_rows = duckdb_rows(replica_dir.path(), "sentiment_records");
    std::fs::rename(&moved_away, primary_dir.path()).unwrap();
    assert_eq!(replica_counts, primary_counts, "the replica's rows per ticker at every snapshot are the primary's");
    assert_eq!(replica_rows, primary_rows);
    assert_eq!(replica_rows["rows"], 14 * 50);
    assert_eq!(replica_rows["rows"], replica_rows["distinct_ids"]);
    let rollup = read_with_pyiceberg(replica_dir.path(), "sentiment_records_rollup");
    assert_eq!(rollup["row_count"], rollup_rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_never_the_primary_nor_another_tables_copy() {
    let primary_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let inside = primary_dir.path().join("replica");
    let refused = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(&inside)).await.unwrap_err();
    assert!(refused.to_string().contains("overlaps the primary warehouse"), "{refused}");

    // A location holding tables of its own (another lake) is not taken over.
    let other_dir = warehouse();
    let other = open(other_dir.path()).await;
    ingest(&other, &events(chrono::Utc::now(), 0, 10)).await;
    ingest(&lake, &events(chrono::Utc::now(), 0, 10)).await;
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(other_dir.path())).await.unwrap();
    let report = replicator.round().await.unwrap();
    assert!(report.tables.iter().all(|t| t.error.is_some()), "{report:?}");
    let ledger = &report.tables[2];
    assert!(ledger.error.as_deref().is_some_and(|e| e.contains("not a replica")), "{report:?}");
    assert_eq!(scan(&other, TableKind::Records).await.num_rows(), 10, "the other lake's table is untouched");
}

/// Every file a metadata file of the replica's records table points at (its manifest lists, their
/// manifests, their data files) is in the replica: read with PyIceberg at every snapshot.
fn replica_counts_if_registered(replica: &Path) -> Option<BTreeMap<String, Value>> {
    if !replica.join("catalog.db").exists() {
        return None;
    }
    let output = Command::new(python_with("pyiceberg"))
        .arg(format!("{}/tests/interop/pyiceberg_snapshot_counts.py", env!("CARGO_MANIFEST_DIR")))
        .arg(replica)
        .arg(LakeConfig::DEFAULT_CATALOG_NAME)
        .arg("sentiment.sentiment_records")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && (stderr.contains("NoSuchTableError") || stderr.contains("no such table")) {
        return None;
    }
    assert!(output.status.success(), "the replica does not open after a kill: {stderr}");
    let counts: Value = serde_json::from_slice(&output.stdout).unwrap();
    Some(counts.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Each data file of a replica with when and where (inode) it was written: a file copied again gets a new
/// inode (object stores write a temporary file and rename it into place).
fn written(root: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    files_under(root, ".parquet")
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), (meta.ino(), meta.modified().unwrap()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_killed_at_random_points_leaves_a_whole_replica_and_copies_nothing_twice() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let end = chrono::Utc::now();
    for b in 0..12u64 {
        ingest(&lake, &events(end, b * 100, 100)).await;
    }
    let replicate = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"));
        command.arg("--warehouse").arg(primary_dir.path()).arg("replicate").arg("--to").arg(replica_dir.path());
        // A run that is killed keeps its lease: short here, so the next run need not wait two minutes.
        command.env("RUST_LOG", "warn").env("SENTIMENT_LAKE_REPLICA_LEASE_SECS", "1");
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command
    };
    // How long a whole run takes here, measured on a scratch replica, bounds the kill times.
    let scratch = warehouse();
    let started = std::time::Instant::now();
    let whole = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(primary_dir.path())
        .args(["replicate", "--to"])
        .arg(scratch.path())
        .output()
        .unwrap();
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let full = started.elapsed();

    let mut seed = 0x5eed_u64;
    let mut kills = 0;
    let mut seen = BTreeMap::new();
    for round in 0..8u64 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = full.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64);
        let mut child = replicate().spawn().unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let _ = child.wait();
        // Whatever the replica's catalog points at now opens, and each of its snapshots equals the primary's.
        let primary_counts = snapshot_counts(primary_dir.path(), "sentiment_records");
        if let Some(counts) = replica_counts_if_registered(replica_dir.path()) {
            for (snapshot, rows) in &counts {
                assert_eq!(Some(rows), primary_counts.get(snapshot), "snapshot {snapshot} after a kill at {at:?}");
            }
        }
        for (file, identity) in written(replica_dir.path()) {
            assert_eq!(*seen.entry(file.clone()).or_insert(identity), identity, "{file} was written twice");
        }
        // The primary lives on between runs: new versions to resume into.
        ingest(&lake, &events(end, 1_200 + round * 50, 50)).await;
    }
    assert!(kills > 0, "some runs were killed mid-way");
    let output = replicate().output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(replica_counts_if_registered(replica_dir.path()).unwrap(), snapshot_counts(primary_dir.path(), "sentiment_records"));
    for (file, identity) in written(replica_dir.path()) {
        assert_eq!(*seen.entry(file.clone()).or_insert(identity), identity, "{file} was written twice");
    }
    // Every table is at the primary's current snapshot.
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(replica_dir.path())).await.unwrap();
    for table in ["sentiment_records", "sentiment_dead_letter", "migration_ledger", "sentiment_records_rollup"] {
        let ident = iceberg::TableIdent::from_strs([LakeConfig::DEFAULT_NAMESPACE, table]).unwrap();
        let primary = lake.catalog().load_table(&ident).await.unwrap();
        assert_eq!(replica_metadata(&replicator, table).await.current_snapshot_id(), primary.metadata().current_snapshot_id(), "{table}");
    }
    let again = replicate().output().unwrap();
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&again.stdout).lines().last().unwrap()).unwrap();
    assert!(report["tables"].as_array().unwrap().iter().all(|t| t["files_copied"] == 0 && t["versions"] == 0), "{report}");
}

/// Events `first..first+count` of partition `partition`, with their sequence numbers (`first + 1`...),
/// through the real pipeline into `lake`'s staging.
async fn deliver(lake: &sentiment_lake::lake::Lake, partition: u64, first: u64, count: u64, end: chrono::DateTime<chrono::Utc>) {
    let batch = sentiment_lake::ingest::SourceBatch {
        source: format!("eventhubs://ns.servicebus.windows.net/events/$Default/{partition}"),
        invocation_id: None,
        // One event per generator, so that an event is the same whichever batch delivers it.
        events: (first..first + count)
            .map(|i| {
                let event = events(end, partition * 100_000 + i, 1).remove(0);
                sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::from(event.to_string()))
            })
            .collect(),
    };
    sentiment_lake::ingest::Pipeline::default().ingest(lake, &batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_replica_drops_what_it_holds_and_lands_what_it_lacks_exactly_once() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let end = chrono::Utc::now();
    deliver(&lake, 0, 0, 150, end).await;
    deliver(&lake, 1, 0, 100, end).await;
    lake.commit().await.unwrap();
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(replica_dir.path())).await.unwrap();
    assert!(!replicator.round().await.unwrap().failed());
    // The primary commits more, then its region is lost before the next round.
    deliver(&lake, 0, 150, 150, end).await;
    deliver(&lake, 1, 100, 100, end).await;
    lake.commit().await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 500);

    let promoted = open(replica_dir.path()).await;
    let report = sentiment_lake::replica::promote(&promoted).await.unwrap();
    assert!(report.tables.iter().all(|t| !t.already), "{report:?}");
    let positions: BTreeMap<String, i64> =
        report.sources.iter().map(|s| (s.event_hubs.as_ref().unwrap().partition.clone(), s.sequence_number)).collect();
    assert_eq!(positions, BTreeMap::from([("0".to_string(), 150), ("1".to_string(), 100)]), "where each partition's checkpoint is rewound to");
    assert!(sentiment_lake::replica::promote(&promoted).await.unwrap().tables.iter().all(|t| t.already), "promoting again changes nothing");
    // The old primary never writes over a promoted replica.
    let refused = replicator.round().await.unwrap();
    assert!(refused.tables.iter().all(|t| t.error.is_some()), "{refused:?}");
    assert!(refused.tables[2].error.as_deref().is_some_and(|e| e.contains("promoted")), "{refused:?}");

    // Event Hubs redelivers from the rewound checkpoints, and (at least once) some events from before them.
    deliver(&promoted, 0, 100, 200, end).await;
    deliver(&promoted, 1, 0, 200, end).await;
    promoted.commit().await.unwrap();
    let ids = |batch: &arrow_array::RecordBatch| sorted(batch, "message_id");
    let landed = ids(&scan(&promoted, TableKind::Records).await);
    assert_eq!(landed.len(), 500, "each event once");
    assert_eq!(landed, ids(&scan(&lake, TableKind::Records).await), "the events the old primary held, no more, no fewer");
    // New events land after promotion.
    deliver(&promoted, 0, 300, 10, end).await;
    promoted.commit().await.unwrap();
    assert_eq!(scan(&promoted, TableKind::Records).await.num_rows(), 510);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_snapshot_outlives_expiry_and_restores_from_the_replica() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let restored_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let end = chrono::Utc::now();
    deliver(&lake, 0, 0, 100, end).await;
    lake.commit().await.unwrap();
    deliver(&lake, 0, 100, 100, end).await;
    lake.commit().await.unwrap();
    let month_end = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    let tag = lake.create_tag(TableKind::Records, "month-end", month_end).await.unwrap();
    assert_eq!(tag.snapshot_id, month_end);
    assert_eq!(lake.create_tag(TableKind::Records, "month-end", month_end).await.unwrap(), tag, "the same tag again is no change");
    let moved = lake.create_tag(TableKind::Records, "month-end", month_end - 1).await.unwrap_err();
    assert!(moved.to_string().contains("never moved"), "{moved}");
    for b in 2..5 {
        deliver(&lake, 0, b * 100, 100, end).await;
        lake.commit().await.unwrap();
    }
    // Expiry on the primary keeps only the current snapshot, and the tagged one.
    let policy = ExpiryPolicy { max_age: Duration::ZERO, min_snapshots: 1, ..ExpiryPolicy::default() };
    let expired = expire(&lake, TableKind::Records, &policy, chrono::Utc::now()).await.unwrap();
    assert!(expired.expired >= 3, "{expired:?}");
    let kept: Vec<i64> = lake.load(TableKind::Records).await.unwrap().metadata().snapshots().map(|s| s.snapshot_id()).collect();
    assert!(kept.contains(&month_end) && kept.len() == 2, "{kept:?}");

    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(replica_dir.path())).await.unwrap();
    assert!(!replicator.round().await.unwrap().failed());
    let replica_records = replica_metadata(&replicator, "sentiment_records").await;
    assert_eq!(sentiment_lake::lake::history::tags(&replica_records), vec![tag.clone()], "the replica keeps the tag");

    // Restored at the tag into an empty place: the rows and the ledger as they were at month end.
    let into = config(restored_dir.path());
    let source = sentiment_lake::replica::replica_source(&replica_config(replica_dir.path()), &into).await.unwrap();
    let report = sentiment_lake::replica::restore(source, &into, sentiment_lake::replica::RestorePoint::Snapshot(month_end)).await.unwrap();
    assert_eq!(report.snapshot, Some(month_end));
    assert_eq!(report.promoted.sources.iter().map(|s| s.sequence_number).collect::<Vec<_>>(), vec![200], "{report:?}");
    let restored = open(restored_dir.path()).await;
    assert_eq!(scan(&restored, TableKind::Records).await.num_rows(), 200);
    // Replayed from the month-end position, the events after it land once.
    deliver(&restored, 0, 0, 500, end).await;
    restored.commit().await.unwrap();
    let ids = sorted(&scan(&restored, TableKind::Records).await, "message_id");
    assert_eq!(ids, sorted(&scan(&lake, TableKind::Records).await, "message_id"));
    // A second restore into the same place is refused: it is not empty.
    let source = sentiment_lake::replica::replica_source(&replica_config(replica_dir.path()), &into).await.unwrap();
    let again = sentiment_lake::replica::restore(source, &into, sentiment_lake::replica::RestorePoint::Latest).await.unwrap_err();
    assert!(again.to_string().contains("promoted"), "{again}");
    // A snapshot whose ledger cannot be known is refused before anything is copied.
    let elsewhere = warehouse();
    let source = sentiment_lake::replica::replica_source(&replica_config(replica_dir.path()), &config(elsewhere.path())).await.unwrap();
    let unknown = sentiment_lake::replica::restore(source, &config(elsewhere.path()), sentiment_lake::replica::RestorePoint::Snapshot(42)).await;
    assert!(unknown.unwrap_err().to_string().contains("cannot be known"));
    assert!(files_under(elsewhere.path(), ".parquet").is_empty(), "nothing copied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_restores_the_replica_and_passes_every_check() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let end = chrono::Utc::now();
    for b in 0..3 {
        deliver(&lake, 0, b * 100, 100, end).await;
        lake.commit().await.unwrap();
    }
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .arg("--warehouse")
            .arg(primary_dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let replica = replica_dir.path().to_string_lossy().to_string();
    assert!(cli(&["replicate", "--to", &replica]).status.success());
    // The primary moves on: the drill compares at the replica's snapshot, not the primary's current one.
    deliver(&lake, 0, 300, 100, end).await;
    lake.commit().await.unwrap();
    let output = cli(&["drill", "--replica", &replica]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for check in
        ["records rows | 300 | 300 | PASS", "distinct ids | 300 | 300 | PASS", "ingestion ledger", "score checksum", "sentiment_records_rollup rows"]
    {
        assert!(stdout.contains(check), "{check} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_copied_ahead_of_the_records_is_reconciled_at_promotion() {
    use sentiment_lake::storage::faults::{Fault, FaultPlan, FaultRule, Op};
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    let end = chrono::Utc::now();
    let file = "legacy+sha256:0123";
    let deliver_file = |first: u64, count: u64| {
        let lake = lake.clone();
        async move {
            let batch = sentiment_lake::ingest::SourceBatch {
                source: file.to_string(),
                invocation_id: None,
                events: (first..first + count)
                    .map(|i| {
                        sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::from(events(end, 500_000 + i, 1).remove(0).to_string()))
                    })
                    .collect(),
            };
            sentiment_lake::ingest::Pipeline::default().ingest(&lake, &batch).await.unwrap();
            lake.commit().await.unwrap();
        }
    };
    deliver_file(0, 100).await;
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica_config(replica_dir.path())).await.unwrap();
    assert!(!replicator.round().await.unwrap().failed());
    // The file finishes on the primary and is retired (its ledger row appended, its watermark removed).
    deliver_file(100, 100).await;
    let retired = sentiment_lake::lake::RetiredSource {
        source: file.into(),
        through: 200,
        retired_at: chrono::Utc::now(),
        records_snapshot_id: None,
        report: None,
    };
    assert_eq!(lake.retire(vec![retired]).await.unwrap().retired, vec![file.to_string()]);
    // The next round copies the ledger, then fails on the records (their files cannot be written).
    let plan = FaultPlan::new(7);
    plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("sentiment_records/"));
    let mut faulty = replica_config(replica_dir.path());
    faulty.storage.layer = Some(sentiment_lake::storage::StoreLayer::faults(plan));
    let failing = Replicator::open(Source::lake(&lake).unwrap(), &faulty).await.unwrap();
    let round = failing.round().await.unwrap();
    assert!(round.tables[2].error.is_none() && round.tables[0].error.is_some(), "{round:?}");
    let promoted = open(replica_dir.path()).await;
    assert!(promoted.retired_source(file).await.unwrap().is_some(), "the replica's ledger is ahead of its records");

    // Promotion takes the row out: the replica's records hold the file to row 100 only.
    let report = sentiment_lake::replica::promote(&promoted).await.unwrap();
    assert_eq!(report.ledger_rows_forgotten, vec![file.to_string()]);
    assert!(promoted.retired_source(file).await.unwrap().is_none());
    let position = report.sources.iter().find(|s| s.source == file).unwrap();
    assert_eq!((position.sequence_number, position.records), (100, Some(100)));
    // Migrated again (the whole file redelivered), its rows land once.
    let batch = sentiment_lake::ingest::SourceBatch {
        source: file.to_string(),
        invocation_id: None,
        events: (0..200u64)
            .map(|i| sentiment_lake::ingest::SourceEvent::new(i as i64 + 1, bytes::Bytes::from(events(end, 500_000 + i, 1).remove(0).to_string())))
            .collect(),
    };
    sentiment_lake::ingest::Pipeline::default().ingest(&promoted, &batch).await.unwrap();
    promoted.commit().await.unwrap();
    assert_eq!(sorted(&scan(&promoted, TableKind::Records).await, "message_id"), sorted(&scan(&lake, TableKind::Records).await, "message_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_when_the_replica_is_behind_or_broken() {
    let primary_dir = warehouse();
    let replica_dir = warehouse();
    let other_dir = warehouse();
    let lake = open(primary_dir.path()).await;
    ingest(&lake, &events(chrono::Utc::now(), 0, 20)).await;
    let service = |dir: &Path| Arc::new(sentiment_lake::replica::ReplicaService::new(lake.clone(), replica_config(dir), Duration::from_secs(60)));
    let good = service(replica_dir.path());
    let server = serve_state(lake.clone(), |state| state.replica = Some(good.clone())).await;
    let (status, reply) = post(&server.base, "ReplicateLake", fixture("timer.json")).await;
    assert_eq!(status, 200, "{reply}");
    let (status, health) = get(&server.base, "/api/health").await;
    assert_eq!((status, health["replication"]["status"].as_str()), (200, Some("ok")), "{health}");
    assert_eq!(health["replication"]["lag_seconds"], 0.0);

    // A replica location that holds another lake's tables: never written over, and a person is needed.
    let other = open(other_dir.path()).await;
    ingest(&other, &events(chrono::Utc::now(), 0, 5)).await;
    let broken = service(other_dir.path());
    let server = serve_state(lake.clone(), |state| state.replica = Some(broken.clone())).await;
    let (status, _) = post(&server.base, "ReplicateLake", fixture("timer.json")).await;
    assert_eq!(status, 200, "the round ran; its tables report their errors");
    let (status, health) = get(&server.base, "/api/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["replication"]["status"], "failing (needs a person)", "{health}");
}

/// Rows per ticker at every snapshot of `table` (read with iceberg-rust's scan, planning from the snapshot).
async fn counts_by_snapshot(table: &iceberg::table::Table) -> BTreeMap<i64, BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for snapshot in table.metadata().snapshots() {
        let scan = table.scan().snapshot_id(snapshot.snapshot_id()).select(["ticker"]).build().unwrap();
        let batches: Vec<arrow_array::RecordBatch> = futures::TryStreamExt::try_collect(scan.to_arrow().await.unwrap()).await.unwrap();
        let mut counts = BTreeMap::new();
        for batch in &batches {
            for ticker in strings(batch, "ticker").into_iter().flatten() {
                *counts.entry(ticker).or_default() += 1;
            }
        }
        out.insert(snapshot.snapshot_id(), counts);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_another_storage_account_follows_a_living_primary() {
    use common::azurite::Azurite;
    use sentiment_lake::storage::azure::EMULATOR_ACCOUNT_KEY;
    let replica_key = "cmVwbGljYS1hY2NvdW50LWtleS1vZi10aGUtcGFpcmVkLXJlZ2lvbi10ZXN0LTY0Yg==";
    let azurite = Azurite::start_with_accounts(&[("lakeprimary", EMULATOR_ACCOUNT_KEY), ("lakereplica", replica_key)]);
    azurite.create_container_in("lakeprimary", "lake").await;
    azurite.create_container_in("lakereplica", "replica").await;
    let mut config = LakeConfig::local("abfss://lake@lakeprimary.dfs.core.windows.net/warehouse");
    config.catalog_uri = Some(common::postgres::fresh_catalog().await);
    config.storage.azure.connection_string = Some(azurite.account_connection_string("lakeprimary"));
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let replica_connection = azurite.account_connection_string("lakereplica");
    let mut replica = replica_config(Path::new("/unused"));
    replica.location = "abfss://replica@lakereplica.dfs.core.windows.net/warehouse".into();
    replica.catalog_uri = Some(common::postgres::fresh_catalog().await);
    replica.storage.azure.connection_string = Some(replica_connection.clone());
    replica.storage.azure.auth = sentiment_lake::storage::AzureAuth::ConnectionString;
    let replicator = Replicator::open(Source::lake(&lake).unwrap(), &replica).await.unwrap();

    // The primary lives (10 commits, compaction, expiry) while rounds run.
    let end = chrono::Utc::now();
    let living = lake.clone();
    let writer = tokio::spawn(async move {
        for b in 0..10u64 {
            ingest(&living, &events(end, b * 40, 40)).await;
            if b == 4 {
                compact(&living, TableKind::Records, &CompactionPolicy { min_input_files: 2, ..CompactionPolicy::default() }).await.unwrap();
            }
            if b == 8 {
                let policy = ExpiryPolicy { max_age: Duration::ZERO, min_snapshots: 3, ..ExpiryPolicy::default() };
                expire(&living, TableKind::Records, &policy, chrono::Utc::now()).await.unwrap();
            }
        }
    });
    let mut rounds = 0;
    while !writer.is_finished() {
        replicator.round().await.unwrap();
        rounds += 1;
    }
    writer.await.unwrap();
    let last = replicator.round().await.unwrap();
    assert!(!last.failed() && last.lag_seconds() == 0.0, "{last:?}");
    assert!(rounds >= 2, "rounds ran while the primary lived");

    let ident = iceberg::TableIdent::from_strs([LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE]).unwrap();
    let replica_table = replicator.catalog().load_table(&ident).await.unwrap();
    let primary_table = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(counts_by_snapshot(&replica_table).await, counts_by_snapshot(&primary_table).await, "every snapshot, the same rows per ticker");
    // PyIceberg with adlfs reads the replica through the replica account only.
    let output = Command::new(python_with("adlfs"))
        .arg(format!("{}/tests/interop/pyiceberg_read_azure.py", env!("CARGO_MANIFEST_DIR")))
        .arg(replica_table.metadata_location().unwrap())
        .arg(&replica_connection)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["row_count"], 400);
    let files = seen["files"].as_array().unwrap();
    assert!(!files.is_empty() && files.iter().all(|f| f.as_str().unwrap().contains("replica@lakereplica")), "{files:?}");
}
