//! The embedded engine against a real table: the window and ticker filters reach the Iceberg scan (so files of
//! other days and tickers are never opened), float filters are applied by DataFusion instead, and answers are
//! read at the snapshot asked for, not whatever is current.

mod common;

use arrow_array::cast::AsArray;
use chrono::Utc;
use common::expected;
use common::*;
use futures::TryStreamExt;
use iceberg::expr::Reference;
use iceberg::spec::Datum;
use sentiment_lake::engine::{EmbeddedEngine, EngineError, QueryEngine, SqlParam, SqlQuery, DEFAULT_MEMORY_LIMIT};
use sentiment_lake::lake::TableKind;

fn params(from: &str, to: &str, ticker: &str) -> Vec<SqlParam> {
    vec![SqlParam::Timestamp(instant(from)), SqlParam::Timestamp(instant(to)), SqlParam::Text(ticker.into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_and_ticker_filters_prune_the_scan() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    ingest(&lake, &events(instant("2026-11-20T00:00:00Z"), 0, 1_500)).await;
    let engine = EmbeddedEngine::new(lake.catalog(), lake.target(TableKind::Records).ident.clone(), DEFAULT_MEMORY_LIMIT).unwrap();
    let snapshot = engine.current_snapshot().await.unwrap();
    let (from, to) = ("2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z");

    let mut with_float = params(from, to, "AAPL");
    with_float.push(SqlParam::Float(0.1));
    let explain = SqlQuery {
        text: "EXPLAIN SELECT count(*) FROM sentiment_records WHERE event_timestamp >= $1 AND event_timestamp < $2 AND ticker = $3 AND toxicity_score >= CAST($4 AS FLOAT)".into(),
        params: with_float,
    };
    let batches = engine.execute(&snapshot, &explain).await.unwrap();
    let plan: String = batches
        .iter()
        .flat_map(|b| b.column(1).as_string::<i32>().iter().flatten().map(str::to_string).collect::<Vec<_>>())
        .collect::<Vec<_>>()
        .join("\n");
    let scan = plan.lines().find(|l| l.contains("IcebergParallelScan")).unwrap_or_else(|| panic!("no Iceberg scan in\n{plan}"));
    assert!(scan.contains("ticker") && scan.contains("event_timestamp"), "window and ticker are pushed down: {scan}");
    assert!(!scan.contains("toxicity_score >="), "float filters stay in DataFusion: {scan}");
    // ...and still apply.
    assert!(plan.contains("toxicity_score"), "{plan}");

    // What that predicate prunes, in Iceberg's own planner: a day of one ticker is a small share of the files.
    let table = lake.load(TableKind::Records).await.unwrap();
    let files = |predicate: Option<iceberg::expr::Predicate>| {
        let table = table.clone();
        async move {
            let mut scan = table.scan().select_all();
            if let Some(p) = predicate {
                scan = scan.with_filter(p);
            }
            scan.build().unwrap().plan_files().await.unwrap().try_collect::<Vec<_>>().await.unwrap().len()
        }
    };
    let predicate = Reference::new("event_timestamp")
        .greater_than_or_equal_to(Datum::timestamptz_micros(instant(from).timestamp_micros()))
        .and(Reference::new("event_timestamp").less_than(Datum::timestamptz_micros(instant(to).timestamp_micros())))
        .and(Reference::new("ticker").equal_to(Datum::string("AAPL")));
    let (all, pruned) = (files(None).await, files(Some(predicate)).await);
    assert!(pruned > 0 && pruned * 10 <= all, "{pruned} of {all} files planned");

    // The count through the engine equals a count from the events.
    let count = SqlQuery {
        text: "SELECT CAST(count(*) AS BIGINT) AS n FROM sentiment_records WHERE event_timestamp >= $1 AND event_timestamp < $2 AND ticker = $3"
            .into(),
        params: params(from, to, "AAPL"),
    };
    let n = engine.execute(&snapshot, &count).await.unwrap()[0].column(0).as_primitive::<arrow_array::types::Int64Type>().value(0);
    let all_events = events(instant("2026-11-20T00:00:00Z"), 0, 1_500);
    assert_eq!(n as usize, expected::select(&all_events, instant(from), instant(to), Some("AAPL")).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_the_snapshot_they_were_given() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let engine = EmbeddedEngine::new(lake.catalog(), lake.target(TableKind::Records).ident.clone(), DEFAULT_MEMORY_LIMIT).unwrap();
    let empty = engine.current_snapshot().await.unwrap();
    assert_eq!(empty.snapshot_id, None);
    let end = Utc::now();
    let all = events(end, 0, 400);
    ingest(&lake, &all[..100]).await;
    let first = engine.current_snapshot().await.unwrap();
    ingest(&lake, &all[100..]).await;
    let second = engine.current_snapshot().await.unwrap();
    assert_ne!(first, second);
    let count = SqlQuery { text: "SELECT CAST(count(*) AS BIGINT) AS n FROM sentiment_records".into(), params: vec![] };
    let n =
        |batches: Vec<arrow_array::RecordBatch>| batches.first().map_or(0, |b| b.column(0).as_primitive::<arrow_array::types::Int64Type>().value(0));
    assert_eq!(n(engine.execute(&empty, &count).await.unwrap()), 0);
    assert_eq!(n(engine.execute(&first, &count).await.unwrap()), 100);
    assert_eq!(n(engine.execute(&second, &count).await.unwrap()), 400);
    assert_eq!(n(engine.execute(&first, &count).await.unwrap()), 100, "an older snapshot stays readable");
}

/// The engine's memory pool bounds what a query may hold: a grouping that needs more than the pool fails as
/// "unavailable" (503) instead of growing the process until the instance dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_beyond_the_memory_pool_fails_cleanly() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    ingest(&lake, &events(Utc::now(), 0, 3_000)).await;
    let ident = lake.target(TableKind::Records).ident.clone();
    let grouping = SqlQuery {
        text: "SELECT message_id, text_content, count(*) AS n FROM sentiment_records GROUP BY message_id, text_content ORDER BY text_content".into(),
        params: vec![],
    };
    let tiny = EmbeddedEngine::new(lake.catalog(), ident.clone(), 64 * 1024).unwrap();
    let snapshot = tiny.current_snapshot().await.unwrap();
    match tiny.execute(&snapshot, &grouping).await {
        Err(EngineError::Unavailable(message)) => assert!(message.contains("memory"), "{message}"),
        other => panic!("expected the pool to refuse, got {:?}", other.map(|b| b.len())),
    }
    let roomy = EmbeddedEngine::new(lake.catalog(), ident, DEFAULT_MEMORY_LIMIT).unwrap();
    let rows: usize = roomy.execute(&snapshot, &grouping).await.unwrap().iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3_000);
}
