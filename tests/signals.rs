//! The data's signals (issue #36) on a real lake with storage faults: a committer stalled by failing
//! storage, a quiet Event Hubs source and a dead-letter rate above its threshold each fire within two
//! intervals and clear once the cause is gone; `health` shows them and degrades.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::Lake;
use sentiment_lake::maintain::signals::{signals, SignalPolicy, Signals, DEAD_LETTER_RATE, QUIET_SOURCE, STALLED_COMMITTER};
use sentiment_lake::storage::faults::{Fault, FaultPlan, FaultRule, Op};
use sentiment_lake::storage::StoreLayer;

fn partition(n: u32) -> String {
    format!("eventhubs://signals.servicebus.windows.net/hub/$Default/{n}")
}

async fn deliver(lake: &Lake, n: u32, first: i64, bodies: Vec<String>) {
    deliver_from(lake, &partition(n), first, bodies).await;
}

async fn deliver_from(lake: &Lake, source: &str, first: i64, bodies: Vec<String>) {
    let events = bodies.into_iter().enumerate().map(|(i, body)| SourceEvent::new(first + i as i64, Bytes::from(body))).collect();
    let batch = SourceBatch { source: source.to_string(), invocation_id: None, events };
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
}

fn whole(first: u64, count: u64) -> Vec<String> {
    common::events(Utc::now(), first, count).iter().map(|e| e.to_string()).collect()
}

fn out_of_range(first: u64, count: u64) -> Vec<String> {
    common::events(Utc::now(), first, count)
        .into_iter()
        .map(|mut e| {
            e["sentiment_score"] = serde_json::json!(7.5);
            e.to_string()
        })
        .collect()
}

async fn at(lake: &Lake, policy: &SignalPolicy, now: DateTime<Utc>) -> Signals {
    signals(lake, policy, now).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_committer_a_quiet_source_and_a_dead_letter_rate_fire_and_clear() {
    let dir = common::warehouse();
    let plan = FaultPlan::new(11);
    let mut config = common::config(dir.path());
    config.storage.layer = Some(StoreLayer::faults(plan.clone()));
    let lake = Lake::open(&config).await.unwrap();
    let interval = Duration::from_secs(1);
    // Gaps are bridged after half a second here, so waiting beyond two intervals is a stall.
    let policy = SignalPolicy { interval, gap_grace: Duration::from_millis(500), dead_letter_min_events: 10, ..Default::default() };
    let seconds = |s: f64| chrono::Duration::milliseconds((s * 1000.0) as i64);

    deliver(&lake, 0, 1, whole(0, 20)).await;
    deliver(&lake, 1, 1, whole(100, 20)).await;
    lake.commit().await.unwrap();
    let quiet_from = Utc::now();
    assert!(at(&lake, &policy, quiet_from).await.firing.is_empty(), "all clear after a commit");

    // Storage refuses data files: staging works, commits fail, staged rows age.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("/data/"));
    deliver(&lake, 0, 21, whole(20, 10)).await;
    assert!(lake.commit().await.is_err(), "the fault reaches the commit");
    let staged_at = Utc::now();
    let early = at(&lake, &policy, staged_at + seconds(1.0)).await;
    assert!(!early.stalled_committer.firing, "one interval is not a stall: {early:?}");
    let stalled = at(&lake, &policy, staged_at + seconds(2.5)).await;
    assert!(stalled.stalled_committer.firing && stalled.firing.contains(&STALLED_COMMITTER), "{stalled:?}");
    assert_eq!(stalled.stalled_committer.staged_segments, 1);

    // Partition 1 has said nothing since the first commit, partition 0 spoke 1.5 s later.
    let quiet = at(&lake, &policy, quiet_from + seconds(3.5)).await;
    assert!(quiet.firing.contains(&QUIET_SOURCE), "{quiet:?}");
    assert_eq!(quiet.quiet_sources.quiet.keys().cloned().collect::<Vec<_>>(), vec![partition(1)], "{quiet:?}");
    assert_eq!(quiet.quiet_sources.watched, 2);

    plan.heal();
    lake.commit().await.unwrap();
    deliver(&lake, 0, 31, whole(30, 5)).await;
    deliver(&lake, 1, 21, whole(120, 5)).await;
    let cleared = at(&lake, &policy, Utc::now() + seconds(1.5)).await;
    assert!(!cleared.stalled_committer.firing, "staged rows younger than two intervals: {cleared:?}");
    assert!(!cleared.quiet_sources.firing, "both partitions spoke within three intervals: {cleared:?}");
    lake.commit().await.unwrap();

    // A migrated file's bad rows say nothing of the producers: not counted.
    deliver_from(&lake, "legacy://export-2019.parquet", 1, out_of_range(400, 30)).await;
    lake.commit().await.unwrap();
    assert!(!at(&lake, &policy, Utc::now()).await.dead_letter_rate.firing);

    // 10 dead letters among 70 events: 14 %.
    deliver(&lake, 0, 36, out_of_range(200, 10)).await;
    lake.commit().await.unwrap();
    let rate = at(&lake, &policy, Utc::now()).await;
    assert!(rate.dead_letter_rate.firing && rate.firing.contains(&DEAD_LETTER_RATE), "{rate:?}");
    assert_eq!((rate.dead_letter_rate.records, rate.dead_letter_rate.dead_letters), (60, 10));

    // Health shows the signal and is degraded while it fires.
    let server = common::serve_state(lake.clone(), |state| state.signals = policy).await;
    let (status, health) = common::get(&server.base, "/api/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["signals"]["firing"], serde_json::json!([DEAD_LETTER_RATE]), "{health}");

    // 200 whole events later the rate is 10 in 270: under 5 %.
    deliver(&lake, 0, 46, whole(300, 200)).await;
    lake.commit().await.unwrap();
    let recovered = at(&lake, &policy, Utc::now()).await;
    assert!(!recovered.dead_letter_rate.firing, "{recovered:?}");
    let (status, health) = common::get(&server.base, "/api/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["signals"]["firing"], serde_json::json!([]));
}

/// `doctor` runs the same signals with the app's commit interval and fails on a stalled committer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_firing_signal() {
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    deliver(&lake, 0, 1, whole(0, 5)).await;
    let doctor = |interval: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
            .args(["--warehouse", &dir.path().to_string_lossy(), "doctor"])
            .env("SENTIMENT_LAKE_COMMIT_INTERVAL_SECS", interval)
            .env("SENTIMENT_LAKE_GAP_GRACE_SECS", "0")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).to_string())
    };
    let (passed, text) = doctor("300");
    assert!(passed && text.contains("[ok]   signals: no stalled commit"), "{text}");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (passed, text) = doctor("1");
    assert!(!passed && text.contains("[FAIL] signal stalled_committer: 1 staged segment(s)"), "{text}");
}
