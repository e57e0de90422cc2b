//! Answers include what is staged but not yet committed (issue 33): an acknowledged event is in every
//! endpoint before any commit, counted once after it and once however often it is redelivered; server
//! processes over one warehouse agree; the tail reads from Azure storage; and four servers commit once per
//! interval between them, losing nothing when the commit lease's holder is killed.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use serde_json::Value;

/// Every event a test delivers, by partition and sequence number: the same body whenever it is
/// (re)delivered, and varied (tickers, sources, times over three days) from one event to the next.
struct Stream(Vec<Value>);

const PER_PARTITION: u64 = 1_000;

impl Stream {
    fn new(end: DateTime<Utc>) -> Self {
        Stream(events(end, 0, 5 * PER_PARTITION))
    }

    fn event(&self, partition: u64, seq: i64) -> &Value {
        &self.0[(partition * PER_PARTITION) as usize + seq as usize]
    }

    /// A window from the earliest to the latest event time of `partition`'s `first..=last`: minutes with
    /// staged rows at both edges, cut by them.
    fn edges(&self, partition: u64, first: i64, last: i64) -> (DateTime<Utc>, DateTime<Utc>) {
        let times: Vec<DateTime<Utc>> = (first..=last).map(|seq| common::expected::at(self.event(partition, seq))).collect();
        (*times.iter().min().unwrap(), *times.iter().max().unwrap())
    }
}

fn batch(stream: &Stream, partition: u64, first: i64, last: i64) -> String {
    let bodies: Vec<String> = (first..=last).map(|seq| stream.event(partition, seq).to_string()).collect();
    host_envelope(&partition.to_string(), first, &bodies, Utc::now())
}

async fn deliver(base: &str, envelope: String) {
    let (status, reply) = post(base, "IngestEvents", envelope).await;
    assert_eq!(status, 200, "{reply}");
}

/// The query strings of every endpoint over the whole generated span, and over a window whose edges cut
/// minutes holding rows (answered partly from raw rows), for `ticker`.
fn questions(ticker: &str, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Vec<String> {
    let instant = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let edges = format!("from={}&to={}", instant(from), instant(to));
    vec![
        "tickers?days=7&limit=100".into(),
        format!("tickers?{edges}&limit=100"),
        format!("timeseries?ticker={ticker}&interval=hour&days=7"),
        format!("timeseries?ticker={ticker}&interval=minute&{edges}"),
        format!("summary?ticker={ticker}&days=7"),
        format!("aspects?ticker={ticker}&days=7&limit=500"),
        "intents?days=7&limit=500".into(),
        format!("entities?{edges}&limit=500"),
        "toxicity?days=7&min_toxicity=0&limit=500".into(),
        "records?days=7&limit=1000".into(),
        format!("records?{edges}&limit=1000"),
    ]
}

async fn answers(base: &str, questions: &[String], fresh: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for q in questions {
        out.push(get_ok(base, &format!("/api/sentiment/{q}&fresh={fresh}")).await);
    }
    out
}

fn record_ids(answer: &Value) -> Vec<String> {
    answer["data"].as_array().unwrap().iter().map(|r| r["message_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_events_are_in_every_answer_before_the_commit_and_counted_once_after() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    let end = &Stream::new(Utc::now());

    // Before the table has any commit: the staged rows alone.
    deliver(&server.base, batch(end, 0, 1, 40)).await;
    let records = get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000").await;
    assert_eq!(record_ids(&records).len(), 40, "{}", records["meta"]);
    let tickers = get_ok(&server.base, "/api/sentiment/tickers?days=7&limit=100").await;
    let counted: i64 = tickers["data"].as_array().unwrap().iter().map(|t| t["message_count"].as_i64().unwrap()).sum();
    let with_ticker = records["data"].as_array().unwrap().iter().filter(|r| r["ticker"].is_string()).count() as i64;
    assert_eq!(counted, with_ticker);
    let ticker = tickers["data"][0]["ticker"].as_str().unwrap().to_string();
    let series = get_ok(&server.base, &format!("/api/sentiment/timeseries?ticker={ticker}&interval=hour&days=7")).await;
    assert!(!series["data"].as_array().unwrap().is_empty());
    let receipt = &records["meta"]["freshness"];
    assert_eq!(receipt["sources"][host_source("0")]["last_sequence"], 40, "{receipt}");
    assert_eq!(receipt["sources"][host_source("0")]["staged"], true, "{receipt}");
    assert!(records["meta"]["freshness_s"].as_f64().unwrap() < 60.0, "{}", records["meta"]);
    let unfresh = get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000&fresh=false").await;
    assert!(record_ids(&unfresh).is_empty(), "fresh=false answers from the snapshot alone");
    assert_eq!(unfresh["meta"]["freshness"]["tail"], Value::Null);

    // A committed history (answered from the rollup), then a tail above it: new batches, a batch delivered
    // twice, and a redelivery reaching below the watermark.
    deliver(&server.base, batch(end, 1, 1, 60)).await;
    server.committer.commit_now().await.unwrap();
    for envelope in [batch(end, 1, 61, 120), batch(end, 1, 61, 120), batch(end, 0, 21, 110), batch(end, 0, 41, 90)] {
        deliver(&server.base, envelope).await;
    }
    // Answers between batches: each later tail starts from the summaries an earlier one merged.
    get_ok(&server.base, "/api/sentiment/tickers?days=7").await;
    deliver(&server.base, batch(end, 2, 1, 15)).await;
    get_ok(&server.base, "/api/sentiment/tickers?days=7").await;
    deliver(&server.base, batch(end, 2, 16, 30)).await;
    let asked = questions(&ticker, end.edges(2, 1, 30));
    let fresh = answers(&server.base, &asked, true).await;
    let committed_only = answers(&server.base, &asked, false).await;
    let all = record_ids(&fresh[9]);
    assert_eq!(all.len(), 110 + 120 + 30, "every event once, however often delivered");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
    assert_eq!(record_ids(&committed_only[9]).len(), 100);
    let meta = &fresh[0]["meta"];
    assert!(meta["path"].as_str().unwrap().ends_with("+tail"), "{meta}");
    assert_eq!(meta["freshness"]["tail"]["included"], true, "{meta}");
    assert_eq!(meta["freshness"]["sources"][host_source("1")]["last_sequence"], 120, "{meta}");

    // Committed: every answer equals what it was with the tail, from the snapshot alone.
    server.committer.commit_now().await.unwrap();
    let after = answers(&server.base, &asked, false).await;
    for ((question, before), after) in asked.iter().zip(&fresh).zip(&after) {
        assert_eq!(before["data"], after["data"], "{question}: the staged answer differs from the committed one");
    }
    let again = answers(&server.base, &asked, true).await;
    for ((question, fresh), again) in asked.iter().zip(&after).zip(&again) {
        assert_eq!(fresh["data"], again["data"], "{question}: counted once after the commit");
    }
    assert_eq!(again[0]["meta"]["freshness"]["sources"][host_source("1")]["staged"], false);

    // A redelivery of committed batches adds nothing, staged or committed.
    deliver(&server.base, batch(end, 1, 1, 120)).await;
    assert_eq!(record_ids(&get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000").await).len(), 260);
    server.committer.commit_now().await.unwrap();
    assert_eq!(record_ids(&get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000").await).len(), 260);
    // A tail of clean entries only, asked over windows whose edges cut its minutes: summaries inside,
    // rows at the edges.
    deliver(&server.base, batch(end, 4, 1, 40)).await;
    let clean_questions = questions(&ticker, end.edges(4, 1, 40));
    let fresh = answers(&server.base, &clean_questions, true).await;
    server.committer.commit_now().await.unwrap();
    let after = answers(&server.base, &clean_questions, false).await;
    for ((question, before), after) in clean_questions.iter().zip(&fresh).zip(&after) {
        assert_eq!(before["data"], after["data"], "{question}: the staged answer differs from the committed one");
    }
    // An answer of a past snapshot never includes the tail.
    deliver(&server.base, batch(end, 3, 1, 5)).await;
    let snapshot = again[0]["meta"]["snapshot_id"].as_i64().unwrap();
    let past = get_ok(&server.base, &format!("/api/sentiment/records?days=7&limit=1000&as_of={snapshot}")).await;
    assert_eq!(record_ids(&past).len(), 260);
    assert_eq!(record_ids(&get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000").await).len(), 305);
    let (status, _) = get(&server.base, &format!("/api/sentiment/records?days=7&as_of={snapshot}&fresh=true")).await;
    assert_eq!(status, 400);
}

/// A rollback's awaited range is not shown as present: what the live stream stages above it waits, in
/// answers as in commits, until the replay brings the range back; then everything counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollbacks_awaited_range_is_not_shown_until_its_replay() {
    let dir = warehouse();
    // A short gap grace: only the awaited range, not a young gap, can be what holds the stream back.
    let grace = Duration::from_millis(300);
    let mut config = config(dir.path());
    config.commit_policy.pass.gap_grace = grace;
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let server = serve(lake.clone()).await;
    let end = &Stream::new(Utc::now());
    let records = |base: String| async move { record_ids(&get_ok(&base, "/api/sentiment/records?days=7&limit=1000").await) };
    deliver(&server.base, batch(end, 0, 1, 100)).await;
    server.committer.commit_now().await.unwrap();
    let first = lake.load(sentiment_lake::lake::TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    deliver(&server.base, batch(end, 0, 101, 200)).await;
    server.committer.commit_now().await.unwrap();
    // Staged before the rollback and reaching past its range.
    deliver(&server.base, batch(end, 0, 190, 210)).await;
    lake.rollback(sentiment_lake::lake::TableKind::Records, first).await.unwrap().unwrap();
    deliver(&server.base, batch(end, 0, 211, 300)).await;
    tokio::time::sleep(grace * 2).await;
    assert_eq!(records(server.base.clone()).await.len(), 100, "101..=200 is awaited: nothing above it is shown, however old");

    deliver(&server.base, batch(end, 0, 101, 200)).await;
    let fresh = records(server.base.clone()).await;
    assert_eq!((fresh.len(), fresh.iter().collect::<BTreeSet<_>>().len()), (300, 300), "the replay brings the range back, each event once");
    server.committer.commit_now().await.unwrap();
    let committed = record_ids(&get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000&fresh=false").await);
    assert_eq!(committed, fresh, "the commit takes exactly what the answers showed");
}

fn server_process(dir: &std::path::Path, catalog: &str, port: u16, interval_secs: u64) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir)
        .args(["--catalog-uri", catalog, "serve", "--port", &port.to_string(), "--commit-interval-secs", &interval_secs.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

async fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client().get(format!("{base}/api/health")).send().await.map_or(true, |r| r.status() != 200) {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `base` until its records answer holds `count` rows.
async fn until_visible(base: &str, count: usize) -> Duration {
    let started = Instant::now();
    loop {
        let answer = get_ok(base, "/api/sentiment/records?days=7&limit=1000").await;
        if record_ids(&answer).len() == count {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{base} shows {} rows, not {count}", record_ids(&answer).len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_over_one_warehouse_agree_before_any_commit() {
    let dir = warehouse();
    let catalog = common::postgres::fresh_catalog().await;
    let (a, b) = (free_port(), free_port());
    let _servers = [server_process(dir.path(), &catalog, a, 3600), server_process(dir.path(), &catalog, b, 3600)];
    let (a, b) = (format!("http://127.0.0.1:{a}"), format!("http://127.0.0.1:{b}"));
    wait_healthy(&a).await;
    wait_healthy(&b).await;
    let end = &Stream::new(Utc::now());
    deliver(&a, batch(end, 0, 1, 50)).await;
    let waited = until_visible(&b, 50).await;
    assert!(waited < Duration::from_secs(5), "visible on the other instance after {waited:?}");
    deliver(&b, batch(end, 1, 1, 25)).await;
    until_visible(&a, 75).await;
    until_visible(&b, 75).await;
    let ticker = get_ok(&a, "/api/sentiment/tickers?days=7").await["data"][0]["ticker"].as_str().unwrap().to_string();
    for question in questions(&ticker, end.edges(0, 1, 50)) {
        let (from_a, from_b) = (get_ok(&a, &format!("/api/sentiment/{question}")).await, get_ok(&b, &format!("/api/sentiment/{question}")).await);
        assert_eq!(from_a["data"], from_b["data"], "{question}");
        assert_eq!(from_a["meta"]["freshness"]["sources"], from_b["meta"]["freshness"]["sources"], "{question}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_on_azure_storage_is_answered_and_committed_once() {
    let azurite = common::azurite::Azurite::start();
    azurite.create_container("lake").await;
    let mut config = sentiment_lake::lake::LakeConfig::local(common::azurite::Azurite::url("lake", "warehouse"));
    config.catalog_uri = Some(common::postgres::fresh_catalog().await);
    config.storage.azure.connection_string = Some(azurite.connection_string());
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let server = serve(lake.clone()).await;
    let end = &Stream::new(Utc::now());
    deliver(&server.base, batch(end, 0, 1, 30)).await;
    server.committer.commit_now().await.unwrap();
    deliver(&server.base, batch(end, 0, 31, 70)).await;
    deliver(&server.base, batch(end, 0, 31, 70)).await;
    let fresh = get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000").await;
    assert_eq!(record_ids(&fresh).len(), 70, "{}", fresh["meta"]);
    let tickers = get_ok(&server.base, "/api/sentiment/tickers?days=7&limit=100").await;
    server.committer.commit_now().await.unwrap();
    let committed = get_ok(&server.base, "/api/sentiment/tickers?days=7&limit=100&fresh=false").await;
    assert_eq!(tickers["data"], committed["data"]);
    assert_eq!(record_ids(&get_ok(&server.base, "/api/sentiment/records?days=7&limit=1000&fresh=false").await).len(), 70);
    // Summaries go with their segments.
    assert!(lake.pending(sentiment_lake::lake::TableKind::Records).await.unwrap().summaries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_servers_commit_once_per_interval_and_lose_nothing_when_the_lease_holder_dies() {
    const INTERVAL_SECS: u64 = 2;
    let dir = warehouse();
    let catalog = common::postgres::fresh_catalog().await;
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let mut servers: Vec<Option<Killed>> = Vec::new();
    // Started a quarter interval apart: committers out of phase, as instances of a scaled-out app are
    // (in phase, all but one would find nothing left to commit, lease or not).
    for (port, base) in ports.iter().zip(&bases) {
        servers.push(Some(server_process(dir.path(), &catalog, *port, INTERVAL_SECS)));
        wait_healthy(base).await;
        tokio::time::sleep(Duration::from_millis(INTERVAL_SECS * 1000 / 4)).await;
    }
    let end = &Stream::new(Utc::now());
    let started = Utc::now();
    let mut next: HashMap<u64, i64> = HashMap::new();
    let mut acknowledged = 0usize;
    let mut killed = None;
    let run = Instant::now();
    let mut round = 0u64;
    while run.elapsed() < Duration::from_secs(16) {
        round += 1;
        let partition = round % 4;
        let first = *next.entry(partition).or_insert(1);
        let alive: Vec<usize> = (0..4).filter(|i| servers[*i].is_some()).collect();
        let base = &bases[alive[round as usize % alive.len()]];
        let (status, _) = post(base, "IngestEvents", batch(end, partition, first, first + 4)).await;
        if status == 200 {
            acknowledged += 5;
            next.insert(partition, first + 5);
        }
        if killed.is_none() && run.elapsed() > Duration::from_secs(7) {
            for i in 0..4 {
                let (_, health) = get(&bases[i], "/api/health").await;
                if health["commits"]["leader"] == true {
                    let mut server = servers[i].take().unwrap();
                    server.0.kill().unwrap();
                    server.0.wait().unwrap();
                    killed = Some(i);
                    break;
                }
            }
            assert!(killed.is_some(), "one server holds the commit lease");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = Utc::now();
    // The lease lapses (three heartbeats), another server takes it over and commits what is staged.
    let mut config = config(dir.path());
    config.catalog_uri = Some(catalog.clone());
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = scan(&lake, sentiment_lake::lake::TableKind::Records).await;
        if rows.num_rows() >= acknowledged || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let ids = sorted(&rows, "message_id");
    assert!(counts(&ids).values().all(|&n| n == 1), "a row was committed twice");
    assert_eq!(ids.len(), acknowledged, "every acknowledged event is committed, by the servers themselves");
    let table = lake.load(sentiment_lake::lake::TableKind::Records).await.unwrap();
    let appends = table
        .metadata()
        .snapshots()
        .filter(|s| s.timestamp_ms() >= started.timestamp_millis() && s.timestamp_ms() <= stopped.timestamp_millis())
        .count() as u64;
    let intervals = (stopped - started).num_seconds() as u64 / INTERVAL_SECS;
    // Four committers without a lease would make up to four snapshots an interval.
    assert!(appends <= intervals + 3, "{appends} snapshots in {intervals} intervals");
    assert!(appends >= intervals / 2, "the holder commits every interval: {appends} snapshots in {intervals} intervals");
}
