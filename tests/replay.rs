//! `dead-letters replay` (issue #36): dead letters decoded again under today's schema and rules land once
//! each, also while Event Hubs redelivers the same events, on a second run, and after a rollback of the
//! replay. Runs the real server for deliveries and the real binary for the CLI.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{host_envelope, open, post, scan, serve_with, strings, warehouse};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::lake::TableKind;
use serde_json::Value;

const EVENTS: u64 = 60;

/// Partition 0's events: every third lacks its score (incomplete), every third has a score out of range
/// (a validation failure no replay fixes), the rest are whole; all carry a `venue` the table does not have yet.
fn bodies(end: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    common::events(end, 0, EVENTS)
        .into_iter()
        .enumerate()
        .map(|(i, mut event)| {
            let object = event.as_object_mut().unwrap();
            object.insert("venue".into(), Value::String(format!("XNYS-{i}")));
            match i % 3 {
                0 => {
                    object.remove("sentiment_score");
                }
                2 => {
                    object.insert("sentiment_score".into(), serde_json::json!(7.5));
                }
                _ => {}
            }
            event.to_string()
        })
        .collect()
}

fn cli(dir: &Path, incomplete: &str, args: &[&str]) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .args(["--warehouse", &dir.to_string_lossy()])
        .args(args)
        .env("SENTIMENT_LAKE_INCOMPLETE", incomplete)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"))
}

fn replay(dir: &Path, args: &[&str]) -> Value {
    cli(dir, "enrich", &[&["dead-letters", "replay"], args].concat())
}

async fn ids(lake: &sentiment_lake::lake::Lake) -> Vec<String> {
    strings(&scan(lake, TableKind::Records).await, "message_id").into_iter().map(Option::unwrap).collect()
}

fn once_each(ids: &[String]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() == ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_dead_letters_land_once_with_added_columns_despite_redelivery() {
    let dir = warehouse();
    let server = serve_with(open(dir.path()).await, IncompletePolicy::DeadLetter).await;
    let lake = open(dir.path()).await;
    let end = chrono::Utc::now();
    let envelope = host_envelope("0", 1, &bodies(end), end);
    let (status, body) = post(&server.base, "IngestEvents", envelope.clone()).await;
    assert_eq!(status, 200, "{body}");
    lake.commit().await.unwrap();
    assert_eq!(ids(&lake).await.len(), 20);
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 40);

    cli(dir.path(), "dead-letter", &["schema", "add-column", "--name", "venue", "--type", "string"]);

    // A dry run judges without committing, and names what still fails.
    let dry = replay(dir.path(), &["--dry-run"]);
    assert_eq!((dry["selected"].as_u64(), dry["passing"].as_u64(), dry["landed"].as_u64()), (Some(40), Some(20), Some(0)), "{dry}");
    assert_eq!(dry["still_failing"], 20);
    assert_eq!(dry["failing_by_reason"]["validation/sentiment_score"], 20, "{dry}");
    let only_validation = replay(dir.path(), &["--dry-run", "--rule", "validation"]);
    assert_eq!((only_validation["selected"].as_u64(), only_validation["passing"].as_u64()), (Some(20), Some(0)), "{only_validation}");
    assert_eq!(ids(&lake).await.len(), 20, "a dry run commits nothing");

    // For as long as the replay runs, Event Hubs redelivers the same events and delivers new ones, each
    // round committed: the replay's compare-and-swap races commits that add rows.
    let stop = Arc::new(AtomicBool::new(false));
    let redeliveries = {
        let (base, envelope, stop, dir) = (server.base.clone(), envelope.clone(), stop.clone(), dir.path().to_path_buf());
        tokio::spawn(async move {
            let lake = open(&dir).await;
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                let (status, body) = post(&base, "IngestEvents", envelope.clone()).await;
                assert_eq!(status, 200, "{body}");
                let fresh: Vec<String> = common::events(end, 1_000 + rounds * 3, 3).iter().map(|e| e.to_string()).collect();
                let (status, body) = post(&base, "IngestEvents", host_envelope("0", 61 + rounds as i64 * 3, &fresh, end)).await;
                assert_eq!(status, 200, "{body}");
                lake.commit().await.unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let dir_path = dir.path().to_path_buf();
    let replayed = tokio::task::spawn_blocking(move || replay(&dir_path, &[])).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let new_events = redeliveries.await.unwrap() as usize * 3;
    assert!(new_events > 0);
    assert_eq!((replayed["passing"].as_u64(), replayed["landed"].as_u64()), (Some(20), Some(20)), "{replayed}");
    assert_eq!(replayed["snapshots"].as_array().unwrap().len(), 1);

    let after = ids(&lake).await;
    assert_eq!(after.len(), 40 + new_events, "20 whole events, 20 replayed and the new ones, each once");
    assert!(once_each(&after));
    let records = scan(&lake, TableKind::Records).await;
    let venues: Vec<Option<String>> = strings(&records, "venue");
    assert_eq!(venues.iter().filter(|v| v.is_some()).count(), 20, "replayed rows carry the added column from their raw bytes");

    // A second run finds them replayed; the ones still failing stay replayable.
    let again = replay(dir.path(), &[]);
    assert_eq!(
        (again["already_replayed"].as_u64(), again["landed"].as_u64(), again["still_failing"].as_u64()),
        (Some(20), Some(0), Some(20)),
        "{again}"
    );
    let (status, _) = post(&server.base, "IngestEvents", envelope).await;
    assert_eq!(status, 200);
    lake.commit().await.unwrap();
    assert_eq!(ids(&lake).await.len(), 40 + new_events, "a redelivery after the replay is still a duplicate");

    // Rolled back, the replay's rows are gone and its dead letters replayable again: once more, once.
    let replay_snapshot = replayed["snapshots"][0].as_i64().unwrap();
    let table = lake.load(TableKind::Records).await.unwrap();
    let before_replay = table.metadata().snapshot_by_id(replay_snapshot).unwrap().parent_snapshot_id().unwrap();
    let kept = ids(&lake).await.len();
    lake.rollback(TableKind::Records, before_replay).await.unwrap();
    let rolled_back = ids(&lake).await.len();
    assert!(rolled_back <= kept - 20, "the replay's rows went with the rollback");
    let after_rollback = replay(dir.path(), &[]);
    assert_eq!((after_rollback["already_replayed"].as_u64(), after_rollback["landed"].as_u64()), (Some(0), Some(20)), "{after_rollback}");
    let last = ids(&lake).await;
    assert_eq!(last.len(), rolled_back + 20);
    assert!(once_each(&last));
}

/// Two deliveries of the same events judged under different rules before one commit (a rolling deploy of
/// `--incomplete enrich`): the records table takes the second's rows, the dead-letter table the first's
/// dead letters. The replay finds those rows by id and lands nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_the_table_holds_as_a_row_is_not_replayed() {
    let dir = warehouse();
    let strict = serve_with(open(dir.path()).await, IncompletePolicy::DeadLetter).await;
    let lenient = serve_with(open(dir.path()).await, IncompletePolicy::Enrich).await;
    let lake = open(dir.path()).await;
    let end = chrono::Utc::now();
    let envelope = host_envelope("0", 1, &bodies(end), end);
    for server in [&strict, &lenient] {
        let (status, body) = post(&server.base, "IngestEvents", envelope.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    lake.commit().await.unwrap();
    let before = ids(&lake).await;
    assert_eq!(before.len(), 40, "the lenient delivery's rows: whole and enriched");
    let replayed = replay(dir.path(), &[]);
    assert_eq!(
        (replayed["passing"].as_u64(), replayed["already_in_table"].as_u64(), replayed["landed"].as_u64()),
        (Some(20), Some(20), Some(0)),
        "{replayed}"
    );
    let after = ids(&lake).await;
    assert_eq!(after.len(), 40);
    assert!(once_each(&after));
}
