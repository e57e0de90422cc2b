//! The quality profile per commit (issue #36) on a real lake: each commit appends one row per source to the
//! `sentiment_quality` table (rows, duplicates, dead letters by rule and field, lateness, future-dated events,
//! nulls, score histograms per producer and model version) and counts it in the metrics; a producer that
//! switches to a 0-100 scale and a model version whose scores move each raise their signal at the first
//! evaluation after the commit and clear after; the dashboard's quality panel shows what `/api/quality` says
//! (its screenshot is `docs/quality-panel.png`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::Lake;
use sentiment_lake::maintain::signals::{signals, SignalPolicy, DEAD_LETTER_RATE, SCORE_DRIFT};
use sentiment_lake::quality::{Distribution, DistributionKey, DriftPolicy, QualityRow, SourceProfile};
use sentiment_lake::storage::faults::{Fault, FaultPlan, FaultRule, Op};
use serde_json::{json, Value};

fn partition(n: u32) -> String {
    format!("eventhubs://quality.servicebus.windows.net/hub/$Default/{n}")
}

/// Delivers `bodies` as one Event Hubs batch of `source`, sequence numbers from `first`, all enqueued at
/// `enqueued`.
async fn deliver(lake: &Lake, source: &str, first: i64, bodies: &[Value], enqueued: DateTime<Utc>) {
    let events = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| SourceEvent { enqueued_time: Some(enqueued), ..SourceEvent::new(first + i as i64, Bytes::from(body.to_string())) })
        .collect();
    let batch = SourceBatch { source: source.to_string(), invocation_id: None, events };
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, &batch).await.unwrap();
}

/// `count` valid events of producer `system` scored by `model`/`version`, each score from `score(i)`,
/// `late` before `enqueued`.
fn events(
    first: u64,
    count: u64,
    system: &str,
    model: Option<&str>,
    version: &str,
    score: impl Fn(u64) -> f64,
    event_at: DateTime<Utc>,
) -> Vec<Value> {
    common::events(Utc::now(), first, count)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["source_system"] = json!(system);
            e["model_name"] = model.map_or(Value::Null, |m| json!(m));
            e["processing_version"] = json!(version);
            e["sentiment_score"] = json!(score(i as u64));
            e["event_timestamp"] = json!(event_at.to_rfc3339());
            e
        })
        .collect()
}

/// A lake whose storage fails as the returned plan says (nothing until rules are added).
async fn faulted_lake(dir: &std::path::Path, configure: impl FnOnce(&mut sentiment_lake::lake::LakeConfig)) -> (Lake, std::sync::Arc<FaultPlan>) {
    let plan = FaultPlan::new(7);
    let mut config = common::config(dir);
    config.storage.layer = Some(sentiment_lake::storage::StoreLayer::faults(plan.clone()));
    configure(&mut config);
    (Lake::open(&config).await.unwrap(), plan)
}

async fn quality_rows(lake: &Lake) -> Vec<QualityRow> {
    let mut rows = Vec::new();
    lake.quality_rows(Utc::now() - chrono::Duration::days(1), |row| rows.push(row)).await.unwrap();
    rows.sort_by(|a, b| (a.profiled_at, &a.source).cmp(&(b.profiled_at, &b.source)));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_commit_profiles_its_sources_into_the_quality_table_and_the_metrics() {
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    // Started first: it installs the metrics recorder, as `serve` does before anything is recorded.
    let server = common::serve(lake.clone()).await;
    let enqueued = Utc::now();
    let second = |s: i64| chrono::Duration::seconds(s);
    let mut batch = events(0, 10, "newswire", Some("vader"), "3.3.2", |_| 0.55, enqueued - second(2));
    batch.extend(events(10, 5, "newswire", Some("vader"), "3.3.2", |_| -0.35, enqueued - second(2 * 3600)));
    batch.extend(events(15, 2, "newswire", Some("vader"), "3.3.2", |_| 0.05, enqueued + second(600)));
    batch.extend(events(17, 3, "newswire", Some("vader"), "3.3.2", |_| 57.0, enqueued));
    batch.push(json!("not a record"));
    deliver(&lake, &partition(0), 1, &batch, enqueued).await;
    // The first five again (a redelivery), and another partition whose producer names no model.
    deliver(&lake, &partition(0), 1, &batch[..5], enqueued).await;
    deliver(&lake, &partition(1), 1, &events(30, 4, "forum", None, "2", |_| -0.95, enqueued - second(40)), enqueued).await;
    let reports = lake.commit().await.unwrap();
    assert_eq!((reports[0].rows_committed, reports[0].duplicates_dropped), (21, 5));

    let rows = quality_rows(&lake).await;
    assert_eq!(rows.len(), 2, "one row per source: {rows:?}");
    assert!(rows.iter().all(|r| r.commit_id == reports[0].commit_id.clone().unwrap() && r.snapshot_id == reports[0].snapshot_id));
    let p = &rows.iter().find(|r| r.source == partition(0)).unwrap().profile;
    assert_eq!((p.rows, p.duplicates, p.dead_letters, p.future_dated), (17, 5, 4, 2));
    assert_eq!(p.dead_letters_by_rule.get("validation"), Some(&3), "{p:?}");
    assert_eq!(p.dead_letters_by_rule.get("decode"), Some(&1), "{p:?}");
    assert_eq!(p.dead_letters_by_field.get("sentiment_score"), Some(&3), "{p:?}");
    assert_eq!((p.lateness[1], p.lateness[7], p.lateness.iter().sum::<u64>()), (10, 5, 15), "2 s and 2 h late: {:?}", p.lateness);
    let vader =
        &p.distributions[&DistributionKey { source_system: "newswire".into(), model_name: Some("vader".into()), processing_version: "3.3.2".into() }];
    assert_eq!((vader.rows, vader.scores[15], vader.scores[6], vader.scores[10]), (17, 10, 5, 2), "{vader:?}");
    let forum = &rows.iter().find(|r| r.source == partition(1)).unwrap().profile;
    assert_eq!((forum.rows, forum.lateness[3], forum.nulls["model_name"]), (4, 4, 4), "{forum:?}");
    assert_eq!(forum.distributions.keys().next().unwrap().model_name, None);

    // A commit with nothing new adds no row.
    lake.commit().await.unwrap();
    assert_eq!(quality_rows(&lake).await.len(), 2);

    let quality = common::get_ok(&server.base, "/api/quality?hours=1&bucket=60").await;
    let points = quality["data"]["points"].as_array().unwrap();
    let sum = |key: &str| points.iter().map(|p| p[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("rows"), sum("dead_letters"), sum("duplicates"), sum("late"), sum("future_dated")), (21, 4, 5, 5, 2), "{quality}");
    assert_eq!(quality["data"]["dead_letters_by_field"]["sentiment_score"], 3);
    assert_eq!(quality["drift"]["distributions"].as_array().unwrap().len(), 2, "{quality}");
    assert!(quality["drift"]["distributions"].as_array().unwrap().iter().all(|d| d["psi"].is_null()), "too few rows to judge: {quality}");
    assert_eq!(common::get(&server.base, "/api/quality?hours=0").await.0, 400);
    assert_eq!(common::get(&server.base, "/api/quality?hours=168&bucket=60").await.0, 400, "10,080 buckets");
    let metrics = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    for line in [
        "sentiment_lake_quality_dead_letters_total{rule=\"validation\"}",
        "sentiment_lake_quality_dead_letter_fields_total{field=\"sentiment_score\"}",
        "sentiment_lake_quality_score_bucket{model=\"vader/3.3.2\",le=\"0.6\"}",
        "sentiment_lake_quality_lateness_seconds_bucket{le=\"5\"}",
        "sentiment_lake_quality_future_dated_total",
    ] {
        assert!(metrics.contains(line), "{line} is exported");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_switching_to_a_0_100_scale_fires_the_dead_letter_rate_and_the_profile_names_the_field() {
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    let policy = SignalPolicy { interval: Duration::from_secs(1), dead_letter_min_events: 10, ..Default::default() };
    let now = Utc::now;
    let on_scale = |first: u64, count: u64| events(first, count, "newswire", Some("finbert"), "1.3", |i| (i % 21) as f64 / 10.0 - 1.0, now());
    deliver(&lake, &partition(0), 1, &on_scale(0, 100), now()).await;
    lake.commit().await.unwrap();
    assert!(signals(&lake, &policy, now()).await.unwrap().firing.is_empty());

    // The same scores sent as 0..100: all but those at 0 and 1 break the [-1, 1] rule.
    let hundred = events(100, 40, "newswire", Some("finbert"), "1.3", |i| ((i % 21) as f64 / 10.0 - 1.0) * 50.0 + 50.0, now());
    deliver(&lake, &partition(0), 101, &hundred, now()).await;
    lake.commit().await.unwrap();
    let fired = signals(&lake, &policy, now()).await.unwrap();
    assert!(fired.firing.contains(&DEAD_LETTER_RATE), "at the first evaluation after the commit: {fired:?}");
    let last = quality_rows(&lake).await.pop().unwrap();
    assert_eq!(last.profile.dead_letters_by_field.get("sentiment_score"), Some(&last.profile.dead_letters), "{last:?}");
    assert!(last.profile.dead_letters >= 36, "{last:?}");

    // The producer is fixed: the rate falls under 5 % of the window and the signal clears.
    deliver(&lake, &partition(0), 141, &on_scale(140, 800), now()).await;
    lake.commit().await.unwrap();
    let cleared = signals(&lake, &policy, now()).await.unwrap();
    assert!(!cleared.dead_letter_rate.firing, "{cleared:?}");
}

/// A model version's usual scores, and the same version's scores after they moved.
const USUAL: &[(f64, u64)] = &[(-0.55, 2), (-0.05, 5), (0.05, 6), (0.45, 3)];
const MOVED: &[(f64, u64)] = &[(-0.05, 2), (0.35, 4), (0.65, 6), (0.85, 4)];
const STEADY: &[(f64, u64)] = &[(0.05, 1), (0.25, 1), (-0.25, 1)];

/// Scores whose histogram has the shape `weights` (score, weight).
fn shaped(weights: &[(f64, u64)]) -> impl Fn(u64) -> f64 + '_ {
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    move |i| {
        let mut at = i % total;
        for (score, weight) in weights {
            if at < *weight {
                return *score;
            }
            at -= weight;
        }
        0.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_version_whose_scores_move_fires_score_drift_and_it_clears_once_the_new_shape_is_the_baseline() {
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    // The spans are cut from the commits' own profile times, so a slow machine moves them, not the result:
    // "today" holds the last commit alone, "the week before" the one before it.
    // "Today" begins halfway between the last two commits, "the week before" halfway between the two
    // before (or a whole gap back when there is no third).
    let spans = |before: Option<DateTime<Utc>>, previous: DateTime<Utc>, last: DateTime<Utc>| {
        let gap = (last - previous).to_std().unwrap();
        let earlier = before.map_or(gap, |before| (previous - before).to_std().unwrap());
        let drift = DriftPolicy { window: gap / 2, baseline: gap / 2 + earlier / 2, threshold: 0.2, min_rows: 100 };
        (SignalPolicy { interval: Duration::from_secs(1), drift, ..Default::default() }, last)
    };
    let commit = |first: i64, shape: &'static [(f64, u64)]| {
        let lake = lake.clone();
        async move {
            let batch = events(first as u64, 240, "newswire", Some("vader"), "3.4.0", shaped(shape), Utc::now());
            deliver(&lake, &partition(0), first, &batch, Utc::now()).await;
            // An unchanged producer beside it never drifts.
            deliver(&lake, &partition(1), first, &events(first as u64, 240, "forum", Some("vader"), "3.3.2", shaped(STEADY), Utc::now()), Utc::now())
                .await;
            lake.commit().await.unwrap();
            quality_rows(&lake).await.last().unwrap().profiled_at
        }
    };
    let first = commit(1, USUAL).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let moved = commit(241, MOVED).await;
    let (policy, now) = spans(None, first, moved);
    let fired = signals(&lake, &policy, now).await.unwrap();
    assert!(fired.firing.contains(&SCORE_DRIFT), "at the first evaluation after the commit: {fired:?}");
    let top = &fired.score_drift.distributions[0];
    assert_eq!((top.key.source_system.as_str(), top.firing, top.current_rows, top.baseline_rows), ("newswire", true, 240, 240), "{fired:?}");
    assert!(top.psi.unwrap() > 1.0, "{top:?}");
    let forum = fired.score_drift.distributions.iter().find(|d| d.key.source_system == "forum").unwrap();
    assert!(!forum.firing && forum.psi.unwrap() < 0.05, "{forum:?}");

    // The model keeps its new shape: once the week before has it too, nothing has moved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = commit(481, MOVED).await;
    let (policy, now) = spans(Some(first), moved, settled);
    let cleared = signals(&lake, &policy, now).await.unwrap();
    assert!(!cleared.score_drift.firing, "{cleared:?}");
    assert!(cleared.score_drift.distributions.iter().all(|d| d.psi.is_some() && d.baseline_rows == 240), "{cleared:?}");

    // Health shows it (and stays ok: drift is judged by the alert rules, docs/quality.md).
    let server = common::serve_state(lake.clone(), |state| state.signals.interval = Duration::from_secs(1)).await;
    let (status, health) = common::get(&server.base, "/api/health").await;
    assert_eq!(status, 200, "{health}");
    assert!(health["signals"]["score_drift"]["distributions"].as_array().is_some_and(|d| d.len() == 2), "{health}");
}

/// A quality row of `system`'s `model`, appended as a commit long ago would have: scores in `bins`
/// (bin, rows), dead letters on `sentiment_score`.
fn past_row(at: DateTime<Utc>, source: &str, system: &str, model: Option<&str>, version: &str, bins: &[(usize, u64)], dead: u64) -> QualityRow {
    let mut distribution = Distribution::default();
    for &(bin, n) in bins {
        distribution.scores[bin] += n;
        distribution.rows += n;
    }
    let key = DistributionKey { source_system: system.into(), model_name: model.map(Into::into), processing_version: version.into() };
    let mut profile = SourceProfile { rows: distribution.rows, dead_letters: dead, ..SourceProfile::default() };
    if dead > 0 {
        profile.dead_letters_by_rule.insert("validation".into(), dead);
        profile.dead_letters_by_field.insert("sentiment_score".into(), dead);
    }
    profile.lateness[2] = distribution.rows;
    profile.distributions.insert(key, distribution);
    QualityRow { profiled_at: at, commit_id: uuid::Uuid::new_v4().to_string(), snapshot_id: None, source: source.into(), profile }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_quality_panel_shows_what_the_api_says() {
    let Some(browser) = common::browser_dir() else { return };
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    // The week before: profiles of the usual shape, as commits 50 to 20 minutes ago left them. Today: two
    // real commits of the moved shape (and of an unchanged producer), through the pipeline.
    let usual_bins = [(4, 25), (9, 62), (10, 75), (14, 38)];
    let mut past = Vec::new();
    for minutes in [50, 45, 40, 35, 30, 25, 20] {
        let at = Utc::now() - chrono::Duration::minutes(minutes);
        past.push(past_row(at, &partition(0), "newswire", Some("vader"), "3.4.0", &usual_bins, (minutes as u64 / 5) % 4));
        past.push(past_row(at, &partition(1), "forum", None, "2", &[(10, 50), (12, 50), (7, 50)], 0));
    }
    sentiment_lake::lake::commit::append_quality(lake.handle(sentiment_lake::lake::TableKind::Quality), lake.policy(), &past).await.unwrap();
    let mut next = [1i64, 1];
    for round in 0..2u64 {
        let mut batch = events(1000 * round, 200, "newswire", Some("vader"), "3.4.0", shaped(MOVED), Utc::now() - chrono::Duration::seconds(400));
        batch.extend(events(1000 * round + 200, 12, "newswire", Some("vader"), "3.4.0", |_| 42.0, Utc::now()));
        deliver(&lake, &partition(0), next[0], &batch, Utc::now()).await;
        deliver(&lake, &partition(1), next[1], &events(1000 * round + 300, 150, "forum", None, "2", shaped(STEADY), Utc::now()), Utc::now()).await;
        lake.commit().await.unwrap();
        next = [next[0] + batch.len() as i64, next[1] + 150];
    }
    let drift = DriftPolicy { window: Duration::from_secs(600), baseline: Duration::from_secs(3600), threshold: 0.2, min_rows: 100 };
    let server = common::serve_state(lake.clone(), |state| state.signals.drift = drift).await;
    let artifacts = format!("{}/target/test-artifacts", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = format!("{artifacts}/quality-panel.png");
    let node = Command::new("node")
        .arg(format!("{}/tests/browser/quality.mjs", env!("CARGO_MANIFEST_DIR")))
        .arg(&server.base)
        .arg(&screenshot)
        .env("SENTIMENT_LAKE_BROWSER", &browser)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed");
    let (status, line) = tokio::task::spawn_blocking(move || {
        let mut node = node;
        let mut line = String::new();
        BufReader::new(node.stdout.take().unwrap()).read_line(&mut line).unwrap();
        (node.wait().unwrap(), line)
    })
    .await
    .unwrap();
    let shown: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert!(status.success() && shown["failures"].as_array().is_some_and(|f| f.is_empty()), "{shown}");
    assert!(shown["drifting"].as_array().is_some_and(|d| d.iter().any(|m| m == "newswire")), "the moved model shows as drifting: {shown}");
    assert!(std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000), "a screenshot was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_compacts_the_quality_tables_small_files_and_keeps_its_rows() {
    let dir = common::warehouse();
    let lake = common::open(dir.path()).await;
    for round in 0..6i64 {
        deliver(
            &lake,
            &partition(0),
            1 + 20 * round,
            &events(20 * round as u64, 20, "newswire", Some("vader"), "1", |_| 0.1, Utc::now()),
            Utc::now(),
        )
        .await;
        lake.commit().await.unwrap();
    }
    let before = quality_rows(&lake).await;
    assert_eq!(before.len(), 6);
    let report = sentiment_lake::maintain::run(&lake, &sentiment_lake::maintain::MaintenancePolicy::default()).await.unwrap();
    let compaction = report.quality.and_then(|q| q.compaction).expect("the quality table is maintained");
    assert_eq!((compaction.files_rewritten, compaction.files_written), (6, 1), "{compaction:?}");
    assert_eq!(quality_rows(&lake).await, before, "the same rows, in one file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quality_table_that_cannot_be_written_never_fails_or_holds_up_a_commit() {
    let dir = common::warehouse();
    let (lake, plan) = faulted_lake(dir.path(), |_| {}).await;
    plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("sentiment_quality/"));
    deliver(&lake, &partition(0), 1, &events(0, 20, "newswire", Some("vader"), "1", |_| 0.1, Utc::now()), Utc::now()).await;
    let started = std::time::Instant::now();
    let reports = lake.commit().await.unwrap();
    assert_eq!(reports[0].rows_committed, 20, "the records are committed");
    assert!(started.elapsed() < sentiment_lake::lake::QUALITY_APPEND_TIMEOUT + Duration::from_secs(5), "{:?}", started.elapsed());
    plan.heal();
    assert!(quality_rows(&lake).await.is_empty(), "that profile is lost, and said so in the log and metrics");
    deliver(&lake, &partition(0), 21, &events(20, 10, "newswire", Some("vader"), "1", |_| 0.1, Utc::now()), Utc::now()).await;
    lake.commit().await.unwrap();
    let rows = quality_rows(&lake).await;
    assert_eq!((rows.len(), rows[0].profile.rows), (1, 10), "the next commit is profiled: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_commit_that_fails_after_the_records_landed_keeps_their_profile() {
    let dir = common::warehouse();
    let (lake, plan) = faulted_lake(dir.path(), |config| config.commit_policy.max_attempts = 2).await;
    let mut batch = events(0, 12, "newswire", Some("vader"), "1", |_| 0.3, Utc::now());
    batch.extend(events(12, 3, "newswire", Some("vader"), "1", |_| 9.0, Utc::now()));
    deliver(&lake, &partition(0), 1, &batch, Utc::now()).await;
    plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("sentiment_dead_letter/"));
    assert!(lake.commit().await.is_err(), "the dead letters cannot be committed");
    plan.heal();
    let rows = quality_rows(&lake).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let records = lake.committed_state(sentiment_lake::lake::TableKind::Records).await.unwrap();
    assert_eq!((rows[0].profile.rows, rows[0].profile.dead_letters), (12, 0), "the records' profile, dead letters not yet");
    assert!(records.contains_commit(&rows[0].commit_id), "named by the records commit");
    lake.commit().await.unwrap();
    let rows = quality_rows(&lake).await;
    assert_eq!((rows.len(), rows[1].profile.rows, rows[1].profile.dead_letters), (2, 0, 3), "the dead letters at the next commit: {rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_quality_table_leaves_drift_unknown_and_the_other_signals_judged() {
    let dir = common::warehouse();
    let (lake, plan) = faulted_lake(dir.path(), |_| {}).await;
    let policy = SignalPolicy { interval: Duration::from_secs(1), dead_letter_min_events: 10, ..Default::default() };
    let mut batch = events(0, 20, "newswire", Some("vader"), "1", |_| 0.3, Utc::now());
    batch.extend(events(20, 10, "newswire", Some("vader"), "1", |_| 9.0, Utc::now()));
    deliver(&lake, &partition(0), 1, &batch, Utc::now()).await;
    lake.commit().await.unwrap();
    plan.add(FaultRule::new(Op::Get, Fault::Fail, 1.0).on_paths("sentiment_quality/"));
    let judged = signals(&lake, &policy, Utc::now()).await.unwrap();
    assert!(judged.score_drift.unknown.is_some() && !judged.score_drift.firing, "{judged:?}");
    assert!(judged.firing.contains(&DEAD_LETTER_RATE), "the others are judged: {judged:?}");
    plan.heal();
    let healed = signals(&lake, &policy, Utc::now()).await.unwrap();
    assert_eq!((healed.score_drift.unknown.as_deref(), healed.score_drift.distributions.len()), (None, 1), "{healed:?}");
}
