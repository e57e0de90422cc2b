//! Independent-reader check: PyIceberg (installed by scripts/setup-python.sh) opens the SQL catalog and
//! reads back what the Rust writer committed: schema field ids and types, partition spec, snapshot ledger
//! and every row's values.

mod common;

use common::*;
use sentiment_lake::lake::{LakeConfig, COMMIT_ID_PROPERTY, WATERMARKS_PROPERTY};
use serde_json::Value;

/// The string-wrapped and the mixed fixture batches through the real server (dead-letter policy), committed:
/// five rows and three dead letters.
async fn ingest_the_fixtures(warehouse: &std::path::Path) {
    let lake = open(warehouse).await;
    let server = serve_with(lake.clone(), sentiment_lake::enrich::IncompletePolicy::DeadLetter).await;
    assert_eq!(post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await.0, 200);
    assert_eq!(post(&server.base, "IngestEvents", fixture("eventhub-batch-mixed.json")).await.0, 200);
    lake.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyiceberg_reads_schema_spec_ledger_and_rows() {
    let dir = warehouse();
    ingest_the_fixtures(dir.path()).await;

    let seen = read_with_pyiceberg(dir.path(), LakeConfig::DEFAULT_TABLE);
    assert_eq!(seen["format_version"], 2);
    let fields: Vec<(i64, String, String, bool)> = seen["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (f["id"].as_i64().unwrap(), f["name"].as_str().unwrap().into(), f["type"].as_str().unwrap().into(), f["required"].as_bool().unwrap())
        })
        .collect();
    let expected: Vec<(i64, &str, &str, bool)> = vec![
        (1, "message_id", "string", true),
        (2, "event_timestamp", "timestamptz", true),
        (3, "ingestion_timestamp", "timestamptz", true),
        (4, "source_system", "string", true),
        (5, "text_content", "string", true),
        (6, "sentiment_score", "float", true),
        (7, "sentiment_magnitude", "float", true),
        (8, "primary_emotion", "string", true),
        (9, "emotion_intensity_vector", "map<string, float>", false),
        (10, "aspect_target_identification", "list<string>", false),
        (11, "aspect_based_sentiment", "map<string, float>", false),
        (12, "sarcasm_detection", "boolean", true),
        (13, "subjectivity_score", "float", true),
        (14, "toxicity_score", "float", true),
        (15, "entity_recognition", "list<struct<29: text: required string, 30: type: required string>>", false),
        (16, "user_intent", "string", true),
        (17, "influence_score", "float", false),
        (18, "processing_version", "string", true),
        (19, "ticker", "string", false),
        (20, "article_title", "string", false),
        (21, "source_url", "string", false),
        (22, "model_name", "string", false),
    ];
    let expected: Vec<(i64, String, String, bool)> = expected.into_iter().map(|(i, n, t, r)| (i, n.into(), t.into(), r)).collect();
    assert_eq!(fields, expected);
    assert_eq!(seen["all_field_ids"], serde_json::json!((1..=30).collect::<Vec<_>>()));
    let spec: Vec<(i64, String)> = seen["partition_spec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["source_id"].as_i64().unwrap(), f["transform"].as_str().unwrap().into()))
        .collect();
    assert_eq!(spec, vec![(2, "day".into()), (19, "identity".into()), (4, "identity".into())]);

    let snapshots = seen["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "two invocations, one commit, one snapshot");
    assert_eq!(snapshots[0]["operation"], "append");
    assert!(snapshots[0]["props"][COMMIT_ID_PROPERTY].is_string());
    let watermarks: Value = serde_json::from_str(snapshots[0]["props"][WATERMARKS_PROPERTY].as_str().unwrap()).unwrap();
    assert_eq!(watermarks["eventhubs://sentiment-ns.servicebus.windows.net/sentiment-events/$Default/7"], 2005);

    assert_eq!(seen["row_count"], 5);
    let rows = seen["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| r["message_id"] == "tw-1002").unwrap();
    assert_eq!(row["event_timestamp"], "2025-03-03T14:29:58.123456+00:00");
    assert_eq!(row["ticker"], "TSLA");
    assert_eq!(row["source_system"], "reddit");
    assert!((row["sentiment_score"].as_f64().unwrap() + 0.55).abs() < 1e-6);
    assert_eq!(row["entity_recognition"], serde_json::json!([{"text": "TSLA", "type": "TICKER"}]));
    assert_eq!(row["aspect_target_identification"], serde_json::json!(["earnings"]));
    let emotions = row["emotion_intensity_vector"].as_array().unwrap();
    assert_eq!(emotions.len(), 2, "map entries as (key, value) pairs: {emotions:?}");

    let letters = read_with_pyiceberg(dir.path(), LakeConfig::DEFAULT_DEAD_LETTER_TABLE);
    assert_eq!(letters["row_count"], 3);
    let classes: Vec<&str> = letters["rows"].as_array().unwrap().iter().map(|r| r["error_class"].as_str().unwrap()).collect();
    assert!(classes.contains(&"decode") && classes.contains(&"validation") && classes.contains(&"incomplete"));
}

/// A table created earlier with another spec (year or month of the event time instead of day, or none) keeps
/// it: the writer computes partition values from the table's own spec, and PyIceberg sees them. (Iceberg
/// forbids two time transforms of one column in a spec, so year+month+day together cannot exist.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_follows_the_existing_tables_partition_spec() {
    use iceberg::spec::{Transform, UnboundPartitionSpec};
    use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation};

    let specs = [
        (
            "month_ticker",
            UnboundPartitionSpec::builder()
                .add_partition_field(2, "ts_month", Transform::Month)
                .unwrap()
                .add_partition_field(19, "ticker", Transform::Identity)
                .unwrap()
                .build(),
        ),
        ("year", UnboundPartitionSpec::builder().add_partition_field(2, "ts_year", Transform::Year).unwrap().build()),
        ("unpartitioned", UnboundPartitionSpec::builder().build()),
    ];
    for (name, spec) in specs {
        let dir = warehouse();
        let warehouse_url = format!("file://{}", dir.path().display());
        let catalog = iceberg_catalog_sql::SqlCatalogBuilder::default()
            .with_storage_factory(std::sync::Arc::new(iceberg::io::LocalFsStorageFactory))
            .load(
                LakeConfig::DEFAULT_CATALOG_NAME,
                std::collections::HashMap::from([
                    ("uri".to_string(), format!("sqlite://{}/catalog.db?mode=rwc", dir.path().display())),
                    ("warehouse".to_string(), warehouse_url),
                ]),
            )
            .await
            .unwrap();
        let namespace = NamespaceIdent::new(LakeConfig::DEFAULT_NAMESPACE.into());
        catalog.create_namespace(&namespace, Default::default()).await.unwrap();
        let creation = TableCreation::builder()
            .name(LakeConfig::DEFAULT_TABLE.into())
            .schema(sentiment_lake::schema::sentiment_schema())
            .partition_spec(spec)
            .build();
        catalog.create_table(&namespace, creation).await.unwrap();
        drop(catalog);

        let lake = open(dir.path()).await;
        let server = serve(lake.clone()).await;
        assert_eq!(post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await.0, 200);
        lake.commit().await.unwrap();

        let seen = read_with_pyiceberg(dir.path(), LakeConfig::DEFAULT_TABLE);
        assert_eq!(seen["row_count"], 3, "{name}");
        let mut partitions: Vec<(String, i64)> =
            seen["files"].as_array().unwrap().iter().map(|f| (f["partition"].to_string(), f["records"].as_i64().unwrap())).collect();
        partitions.sort();
        // All three events fall in March 2025 (UTC): months since 1970 = 662, years = 55.
        let expected: Vec<(String, i64)> = match name {
            "month_ticker" => vec![(r#"{"ticker":"AAPL","ts_month":"662"}"#.into(), 2), (r#"{"ticker":"TSLA","ts_month":"662"}"#.into(), 1)],
            "year" => vec![(r#"{"ts_year":"55"}"#.into(), 3)],
            _ => vec![("{}".into(), 3)],
        };
        assert_eq!(partitions, expected, "{name}");
    }
}

/// The seed's Phase 1 created its table with PyIceberg; the writer must append to that table as it is
/// (the seed's names, ids, required flags and partition spec), and PyIceberg must read the rows back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_appends_to_the_table_pyiceberg_created_with_the_seed_schema() {
    let dir = warehouse();
    let created = pyiceberg_script("pyiceberg_seed_table.py", dir.path(), LakeConfig::DEFAULT_TABLE);
    let schema_of = |seen: &Value| -> Vec<(i64, String, bool)> {
        seen["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["id"].as_i64().unwrap(), f["name"].as_str().unwrap().to_string(), f["required"].as_bool().unwrap()))
            .collect()
    };
    let seed: Vec<(i64, String, bool)> =
        sentiment_lake::schema::sentiment_schema().as_struct().fields().iter().map(|f| (i64::from(f.id), f.name.clone(), f.required)).collect();
    assert_eq!(schema_of(&created), seed, "PyIceberg created the seed's table");

    ingest_the_fixtures(dir.path()).await;

    let seen = read_with_pyiceberg(dir.path(), LakeConfig::DEFAULT_TABLE);
    assert_eq!(schema_of(&seen), seed, "the table's schema is untouched");
    assert_eq!(seen["partition_spec"], created["partition_spec"], "and so is its spec");
    assert_eq!(seen["row_count"], 5);
    let rows = seen["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| r["message_id"] == "tw-1001").unwrap();
    assert_eq!(row["text_content"], "$AAPL beats estimates, stock jumps 5% after hours");
    assert_eq!(row["primary_emotion"], "joy");
    assert_eq!(row["sarcasm_detection"], false);
    assert_eq!(row["processing_version"], "upstream-2.1");
    for r in rows {
        for field in [
            "sentiment_magnitude",
            "primary_emotion",
            "sarcasm_detection",
            "subjectivity_score",
            "toxicity_score",
            "user_intent",
            "processing_version",
        ] {
            assert!(!r[field].is_null(), "{field} is required by the seed: {r}");
        }
    }
    // Partition values follow the table's own spec (the seed's year, month and day of the event time).
    let partitions: Vec<&Value> = seen["files"].as_array().unwrap().iter().map(|f| &f["partition"]).collect();
    let names: Vec<String> = created["partition_spec"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect();
    assert!(partitions.iter().all(|p| names.iter().all(|n| p.get(n).is_some())), "{partitions:?} vs {names:?}");
}
