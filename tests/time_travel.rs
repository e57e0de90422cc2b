//! Time travel: `as_of` on every endpoint answers from that snapshot (checked against PyIceberg reading the
//! same snapshot), an instant names the snapshot current then, unknown or expired snapshots are 404, and
//! `/api/sentiment/snapshots` lists the history with what each commit added.

mod common;

use std::collections::HashMap;

use common::*;
use sentiment_lake::lake::TableKind;

fn tickers_of(answer: &serde_json::Value) -> HashMap<String, i64> {
    answer["data"].as_array().unwrap().iter().map(|t| (t["ticker"].as_str().unwrap().to_string(), t["message_count"].as_i64().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_answers_from_that_snapshot() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let end = instant("2026-11-20T00:00:00Z");
    ingest(&lake, &events(end, 0, 300)).await;
    let first = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    ingest(&lake, &events(end, 300, 500)).await;
    let second = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    assert_ne!(first, second);
    let server = serve(lake.clone()).await;
    let window = "from=2026-11-01&to=2026-11-21&limit=100";

    let expected: HashMap<String, HashMap<String, i64>> =
        serde_json::from_value(pyiceberg_script("pyiceberg_snapshot_counts.py", dir.path(), "sentiment_records")).unwrap();
    for (snapshot, rows) in [(first, 300), (second, 800)] {
        let answer = get_ok(&server.base, &format!("/api/sentiment/tickers?{window}&as_of={snapshot}")).await;
        assert_eq!(answer["meta"]["snapshot_id"].as_i64(), Some(snapshot));
        let counts = tickers_of(&answer);
        assert_eq!(counts, expected[&snapshot.to_string()], "as PyIceberg reads snapshot {snapshot}");
        assert_eq!(counts.values().sum::<i64>(), rows);
    }
    let now = get_ok(&server.base, &format!("/api/sentiment/tickers?{window}")).await;
    assert_eq!(now["meta"]["snapshot_id"].as_i64(), Some(second), "without as_of: the current snapshot");

    // An instant names the snapshot current then, on any endpoint.
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let then = get_ok(&server.base, &format!("/api/sentiment/records?ticker=AAPL&days=30&limit=1000&as_of={at}")).await;
    assert_eq!(then["meta"]["snapshot_id"].as_i64(), Some(first));
    let aapl_then = then["data"].as_array().unwrap().len() as i64;
    assert_eq!(aapl_then, expected[&first.to_string()].get("AAPL").copied().unwrap_or(0));

    for (as_of, why) in [("12345", "an unknown id"), ("2020-01-01", "before the first commit")] {
        let (status, body) = get(&server.base, &format!("/api/sentiment/summary?ticker=AAPL&as_of={as_of}")).await;
        assert_eq!(status, 404, "{why}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{why}: {body}");
    }
    let (status, body) = get(&server.base, "/api/sentiment/summary?ticker=AAPL&as_of=soon").await;
    assert_eq!((status, body["error"]["parameter"].as_str()), (400, Some("as_of")), "{body}");

    let history = get_ok(&server.base, "/api/sentiment/snapshots").await;
    let list = history["data"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(history["meta"]["current_snapshot_id"].as_i64(), Some(second));
    assert_eq!((list[0]["snapshot_id"].as_i64(), list[0]["current"].as_bool()), (Some(second), Some(true)), "newest first");
    assert_eq!((list[1]["snapshot_id"].as_i64(), list[1]["parent_id"].as_i64()), (Some(first), None));
    assert_eq!(list[0]["parent_id"].as_i64(), Some(first));
    assert_eq!((list[0]["added_rows"].as_i64(), list[0]["total_rows"].as_i64()), (Some(500), Some(800)));
    assert_eq!(list[1]["operation"], "append");
    assert!(list.iter().all(|s| s["sources"].as_array().is_some_and(|a| a.len() == 1)), "each commit names the source it covered: {list:?}");
    let (status, _) = get(&server.base, "/api/sentiment/snapshots?limit=0").await;
    assert_eq!(status, 400);
    assert_eq!(get_ok(&server.base, "/api/sentiment/snapshots?limit=1").await["data"].as_array().unwrap().len(), 1);
}

/// Rollback: the table shows the old snapshot's rows, the ledger is as it was then, so replaying the
/// rolled-back batch commits it again and replaying an older one adds nothing; time travel still reaches the
/// rolled-back snapshot by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_rows_and_ledger_so_replays_land_once() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let end = instant("2026-11-20T00:00:00Z");
    let first_batch = events(end, 0, 200);
    let second_batch = events(end, 200, 300);
    let stage = |events: &[serde_json::Value], source: &str| {
        let ndjson: Vec<u8> = events.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
        sentiment_lake::ingest::file::batch_from_file(&ndjson, source, None).unwrap()
    };
    let pipeline = sentiment_lake::ingest::Pipeline::new(sentiment_lake::enrich::IncompletePolicy::DeadLetter);
    let (a, b) = (stage(&first_batch, "file-a"), stage(&second_batch, "file-b"));
    pipeline.ingest(&lake, &a).await.unwrap();
    lake.commit().await.unwrap();
    let first = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    let ledger_then = lake.committed_state(TableKind::Records).await.unwrap().watermarks;
    pipeline.ingest(&lake, &b).await.unwrap();
    lake.commit().await.unwrap();
    let second = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 500);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir.path())
        .args(["rollback", "--to", &first.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["from"].as_i64(), report["to"].as_i64(), report["rolled_back"].as_i64()), (Some(second), Some(first), Some(1)));
    assert_eq!((report["rows_before"].as_i64(), report["rows_after"].as_i64()), (Some(500), Some(200)));

    let table = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(table.metadata().current_snapshot_id(), Some(first));
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 200, "the table reads the old snapshot");
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks, ledger_then, "the ledger is as it was then");
    let counts = pyiceberg_script("pyiceberg_snapshot_counts.py", dir.path(), "sentiment_records");
    assert_eq!(counts[second.to_string()].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum::<i64>(), 500, "still readable by id");

    // Replays: the rolled-back batch lands again, the older one is a duplicate.
    pipeline.ingest(&lake, &b).await.unwrap();
    pipeline.ingest(&lake, &a).await.unwrap();
    let reports = lake.commit().await.unwrap();
    assert_eq!(reports[0].rows_committed, 300);
    assert_eq!(reports[0].obsolete_deleted, 1, "the replayed older batch is below its watermark and dropped unread");
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 500);
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "every row once");

    // The API answers from the rolled-forward table.
    let server = serve(lake.clone()).await;
    let top = get_ok(&server.base, "/api/sentiment/tickers?from=2026-11-01&to=2026-11-21&limit=100").await;
    assert_eq!(top["data"].as_array().unwrap().iter().map(|t| t["message_count"].as_i64().unwrap()).sum::<i64>(), 500);

    // Nothing to do, and refusals.
    assert!(lake
        .rollback(TableKind::Records, lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap())
        .await
        .unwrap()
        .is_none());
    let e = lake.rollback(TableKind::Records, 42).await.unwrap_err();
    assert!(e.to_string().contains("no such snapshot"), "{e}");
    let e = lake.rollback(TableKind::Records, second).await.unwrap_err();
    assert!(e.to_string().contains("not an ancestor"), "{e}");
}

/// An instant when a snapshot that has since expired was current is a 404, never the answer of an older
/// snapshot that happens to be kept: here the rolled-back snapshot expires while the one before it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_that_fell_on_an_expired_snapshot_is_unknown() {
    use sentiment_lake::lake::Change;
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let end = instant("2026-11-20T00:00:00Z");
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(20));
    ingest(&lake, &events(end, 0, 100)).await;
    let first = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    pause().await;
    let before_second = chrono::Utc::now();
    pause().await;
    ingest(&lake, &events(end, 100, 100)).await;
    let second = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    pause().await;
    let during_second = chrono::Utc::now();
    pause().await;
    lake.rollback(TableKind::Records, first).await.unwrap();
    pause().await;
    ingest(&lake, &events(end, 200, 100)).await;
    // The rolled-back snapshot is off the lineage: expiry may take it while the older one stays.
    let table = lake.load(TableKind::Records).await.unwrap();
    let landed = lake.commit_change(&table, Change { expire: vec![second], ..Change::default() }).await.unwrap();
    assert_eq!(landed, sentiment_lake::lake::Outcome::Landed { snapshot_id: None });

    let server = serve(lake.clone()).await;
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, body) = get(&server.base, &format!("/api/sentiment/tickers?days=30&as_of={}", at(during_second))).await;
    assert_eq!(status, 404, "the expired snapshot was current then, not the first: {body}");
    // What the log still vouches for is answered; it begins after the expired snapshot's entry.
    let (status, body) = get(&server.base, &format!("/api/sentiment/tickers?days=30&as_of={}", at(before_second))).await;
    assert_eq!(status, 404, "the log no longer reaches back before the expired entry: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("history begins at"), "{body}");
    let now = get_ok(&server.base, &format!("/api/sentiment/tickers?days=30&as_of={}", at(chrono::Utc::now()))).await;
    assert_ne!(now["meta"]["snapshot_id"].as_i64(), Some(first));
    let history = get_ok(&server.base, "/api/sentiment/snapshots").await;
    assert!(history["meta"]["history_begins_at"].is_string(), "the listing says where it begins: {history}");
}

/// Events `first..=last` of one Event Hubs partition as the pipeline stages them, their content built with
/// `end` (different `end`s: the same events processed again, distinguishable in the table).
async fn stage_range(lake: &sentiment_lake::lake::Lake, first: i64, last: i64, end: chrono::DateTime<chrono::Utc>) {
    use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
    let events = events(end, (first - 1) as u64, (last - first + 1) as u64)
        .iter()
        .enumerate()
        .map(|(i, e)| SourceEvent::new(first + i as i64, bytes::Bytes::from(e.to_string())))
        .collect();
    let batch = SourceBatch { source: "eventhubs://ns/hub/$Default/0".into(), invocation_id: None, events };
    Pipeline::new(sentiment_lake::enrich::IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
}

fn lake_config_with_grace(dir: &std::path::Path, grace: std::time::Duration) -> sentiment_lake::lake::LakeConfig {
    let mut config = config(dir);
    config.commit_policy.pass.gap_grace = grace;
    config
}

/// The live rollback of the report: 1-100 committed, 101-200 committed, rolled back to the first snapshot,
/// the stream goes on with 201-300 (and a redelivery staged before the rollback lingers), and the replay of
/// 101-200 arrives long after the gap grace. Every event once, the replay's version of the rolled-back ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_on_a_live_source_waits_for_the_replay_however_long_it_takes() {
    let dir = warehouse();
    let grace = std::time::Duration::from_millis(300);
    let lake = sentiment_lake::lake::Lake::open(&lake_config_with_grace(dir.path(), grace)).await.unwrap();
    let (first_run, replay_run) = (instant("2026-11-20T00:00:00Z"), instant("2026-11-20T06:00:00Z"));
    stage_range(&lake, 1, 100, first_run).await;
    lake.commit().await.unwrap();
    let s1 = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    stage_range(&lake, 101, 200, first_run).await;
    lake.commit().await.unwrap();
    // Staged before the rollback, not yet committed: a redelivery inside the range, and a batch reaching past it.
    stage_range(&lake, 150, 160, first_run).await;
    stage_range(&lake, 190, 210, first_run).await;
    let report = lake.rollback(TableKind::Records, s1).await.unwrap().unwrap();
    assert_eq!(report.awaiting.get("eventhubs://ns/hub/$Default/0").map(|a| (a.after, a.through)), Some((Some(100), 200)));

    // The live stream goes on; the replay takes far longer than the gap grace.
    stage_range(&lake, 211, 300, first_run).await;
    for _ in 0..3 {
        tokio::time::sleep(grace * 2).await;
        let report = lake.commit().await.unwrap().remove(0);
        assert_eq!(report.rows_committed, 0, "nothing is committed over the rolled-back range: {report:?}");
        assert!(report.awaiting_replay > 0, "{report:?}");
    }
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!(state.watermarks.get("eventhubs://ns/hub/$Default/0"), Some(100));

    stage_range(&lake, 101, 200, replay_run).await;
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!(report.rows_committed, 200, "{report:?}");
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!(state.watermarks.get("eventhubs://ns/hub/$Default/0"), Some(300));
    assert!(state.awaiting.is_empty(), "the replay released the range");
    let table = scan(&lake, TableKind::Records).await;
    let ids = sorted(&table, "message_id");
    assert_eq!(ids.len(), 300);
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "every event once");
    // The rolled-back events are the replay's, not the copies staged before the rollback.
    let committed = event_times(&table);
    for event in events(replay_run, 100, 100) {
        let (id, at) =
            (event["message_id"].as_str().unwrap(), chrono::DateTime::parse_from_rfc3339(event["event_timestamp"].as_str().unwrap()).unwrap());
        assert_eq!(committed[id], at.timestamp_micros(), "{id}: the replay's version");
    }
}

/// `message_id -> event_timestamp` (microseconds) of each row.
fn event_times(batch: &arrow_array::RecordBatch) -> HashMap<String, i64> {
    use arrow_array::Array;
    let ids = strings(batch, "message_id");
    let column = batch.column_by_name("event_timestamp").unwrap();
    let micros = arrow_cast::cast(column, &arrow_schema::DataType::Int64).unwrap();
    let micros = micros.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
    ids.into_iter().enumerate().map(|(i, id)| (id.unwrap(), micros.value(i))).collect()
}

/// A pass planned on the old watermarks and committed after a rollback lowered them re-plans instead of
/// advancing past the rolled-back range.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pass_planned_before_a_rollback_is_planned_again() {
    use sentiment_lake::storage::faults::{Fault, FaultPlan, FaultRule, Op};
    let dir = warehouse();
    let faults = FaultPlan::new(7);
    let mut config = lake_config_with_grace(dir.path(), std::time::Duration::from_millis(100));
    config.storage.layer = Some(sentiment_lake::storage::StoreLayer::faults(faults.clone()));
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let run = instant("2026-11-20T00:00:00Z");
    stage_range(&lake, 1, 100, run).await;
    lake.commit().await.unwrap();
    let s1 = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    stage_range(&lake, 101, 200, run).await;
    lake.commit().await.unwrap();
    stage_range(&lake, 201, 230, run).await;
    // The pass reads its staged segment slowly: the rollback lands between its plan and its commit.
    faults.add(FaultRule::new(Op::Get, Fault::Slow(std::time::Duration::from_millis(1500)), 1.0).on_paths("_staging").at_most(1));
    let committer = {
        let lake = lake.clone();
        tokio::spawn(async move { lake.commit().await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    lake.rollback(TableKind::Records, s1).await.unwrap().unwrap();
    committer.await.unwrap().unwrap();
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!(state.watermarks.get("eventhubs://ns/hub/$Default/0"), Some(100), "the planned pass did not land over the rolled-back range");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(lake.commit().await.unwrap()[0].rows_committed, 0, "still waiting for the replay");
    stage_range(&lake, 101, 200, run).await;
    assert_eq!(lake.commit().await.unwrap()[0].rows_committed, 130);
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 230);
    assert!(ids.windows(2).all(|w| w[0] != w[1]));
}

/// An operator gives up on a replay: the range is released and the source moves on after the gap grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_lets_the_source_move_on() {
    let dir = warehouse();
    let grace = std::time::Duration::from_millis(200);
    let lake = sentiment_lake::lake::Lake::open(&lake_config_with_grace(dir.path(), grace)).await.unwrap();
    let run = instant("2026-11-20T00:00:00Z");
    stage_range(&lake, 1, 50, run).await;
    lake.commit().await.unwrap();
    let s1 = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    stage_range(&lake, 51, 100, run).await;
    lake.commit().await.unwrap();
    lake.rollback(TableKind::Records, s1).await.unwrap().unwrap();
    stage_range(&lake, 101, 120, run).await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir.path())
        .args(["rollback", "--release", "eventhubs://ns/hub/$Default/0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"through\": 100"), "{}", String::from_utf8_lossy(&output.stdout));
    tokio::time::sleep(grace * 2).await;
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!((report.rows_committed, report.gap_events), (20, 50), "{report:?}");
}
