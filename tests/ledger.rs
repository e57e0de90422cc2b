//! The exactly-once ledger cannot be fooled: snapshot expiry and other engines' commits never make committed
//! data look uncommitted, and a ledger that cannot be read safely stops the committer instead of letting it
//! duplicate rows.

mod common;

use std::collections::HashMap;

use common::*;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeError, TableKind, RECENT_COMMITS_PROPERTY, WATERMARKS_PROPERTY};
use serde_json::Value;

async fn ingest_file(lake: &Lake, events: &[Value], name: &str) {
    let ndjson: Vec<u8> = events.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = batch_from_file(&ndjson, name, None).unwrap();
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
}

/// What another engine's commit looks like to the ledger: a snapshot without sentiment-lake's summary keys.
async fn foreign_commit(lake: &Lake) {
    let table = lake.load(TableKind::Records).await.unwrap();
    let tx = Transaction::new(&table);
    let tx = tx
        .fast_append()
        .add_data_files(vec![])
        .set_snapshot_properties(HashMap::from([("engine".to_string(), "dremio OPTIMIZE".to_string())]))
        .apply(tx)
        .unwrap();
    tx.commit(lake.catalog().as_ref()).await.unwrap();
}

/// Expires every snapshot but the current one, as `maintain` or Dremio's VACUUM would.
async fn expire_all_but_current(lake: &Lake) {
    let table = lake.load(TableKind::Records).await.unwrap();
    let tx = Transaction::new(&table);
    let tx = tx.expire_snapshots().expire_older_than_ms(chrono::Utc::now().timestamp_millis() + 1).retain_last(1).apply(tx).unwrap();
    tx.commit(lake.catalog().as_ref()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_expiry_and_foreign_commits_keep_the_ledger() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let end = chrono::Utc::now();
    let (first, second) = (events(end, 0, 50), events(end, 50, 50));
    ingest_file(&lake, &first, "first").await;
    lake.commit().await.unwrap();
    ingest_file(&lake, &second, "second").await;
    lake.commit().await.unwrap();
    foreign_commit(&lake).await;
    expire_all_but_current(&lake).await;
    let table = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(table.metadata().snapshots().count(), 1, "only the foreign snapshot is left");
    assert!(!table.metadata().current_snapshot().unwrap().summary().additional_properties.contains_key(WATERMARKS_PROPERTY));

    // Both files redelivered: nothing is committed twice.
    ingest_file(&lake, &first, "first again").await;
    ingest_file(&lake, &second, "second again").await;
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!((report.rows_committed, report.obsolete_deleted), (0, 2), "{report:?}");
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 100);
    assert!(counts(&ids).values().all(|&n| n == 1));
}

/// A table whose watermarks property is gone (an older version kept the ledger only in snapshot summaries;
/// this one's summaries hold only what each commit advanced): if no summary can stand in for it, the
/// watermarks are unknown and the committer refuses rather than commit everything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_only_in_summaries_fails_closed_when_its_snapshot_is_gone() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let events = events(chrono::Utc::now(), 0, 20);
    ingest_file(&lake, &events, "batch").await;
    lake.commit().await.unwrap();
    // Back to a summary-only ledger, as an older version left the table.
    let table = lake.load(TableKind::Records).await.unwrap();
    let tx = Transaction::new(&table);
    let tx = tx.update_table_properties().remove(WATERMARKS_PROPERTY.to_string()).remove(RECENT_COMMITS_PROPERTY.to_string()).apply(tx).unwrap();
    tx.commit(lake.catalog().as_ref()).await.unwrap();
    // This version's summaries hold only the sources each commit advanced: not a ledger to rebuild from.
    match lake.committed_state(TableKind::Records).await {
        Err(LakeError::Ledger { detail, .. }) => assert!(detail.contains("only the sources it advanced"), "{detail}"),
        other => panic!("expected a ledger error, got {other:?}"),
    }
    foreign_commit(&lake).await;
    expire_all_but_current(&lake).await;

    match lake.committed_state(TableKind::Records).await {
        Err(LakeError::Ledger { detail, .. }) => assert!(detail.contains("is gone"), "{detail}"),
        other => panic!("expected a ledger error, got {other:?}"),
    }
    ingest_file(&lake, &events, "redelivered").await;
    let err = lake.commit().await.unwrap_err();
    assert!(matches!(err, LakeError::Ledger { .. }) && !err.is_retryable(), "{err}");
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 20, "nothing was committed twice");
}

/// Batches without dead letters leave range markers for the dead-letter table. They are merged into one per
/// source while the table is busy, and folded into its ledger (a properties-only commit, no snapshot) once
/// it has been idle for the flush period, so they never pile up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_markers_are_merged_then_folded_into_the_ledger() {
    let dir = warehouse();
    let mut config = config(dir.path());
    let lake = Lake::open(&config).await.unwrap();
    let all = events(chrono::Utc::now(), 0, 30);
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    for (i, chunk) in all.chunks(10).enumerate() {
        let batch = sentiment_lake::ingest::SourceBatch {
            source: "source-m".into(),
            invocation_id: None,
            events: chunk
                .iter()
                .enumerate()
                .map(|(k, e)| sentiment_lake::ingest::SourceEvent::new((i * 10 + k + 1) as i64, bytes::Bytes::from(e.to_string())))
                .collect(),
        };
        pipeline.ingest(&lake, &batch).await.unwrap();
    }
    assert_eq!(lake.pending(TableKind::DeadLetters).await.unwrap().len(), 3);
    let reports = lake.commit().await.unwrap();
    assert_eq!(reports[0].rows_committed, 30);
    assert_eq!((reports[1].rows_committed, reports[1].markers_merged), (0, 1), "{:?}", reports[1]);
    assert_eq!(lake.pending(TableKind::DeadLetters).await.unwrap().len(), 1, "three markers became one");
    assert!(lake.committed_state(TableKind::DeadLetters).await.unwrap().watermarks.is_empty());

    config.commit_policy.ledger_flush_after = std::time::Duration::ZERO;
    let idle = Lake::open(&config).await.unwrap();
    let reports = idle.commit().await.unwrap();
    assert_eq!((reports[1].snapshots, reports[1].commit_id.is_some()), (0, true), "{:?}", reports[1]);
    assert!(idle.pending(TableKind::DeadLetters).await.unwrap().is_empty());
    assert_eq!(idle.committed_state(TableKind::DeadLetters).await.unwrap().watermarks.get("source-m"), Some(30));
    assert!(idle.load(TableKind::DeadLetters).await.unwrap().metadata().current_snapshot().is_none(), "no empty snapshot");
}

/// `count` events of one source from sequence number `first`, staged in `lake`.
async fn stage_source(lake: &Lake, source: &str, first: i64, count: u64) {
    let events = events(chrono::Utc::now(), first as u64, count)
        .iter()
        .enumerate()
        .map(|(i, e)| sentiment_lake::ingest::SourceEvent::new(first + i as i64, bytes::Bytes::from(e.to_string())))
        .collect();
    let batch = sentiment_lake::ingest::SourceBatch { source: source.into(), invocation_id: None, events };
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_table_identities_in_one_warehouse_never_take_each_others_entries() {
    let dir = warehouse();
    let open_in = |namespace: &str| {
        let mut config = config(dir.path());
        config.namespace = namespace.into();
        async move { Lake::open(&config).await.unwrap() }
    };
    let (alpha, beta) = (open_in("alpha").await, open_in("beta").await);
    // The same table names and the same source: only the identity tells their entries apart.
    stage_source(&alpha, "eventhubs://ns/hub/$Default/0", 1, 30).await;
    stage_source(&beta, "eventhubs://ns/hub/$Default/0", 1, 50).await;
    assert_eq!(alpha.commit().await.unwrap()[0].rows_committed, 30);
    assert_eq!(beta.commit().await.unwrap()[0].rows_committed, 50);
    assert_eq!(scan(&alpha, TableKind::Records).await.num_rows(), 30);
    assert_eq!(scan(&beta, TableKind::Records).await.num_rows(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_staged_by_an_earlier_version_still_commit() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    stage_source(&lake, "eventhubs://ns/hub/$Default/0", 1, 40).await;
    // Where versions without the identity in the path staged them: `_staging/<table name>/`.
    let area = &lake.target(TableKind::Records).staging;
    let staging = dir.path().join("_staging");
    std::fs::rename(staging.join(&area.dir), staging.join("sentiment_records")).unwrap();
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!(report.rows_committed, 40, "{report:?}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    assert_eq!(sorted(&scan(&lake, TableKind::Records).await, "message_id").len(), 40);
}
