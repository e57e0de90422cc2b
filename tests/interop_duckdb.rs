//! Independent-engine check: DuckDB (PyPI, with its iceberg extension) answers the same questions over the same
//! table with its own SQL (`tests/interop/duckdb_queries.py`), and the HTTP API's numbers agree with it.

mod common;

use std::process::Command;

use common::expected::{self, assert_close_on_shared_fields};
use common::*;
use serde_json::{json, Value};

fn duckdb(warehouse: &std::path::Path, query: &str, params: &Value) -> Value {
    let output = Command::new(python_with("duckdb"))
        .arg(format!("{}/tests/interop/duckdb_queries.py", env!("CARGO_MANIFEST_DIR")))
        .arg("--warehouse")
        .arg(warehouse)
        .args(["--query", query, "--params", &params.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "duckdb {query}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice::<Value>(&output.stdout).unwrap()["data"].take()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_agrees_with_every_endpoint() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let (from, to) = ("2026-11-17T06:00:00Z", "2026-11-19T18:00:00Z");
    let events = events(instant("2026-11-20T00:00:00Z"), 0, 2_000);
    // Two commits, so DuckDB reads a table with history, as it would in production.
    ingest(&lake, &events[..1_200]).await;
    ingest(&lake, &events[1_200..]).await;
    let server = serve(lake).await;
    let window = format!("from={from}&to={to}");
    let ticker = expected::top_tickers(&expected::select(&events, instant(from), instant(to), None), 1)[0]["ticker"].as_str().unwrap().to_string();
    let base = json!({"from": from, "to": to});
    let with = |extra: Value| {
        let mut p = base.clone();
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        p
    };

    let cases = [
        (format!("tickers?{window}&limit=6"), "top_tickers", with(json!({"limit": 6}))),
        (format!("timeseries?ticker={ticker}&interval=hour&{window}"), "timeseries", with(json!({"ticker": ticker, "interval": "hour"}))),
        (format!("timeseries?ticker={ticker}&interval=week&{window}"), "timeseries", with(json!({"ticker": ticker, "interval": "week"}))),
        (format!("summary?ticker={ticker}&{window}"), "summary", with(json!({"ticker": ticker}))),
        (format!("entities?{window}&limit=100"), "entities", with(json!({"ticker": null, "entity_type": null, "limit": 100}))),
        (
            format!("entities?ticker={ticker}&entity_type=TICKER&{window}"),
            "entities",
            with(json!({"ticker": ticker, "entity_type": "TICKER", "limit": 50})),
        ),
        (format!("aspects?ticker={ticker}&{window}"), "aspects", with(json!({"ticker": ticker}))),
        (format!("toxicity?min_toxicity=0.15&{window}&limit=20"), "toxicity", with(json!({"ticker": null, "min_toxicity": 0.15, "limit": 20}))),
        (format!("intents?{window}"), "intents", with(json!({"ticker": null}))),
    ];
    for (path, name, params) in &cases {
        let api = get_ok(&server.base, &format!("/api/sentiment/{path}")).await;
        let theirs = duckdb(dir.path(), name, params);
        assert!(theirs.as_array().is_none_or(|rows| !rows.is_empty()), "{path}: DuckDB found rows");
        assert_close_on_shared_fields(path, &api["data"], &theirs);
    }

    // Records: the same ids in the same order, page after page.
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let body = get_ok(&server.base, &format!("/api/sentiment/records?ticker={ticker}&{window}&limit=200{cursor}")).await;
        ids.extend(body["data"].as_array().unwrap().iter().map(|r| r["message_id"].clone()));
        match body["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(ids), duckdb(dir.path(), "records", &with(json!({"ticker": ticker, "source_system": null}))));
}
