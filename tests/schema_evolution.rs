//! Schema evolution: `schema add-column` adds an optional column; ingestion, queries and commits keep
//! working on the evolved table, a record carrying the new field fills it (one of another type is refused
//! with the field named), and PyIceberg and DuckDB read the column back.

mod common;

use common::*;
use sentiment_lake::lake::TableKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_column_is_filled_by_records_and_read_by_other_engines() {
    let dir = warehouse();
    let end = instant("2026-11-20T00:00:00Z");
    let lake = open(dir.path()).await;
    ingest(&lake, &events(end, 0, 100)).await;

    let added = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(dir.path())
        .args(["schema", "add-column", "--name", "analyst_rating", "--type", "string", "--doc", "Sell-side rating quoted in the message"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!((added["field_id"].as_i64(), added["schema_id"].as_i64()), (Some(31), Some(1)), "after the seed's ids 1-30: {added}");

    // Another process: its view of the table's columns is fresh.
    let lake = open(dir.path()).await;
    let mut batch = events(end, 100, 60);
    for (i, event) in batch.iter_mut().enumerate() {
        if i % 3 == 0 {
            event["analyst_rating"] = serde_json::json!(if i % 2 == 0 { "buy" } else { "hold" });
        }
    }
    batch[1]["analyst_rating"] = serde_json::json!(5);
    let ndjson: Vec<u8> = batch.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let source = sentiment_lake::ingest::file::batch_from_file(&ndjson, "evolved", None).unwrap();
    let report = sentiment_lake::ingest::Pipeline::new(sentiment_lake::enrich::IncompletePolicy::DeadLetter).ingest(&lake, &source).await.unwrap();
    assert_eq!((report.staged_rows, report.dead_lettered), (59, 1), "the record with a number for a string column is refused");
    lake.commit().await.unwrap();
    let dead = scan(&lake, TableKind::DeadLetters).await;
    assert_eq!(strings(&dead, "error_field"), vec![Some("analyst_rating".to_string())]);

    let read = pyiceberg_column(dir.path(), "analyst_rating");
    let expected = serde_json::json!({"buy": 10, "hold": 10, "null": 139});
    assert_eq!(read["pyiceberg"], expected, "PyIceberg: {read}");
    assert_eq!(read["duckdb"], expected, "DuckDB: {read}");
    assert_eq!(read["field_id"], 31);
    assert_eq!(read["doc"], "Sell-side rating quoted in the message");

    // Queries keep working on the evolved table.
    let server = serve(lake.clone()).await;
    let records = get_ok(&server.base, "/api/sentiment/records?from=2026-11-01&to=2026-11-21&limit=1000").await;
    assert_eq!(records["data"].as_array().unwrap().len(), 159);
    let tickers = get_ok(&server.base, "/api/sentiment/tickers?from=2026-11-01&to=2026-11-21").await;
    assert_eq!(tickers["data"].as_array().unwrap().iter().map(|t| t["message_count"].as_i64().unwrap()).sum::<i64>(), 159);

    // Refusals.
    let again = lake.add_column("analyst_rating", sentiment_lake::schema::extension::ColumnType::Long, None).await.unwrap_err();
    assert!(again.to_string().contains("already has a column"), "{again}");
    let bad = lake.add_column("drop table", sentiment_lake::schema::extension::ColumnType::Long, None).await.unwrap_err();
    assert!(bad.to_string().contains("letters, digits and underscores"), "{bad}");
}

fn pyiceberg_column(warehouse: &std::path::Path, column: &str) -> serde_json::Value {
    use sentiment_lake::lake::LakeConfig;
    let output = std::process::Command::new(python_with("duckdb"))
        .arg(format!("{}/tests/interop/evolved_column.py", env!("CARGO_MANIFEST_DIR")))
        .arg(warehouse)
        .arg(LakeConfig::DEFAULT_CATALOG_NAME)
        .arg(format!("{}.{}", LakeConfig::DEFAULT_NAMESPACE, LakeConfig::DEFAULT_TABLE))
        .arg(column)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}
