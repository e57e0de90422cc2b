//! The lake on Azure Blob storage: a real Azurite (npm) on a free loopback port, the machine's PostgreSQL as
//! the shared catalog, and the same code paths a deployment runs: staging, commit, quarantine, dead letters,
//! an independent reader (PyIceberg + adlfs), and managed identity through a local token endpoint that
//! speaks the App Service protocol.
//!
//! What Azurite cannot show: it has no ADLS Gen2 (dfs) endpoint, so hierarchical-namespace behaviour
//! (atomic directory renames, ACLs) is untested; the lake never relies on it (every write is one object,
//! no renames), and all requests go to the blob endpoint, as they do against a real account.

mod common;

use chrono::Utc;
use common::azurite::Azurite;
use common::*;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::storage::{Location, OpenedLocation, StorageSettings};
use serde_json::Value;

async fn azure_config(azurite: &Azurite, container: &str) -> LakeConfig {
    let mut config = LakeConfig::local(Azurite::url(container, "warehouse"));
    config.catalog_uri = Some(common::postgres::fresh_catalog().await);
    config.storage.azure.connection_string = Some(azurite.connection_string());
    config
}

/// Every object name in a container.
async fn objects(settings: &StorageSettings, container: &str) -> Vec<String> {
    let root = OpenedLocation::open(Location::parse(&Azurite::url(container, "")).unwrap(), settings).unwrap();
    root.store.list(None).map_ok(|meta| meta.location.to_string()).try_collect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lake_on_blob_storage_stages_commits_quarantines_and_dead_letters() {
    let azurite = Azurite::start();
    azurite.create_container("lake").await;
    let config = azure_config(&azurite, "lake").await;
    let lake = Lake::open(&config).await.unwrap();
    assert!(lake.warehouse().access().contains("shared key"), "{}", lake.warehouse().access());

    let mut sent = events(Utc::now(), 0, 200);
    // A ticker that looks like a path, and three records that must be dead-lettered.
    sent[0]["ticker"] = Value::String("A/../../../../X".into());
    for event in &mut sent[1..4] {
        event["sentiment_score"] = serde_json::json!(5.0);
    }
    let ndjson: Vec<u8> = sent.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, "azure-test", None).unwrap();
    let report = Pipeline::new(IncompletePolicy::DeadLetter).ingest(&lake, &batch).await.unwrap();
    assert_eq!((report.staged_rows, report.dead_lettered), (197, 3));
    // A stray object among the staged segments: quarantined with its reason, never blocking the rest.
    let stray = object_store::path::Path::from("_staging/sentiment_records/stray.txt");
    lake.warehouse().store().put(&stray, bytes::Bytes::from_static(b"hello").into()).await.unwrap();

    let reports = lake.commit().await.unwrap();
    assert_eq!((reports[0].rows_committed, reports[0].quarantined), (197, 1), "{reports:?}");
    assert_eq!(reports[1].rows_committed, 3, "{reports:?}");
    let rows = scan(&lake, TableKind::Records).await;
    let ids = sorted(&rows, "message_id");
    assert_eq!(ids.len(), 197);
    assert!(counts(&ids).values().all(|&n| n == 1));
    let dead = scan(&lake, TableKind::DeadLetters).await;
    assert_eq!(dead.num_rows(), 3);
    let quarantined = lake.quarantine().list().await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].1.reason.contains("unrecognised name"), "{:?}", quarantined[0].1);
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());

    // Nothing outside the warehouse prefix, whatever the partition values.
    let names = objects(&config.storage, "lake").await;
    assert!(names.iter().any(|n| n.starts_with("warehouse/sentiment/sentiment_records/data/")), "{names:?}");
    let outside: Vec<_> = names.iter().filter(|n| !n.starts_with("warehouse/")).collect();
    assert!(outside.is_empty(), "escaped the warehouse: {outside:?}");

    // A second instance (same catalog, same storage) sees the same table and ledger, and adds nothing.
    let second = Lake::open(&config).await.unwrap();
    let state = second.committed_state(TableKind::Records).await.unwrap();
    assert_eq!(state.watermarks.get(&batch.source), Some(200));
    assert_eq!(state, lake.committed_state(TableKind::Records).await.unwrap());
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(&second, &batch).await.unwrap();
    assert_eq!(second.commit().await.unwrap()[0].rows_committed, 0, "a redelivered batch is not committed twice");

    // An independent implementation reads the table straight from blob storage.
    let table = lake.load(TableKind::Records).await.unwrap();
    let metadata = table.metadata_location().unwrap().to_string();
    assert!(metadata.starts_with("abfss://lake@devstoreaccount1.dfs.core.windows.net/warehouse/"), "{metadata}");
    let output = std::process::Command::new(python_with("adlfs"))
        .arg(format!("{}/tests/interop/pyiceberg_read_azure.py", env!("CARGO_MANIFEST_DIR")))
        .arg(&metadata)
        .arg(azurite.connection_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "PyIceberg on Azurite: {}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["row_count"], 197);
    let seen_ids: Vec<String> = seen["message_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(seen_ids, ids);
    assert!(seen["tickers"].as_array().unwrap().contains(&Value::String("A/../../../../X".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_container_is_read_in_ranges_with_the_same_credentials() {
    // What the migration reads: an uploaded legacy file in its own container, streamed in ranges, never whole.
    let azurite = Azurite::start();
    azurite.create_container("legacy").await;
    let settings = StorageSettings {
        azure: sentiment_lake::storage::AzureSettings { connection_string: Some(azurite.connection_string()), ..Default::default() },
        ..Default::default()
    };
    let uploads = OpenedLocation::open(Location::parse(&Azurite::url("legacy", "exports/AAPL")).unwrap(), &settings).unwrap();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let name = object_store::path::Path::from("2023-01.parquet");
    uploads.store.put(&name, bytes::Bytes::from(content.clone()).into()).await.unwrap();
    assert_eq!(uploads.store.head(&name).await.unwrap().size, content.len() as u64);
    let middle = uploads.store.get_range(&name, 1_000_000..1_000_100).await.unwrap();
    assert_eq!(middle.as_ref(), &content[1_000_000..1_000_100]);
    assert_eq!(objects(&settings, "legacy").await, vec!["exports/AAPL/2023-01.parquet".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_warehouse_refuses_a_per_instance_sqlite_catalog() {
    let azurite = Azurite::start();
    azurite.create_container("lake").await;
    let mut config = azure_config(&azurite, "lake").await;
    let sqlite = tempfile::tempdir().unwrap();
    config.catalog_uri = Some(format!("sqlite://{}/catalog.db?mode=rwc", sqlite.path().display()));
    let error = Lake::open(&config).await.unwrap_err();
    assert!(error.to_string().contains("instances must share one"), "{error}");
    config.catalog_uri = None;
    let error = Lake::open(&config).await.unwrap_err();
    assert!(error.to_string().contains("--catalog-uri"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_missing_containers_are_clear_errors() {
    let azurite = Azurite::start();
    azurite.create_container("lake").await;
    let mut config = azure_config(&azurite, "lake").await;
    config.storage.azure.connection_string = None;
    config.storage.azure.blob_endpoint = Some(azurite.endpoint.clone());
    config.storage.azure.account_key = Some("d3Jvbmcga2V5".into());
    let error = Lake::open(&config).await.unwrap_err();
    assert!(!error.is_retryable(), "a refused credential is not worth retrying: {error}");
    let mut config = azure_config(&azurite, "nosuchcontainer").await;
    config.catalog_name = "other".into();
    let error = Lake::open(&config).await.unwrap_err();
    assert!(error.to_string().contains("nosuchcontainer") || error.to_string().to_lowercase().contains("container"), "{error}");
}

/// The CLI as the Functions host starts it: Azure settings only from the environment.
fn cli(azurite: &Azurite, catalog: &str, identity: (&str, &str), extra_env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let (identity_endpoint, identity_header) = identity;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AZURE_") || key.starts_with("SENTIMENT_LAKE_") || key.starts_with("IDENTITY_") {
            command.env_remove(key);
        }
    }
    command
        .env("SENTIMENT_LAKE_WAREHOUSE", Azurite::url("lake", "warehouse"))
        .env("SENTIMENT_LAKE_CATALOG_URI", catalog)
        .env("SENTIMENT_LAKE_AZURE_BLOB_ENDPOINT", &azurite.endpoint)
        .env("SENTIMENT_LAKE_AZURE_CA_FILE", azurite.ca_file.as_ref().unwrap())
        .env("IDENTITY_ENDPOINT", identity_endpoint)
        .env("IDENTITY_HEADER", identity_header)
        .env("RUST_LOG", "warn")
        .envs(extra_env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_through_the_app_service_endpoint() {
    let certs = tempfile::tempdir().unwrap();
    let azurite = Azurite::start_tls(certs.path());
    azurite.create_container("lake").await;
    let catalog = common::postgres::fresh_catalog().await;
    let (endpoint, seen) = common::identity::token_endpoint("platform-secret", 3600).await;

    let doctor = cli(&azurite, &catalog, (&endpoint, "platform-secret"), &[], &["doctor"]);
    let stdout = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "doctor: {stdout}\n{}", String::from_utf8_lossy(&doctor.stderr));
    assert!(stdout.contains(&format!("managed identity via App Service endpoint {endpoint} (system-assigned)")), "{stdout}");
    assert!(stdout.contains("[ok]   warehouse access: write, read, list and delete work"), "{stdout}");
    {
        let seen = seen.lock().unwrap();
        let first = seen.seen.first().expect("the token endpoint was asked");
        assert_eq!(first.header.as_deref(), Some("platform-secret"));
        assert_eq!(first.query.get("api-version").map(String::as_str), Some("2019-08-01"));
        assert_eq!(first.query.get("resource").map(String::as_str), Some("https://storage.azure.com"));
    }

    // The main job end to end under the identity: data lands in the table on blob storage.
    let demo = cli(&azurite, &catalog, (&endpoint, "platform-secret"), &[], &["demo", "--events", "400", "--partitions", "2"]);
    assert!(demo.status.success(), "demo: {}", String::from_utf8_lossy(&demo.stderr));
    // Read back with the development key (this test process has no platform secret).
    let settings = StorageSettings {
        azure: sentiment_lake::storage::AzureSettings {
            blob_endpoint: Some(azurite.endpoint.clone()),
            ca_file: azurite.ca_file.as_ref().map(|p| p.display().to_string()),
            account_key: Some(sentiment_lake::storage::azure::EMULATOR_ACCOUNT_KEY.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let names = objects(&settings, "lake").await;
    assert!(names.iter().filter(|n| n.starts_with("warehouse/sentiment/sentiment_records/data/")).count() > 0, "{names:?}");

    // A wrong platform secret is refused by the endpoint, and doctor says storage failed.
    // A user-assigned identity is asked for by its client id.
    let user_assigned = cli(&azurite, &catalog, (&endpoint, "platform-secret"), &[("AZURE_CLIENT_ID", "2222-uami")], &["doctor"]);
    let stdout = String::from_utf8_lossy(&user_assigned.stdout);
    assert!(user_assigned.status.success(), "{stdout}");
    assert!(stdout.contains("(user-assigned, client id 2222-uami)"), "{stdout}");
    assert!(seen.lock().unwrap().seen.iter().any(|r| r.query.get("client_id").map(String::as_str) == Some("2222-uami")));

    let refused = cli(&azurite, &catalog, (&endpoint, "wrong"), &[], &["doctor"]);
    assert!(!refused.status.success());
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(stdout.contains("[FAIL] warehouse access"), "{stdout}");
    assert!(seen.lock().unwrap().seen.iter().any(|r| r.header.as_deref() == Some("wrong")));
}
