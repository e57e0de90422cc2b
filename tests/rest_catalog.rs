//! The lake on an Iceberg REST catalog (`--catalog-type rest`), against a real server: lakana-server, a
//! Python implementation of the REST spec (`scripts/setup-lakana.sh` installs it; `scripts/test.sh` sets
//! SENTIMENT_LAKE_LAKANA to its executable). Ingestion commits exactly once with the ledger in the table's
//! properties and snapshot summaries, concurrent committers' conflicts are refused by the server and
//! retried, PyIceberg reads the same table through the same catalog, and the dead-letter table, the
//! migration ledger and maintenance leases work beside it.
//!
//! Without SENTIMENT_LAKE_LAKANA (and no `.cache/lakana-venv`) the tests say so and pass, except under
//! CI=true, where a missing server fails them.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{events, free_port, scan, sorted, Killed};
use iceberg::spec::Operation;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::{
    CatalogType, Change, Lake, LakeConfig, LakeError, Outcome, RestSettings, RetiredSource, TableKind, COMMIT_ID_PROPERTY, RECENT_COMMITS_PROPERTY,
    WATERMARKS_PROPERTY,
};
use sentiment_lake::maintain::compact::CompactionPolicy;
use sentiment_lake::maintain::{self, MaintenancePolicy};
use serde_json::Value;

const TOKEN: &str = "lakana_pat_testkey_testsecret0123456789";
/// The lakana environment: the REST prefix, and the storage root tables are created under.
const ENVIRONMENT: &str = "dev";
/// lakana keeps tables only under its top-level `bronze`, `silver` and `gold` namespaces.
const NAMESPACE: &str = "bronze";

/// A lakana-server on a free loopback port, its state in a temporary directory; killed when dropped.
struct Lakana {
    uri: String,
    /// The environment's storage root: the lake's warehouse.
    root: PathBuf,
    python: PathBuf,
    _server: Killed,
    _state: tempfile::TempDir,
}

fn lakana_executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SENTIMENT_LAKE_LAKANA") {
        return Some(PathBuf::from(path));
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/lakana-venv/bin/lakana-server");
    if default.exists() {
        return Some(default);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SENTIMENT_LAKE_LAKANA is not set: run scripts/setup-lakana.sh and point it at the venv's lakana-server (scripts/test.sh does)"
    );
    eprintln!("skipped: no REST catalog server (set SENTIMENT_LAKE_LAKANA to lakana-server; scripts/setup-lakana.sh installs it)");
    None
}

impl Lakana {
    async fn start() -> Option<Self> {
        let executable = lakana_executable()?;
        let state = tempfile::Builder::new().prefix("sentiment-lake-lakana").tempdir().unwrap();
        let root = state.path().join("warehouse");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let env = [
            ("LAKANA_DATABASE__URL".to_string(), format!("sqlite:///{}", state.path().join("lakana.db").display())),
            ("LAKANA_HOST".to_string(), "127.0.0.1".to_string()),
            ("LAKANA_PORT".to_string(), port.to_string()),
            ("LAKANA_BOOTSTRAP_ADMIN".to_string(), "admin".to_string()),
            // Key ids may not contain underscores: the token is lakana_pat_<key id>_<secret>.
            ("LAKANA_BOOTSTRAP_PAT_KEY_ID".to_string(), "testkey".to_string()),
            ("LAKANA_BOOTSTRAP_PAT_SECRET".to_string(), "testsecret0123456789".to_string()),
            ("LAKANA_LOG__LEVEL".to_string(), "WARNING".to_string()),
        ];
        let log = |name: &str| std::fs::File::create(state.path().join(name)).unwrap();
        let migrate = tokio::task::spawn_blocking({
            let (executable, env, out, err) = (executable.clone(), env.clone(), log("migrate.log"), log("migrate.err"));
            move || Command::new(executable).arg("migrate").envs(env).stdout(out).stderr(err).status()
        });
        let status = migrate.await.unwrap().unwrap_or_else(|e| panic!("cannot run {}: {e}", executable.display()));
        assert!(status.success(), "lakana-server migrate failed: {}", std::fs::read_to_string(state.path().join("migrate.err")).unwrap_or_default());
        let child = Command::new(&executable).envs(env).stdin(Stdio::null()).stdout(log("server.log")).stderr(log("server.err")).spawn().unwrap();
        let mut server = Killed(child);
        let uri = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let started = Instant::now();
        loop {
            if client.get(format!("{uri}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            let exited = server.0.try_wait().unwrap();
            let log = || std::fs::read_to_string(state.path().join("server.err")).unwrap_or_default();
            assert!(exited.is_none(), "lakana-server exited ({exited:?}): {}", log());
            assert!(started.elapsed() < Duration::from_secs(60), "lakana-server not ready after 60 s: {}", log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = client
            .post(format!("{uri}/api/v1/environments"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"name": ENVIRONMENT, "storage": {"scheme": "file", "root": format!("file://{}", root.display())}}))
            .send()
            .await
            .unwrap();
        let status = created.status();
        assert!(status.is_success(), "creating the environment: {status} {}", created.text().await.unwrap_or_default());
        let python = executable.with_file_name("python");
        Some(Self { uri, root, python, _server: server, _state: state })
    }

    /// The lake on this catalog, its warehouse `warehouse` (staging and quarantine live there; the tables
    /// wherever the server puts them).
    fn config(&self, warehouse: &Path) -> LakeConfig {
        let mut config = LakeConfig::local(warehouse.to_string_lossy().to_string());
        config.catalog_type = CatalogType::Rest;
        config.catalog_uri = Some(self.uri.clone());
        config.rest = RestSettings { prefix: Some(ENVIRONMENT.into()), token: Some(TOKEN.into()), ..RestSettings::default() };
        config.namespace = NAMESPACE.into();
        config
    }

    async fn open(&self, warehouse: &Path) -> Lake {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
            .with_test_writer()
            .try_init();
        Lake::open(&self.config(warehouse)).await.unwrap()
    }

    /// What PyIceberg sees in `table` through this catalog (`tests/interop/pyiceberg_rest_read.py`).
    fn read_with_pyiceberg(&self, table: &str) -> Value {
        let output = Command::new(&self.python)
            .arg(format!("{}/tests/interop/pyiceberg_rest_read.py", env!("CARGO_MANIFEST_DIR")))
            .args([&self.uri, ENVIRONMENT, TOKEN, &format!("{NAMESPACE}.{table}")])
            .output()
            .unwrap();
        assert!(output.status.success(), "pyiceberg_rest_read.py failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

/// Generated events `first..first + count` as one ordered source, sequence numbers from `first_sequence`.
fn batch_from(source: &str, first: u64, count: u64, first_sequence: i64) -> SourceBatch {
    let events = events(chrono::Utc::now(), first, count);
    let events = events.iter().enumerate().map(|(i, e)| SourceEvent::new(first_sequence + i as i64, bytes::Bytes::from(e.to_string()))).collect();
    SourceBatch { source: source.into(), invocation_id: None, events }
}

/// [`batch_from`] with sequence numbers from 1.
fn batch(source: &str, first: u64, count: u64) -> SourceBatch {
    batch_from(source, first, count, 1)
}

async fn stage(lake: &Lake, batch: &SourceBatch) -> sentiment_lake::ingest::IngestReport {
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(lake, batch).await.unwrap()
}

fn assert_once(ids: &[String], expected: usize) {
    assert_eq!(ids.len(), expected);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), expected, "every message id once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_commits_exactly_once_through_a_rest_catalog() {
    let Some(lakana) = Lakana::start().await else { return };
    let lake = lakana.open(&lakana.root).await;

    // The tables were created by the server with the seed's field ids and explicit partition field ids.
    let records = lake.load(TableKind::Records).await.unwrap();
    let seed = sentiment_lake::schema::sentiment_schema();
    let created = records.metadata().current_schema();
    let ids = |schema: &iceberg::spec::Schema| {
        let mut ids: Vec<(String, i32)> = schema.field_id_to_name_map().iter().map(|(id, name)| (name.clone(), *id)).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(created), ids(&seed), "the server kept every field id of the seed's schema");
    let spec_ids: Vec<i32> = records.metadata().default_partition_spec().fields().iter().map(|f| f.field_id).collect();
    assert_eq!(spec_ids, vec![1000, 1001, 1002]);
    assert!(records.metadata().location().starts_with(&format!("file://{}/", lakana.root.display())), "{}", records.metadata().location());

    // (a) Real records through staging and one commit.
    let first = batch("source-a", 0, 40);
    assert_eq!(stage(&lake, &first).await.staged_rows, 40);
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!((report.rows_committed, report.snapshots), (40, 1), "{report:?}");
    let table = lake.load(TableKind::Records).await.unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    assert_eq!(Some(snapshot.snapshot_id()), report.snapshot_id);
    assert_eq!(snapshot.summary().operation, Operation::Append);
    let summary = &snapshot.summary().additional_properties;
    assert_eq!(summary.get(COMMIT_ID_PROPERTY), report.commit_id.as_ref(), "{summary:?}");
    assert!(summary.get(WATERMARKS_PROPERTY).is_some_and(|w| w.contains("source-a")), "{summary:?}");
    assert_eq!(summary.get("total-records").map(String::as_str), Some("40"));
    let properties = table.metadata().properties();
    assert!(properties.get(RECENT_COMMITS_PROPERTY).is_some_and(|c| c.contains(report.commit_id.as_deref().unwrap())), "{properties:?}");
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.get("source-a"), Some(40));
    assert_once(&sorted(&scan(&lake, TableKind::Records).await, "message_id"), 40);

    // (b) The same segment redelivered, and the next one: only the new rows are committed.
    stage(&lake, &first).await;
    let again = lake.commit().await.unwrap().remove(0);
    assert_eq!((again.rows_committed, again.snapshots), (0, 0), "{again:?}");
    stage(&lake, &batch_from("source-a", 40, 20, 41)).await;
    stage(&lake, &first).await;
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!(report.rows_committed, 20, "{report:?}");
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.get("source-a"), Some(60));
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_once(&ids, 60);

    // (d) PyIceberg, through the same catalog, sees the same table.
    let seen = lakana.read_with_pyiceberg(&lake.target(TableKind::Records).name);
    assert_eq!((seen["row_count"].as_u64(), seen["distinct_message_ids"].as_u64()), (Some(60), Some(60)), "{seen}");
    assert_eq!(seen["format_version"], 2);
    for field in seed.as_struct().fields() {
        assert_eq!(seen["field_ids"][&field.name].as_i64(), Some(field.id as i64), "{}: {seen}", field.name);
    }
    assert!(seen["properties"][WATERMARKS_PROPERTY].as_str().is_some_and(|w| w.contains("source-a")), "{seen}");
    let snapshots = seen["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 2, "{seen}");
    assert!(snapshots.iter().all(|s| s["operation"] == "append" && s["props"][COMMIT_ID_PROPERTY].is_string()), "{seen}");

    // A lake opened again finds the tables (by loading them: lakana answers no HEAD requests).
    let reopened = lakana.open(&lakana.root).await;
    assert_eq!(reopened.committed_state(TableKind::Records).await.unwrap().watermarks.get("source-a"), Some(60));

    // Maintenance leases live in the lease database beside the REST catalog.
    assert!(lake.try_lease("maintenance/test", "a", Duration::from_secs(60)).await.unwrap());
    assert!(!reopened.try_lease("maintenance/test", "b", Duration::from_secs(60)).await.unwrap(), "one holder at a time");
    lake.release_lease("maintenance/test", "a").await.unwrap();
    assert!(reopened.try_lease("maintenance/test", "b", Duration::from_secs(60)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_conflict_and_every_row_lands_once() {
    let Some(lakana) = Lakana::start().await else { return };
    // Two instances on one catalog, each with its own staging (a second warehouse directory): their commits
    // race for the same table.
    let other = tempfile::tempdir().unwrap();
    let (a, b) = (lakana.open(&lakana.root).await, lakana.open(other.path()).await);

    // A commit built on metadata another commit has moved is refused by the server (409), and the
    // manifests it wrote are removed.
    stage(&a, &batch("first", 0, 10)).await;
    a.commit().await.unwrap();
    let stale = a.load(TableKind::Records).await.unwrap();
    stage(&b, &batch("second", 10, 10)).await;
    b.commit().await.unwrap();
    let manifests = |dir: &Path| common::files_under(dir, ".avro").len();
    let before = manifests(&lakana.root);
    let files = a.write_data_files(&stale, &[scan(&a, TableKind::Records).await.slice(0, 1)], &[], "stale", None).await.unwrap();
    let change = Change { files: files.clone(), ..Change::default() };
    assert_eq!(a.commit_change(&stale, change).await.unwrap(), Outcome::Conflict);
    assert_eq!(manifests(&lakana.root), before, "the refused commit's manifest and manifest list are gone");
    a.delete_unreferenced(&stale, &files).await;

    // Rounds of simultaneous commits: the loser of each race is refused, re-reads the table and commits
    // on top; every row lands once.
    let mut conflicts = 0;
    let mut expected = 20;
    for round in 0..5u64 {
        let (first, second) = (round * 100 + 1000, round * 100 + 1050);
        stage(&a, &batch(&format!("a-{round}"), first, 30)).await;
        stage(&b, &batch(&format!("b-{round}"), second, 30)).await;
        let (ra, rb) = tokio::join!(a.commit(), b.commit());
        let (ra, rb) = (ra.unwrap().remove(0), rb.unwrap().remove(0));
        assert_eq!(ra.rows_committed + rb.rows_committed, 60, "{ra:?} {rb:?}");
        conflicts += ra.conflicts + rb.conflicts;
        expected += 60;
        assert_once(&sorted(&scan(&a, TableKind::Records).await, "message_id"), expected);
        if conflicts > 0 && round >= 1 {
            break;
        }
    }
    assert!(conflicts > 0, "the committers raced and the server refused one of them at least once");
    let watermarks = a.committed_state(TableKind::Records).await.unwrap().watermarks;
    assert_eq!(
        (watermarks.get("first"), watermarks.get("second"), watermarks.get("a-0"), watermarks.get("b-0")),
        (Some(10), Some(10), Some(30), Some(30))
    );

    // Maintenance's `replace` snapshots (compaction, then the manifest rewrite) commit through the catalog
    // too, and keep every row and the ledger.
    let policy = MaintenancePolicy {
        compaction: Some(CompactionPolicy { min_input_files: 2, ..CompactionPolicy::default() }),
        rewrite_manifests_above: Some(1),
        expiry: None,
        orphans: None,
        ..MaintenancePolicy::default()
    };
    let report = maintain::run(&b, &policy).await.unwrap();
    let compaction = report.compaction.as_ref().unwrap();
    assert!(report.ran && compaction.groups_committed > 0 && compaction.files_rewritten > compaction.files_written, "{report:?}");
    assert_once(&sorted(&scan(&a, TableKind::Records).await, "message_id"), expected);
    assert_eq!(a.committed_state(TableKind::Records).await.unwrap().watermarks, watermarks);
    let seen = lakana.read_with_pyiceberg(&a.target(TableKind::Records).name);
    assert_eq!((seen["row_count"].as_u64(), seen["distinct_message_ids"].as_u64()), (Some(expected as u64), Some(expected as u64)), "{seen}");
    assert!(seen["snapshots"].as_array().unwrap().iter().any(|s| s["operation"] == "replace"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_the_migration_ledger_and_refused_updates() {
    let Some(lakana) = Lakana::start().await else { return };
    let lake = lakana.open(&lakana.root).await;

    // (e) A batch with bad events: its dead letters commit to the dead-letter table through the catalog.
    let mut mixed = batch("legacy-file", 0, 12);
    mixed.events.push(SourceEvent::new(13, bytes::Bytes::from_static(b"{not json")));
    mixed.events.push(SourceEvent::new(14, bytes::Bytes::from_static(br#"{"message_id": "only an id"}"#)));
    let report = stage(&lake, &mixed).await;
    assert_eq!((report.staged_rows, report.dead_lettered), (12, 2), "{report:?}");
    let reports = lake.commit().await.unwrap();
    assert_eq!((reports[0].rows_committed, reports[1].rows_committed), (12, 2), "{reports:?}");
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 2);
    assert_eq!(lake.committed_state(TableKind::DeadLetters).await.unwrap().watermarks.get("legacy-file"), Some(14));
    let letters = lakana.read_with_pyiceberg(&lake.target(TableKind::DeadLetters).name);
    assert_eq!(letters["row_count"], 2, "{letters}");
    assert_eq!(letters["partition_spec"][0]["field_id"], 1000, "{letters}");

    // The finished source is retired: a row in the migration ledger table, then its watermark keys
    // removed from both tables (properties-only commits).
    let retired = lake
        .retire(vec![RetiredSource {
            source: "legacy-file".into(),
            through: 14,
            retired_at: chrono::Utc::now(),
            records_snapshot_id: None,
            report: Some(serde_json::json!({"rows": 12})),
        }])
        .await
        .unwrap();
    assert_eq!((retired.retired.len(), retired.keys_removed), (1, 2), "{retired:?}");
    assert_eq!(lake.retired_source("legacy-file").await.unwrap().map(|r| r.through), Some(14));
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.get("legacy-file"), None);
    let ledger = lakana.read_with_pyiceberg(&lake.retired_target().name);
    assert_eq!(ledger["row_count"], 1, "{ledger}");

    // The retired source staged again (a late duplicate delivery) commits nothing.
    stage(&lake, &mixed).await;
    let reports = lake.commit().await.unwrap();
    assert_eq!((reports[0].rows_committed, reports[1].rows_committed), (0, 0), "{reports:?}");
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 12);

    // A commit the server refuses outright (lakana expires snapshots only through its own maintenance)
    // is a non-retryable error with the server's reason, and changes nothing.
    stage(&lake, &batch("more", 100, 5)).await;
    lake.commit().await.unwrap();
    let table = lake.load(TableKind::Records).await.unwrap();
    let oldest = table.metadata().snapshots().map(|s| s.snapshot_id()).find(|id| Some(*id) != table.metadata().current_snapshot_id()).unwrap();
    match lake.commit_change(&table, Change { expire: vec![oldest], ..Change::default() }).await {
        Err(e @ LakeError::RestCatalog { status: Some(403), .. }) => assert!(!e.is_retryable() && e.to_string().contains("snapshots"), "{e}"),
        other => panic!("expected lakana's 403, got {other:?}"),
    }
    let after = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(after.metadata().snapshots().count(), 2);
    assert_eq!(after.metadata_location(), table.metadata_location());
}

/// A gateway in front of the catalog: forwards every request and answers with the catalog's reply, except
/// that while `fail` holds a count it answers a forwarded table commit with 503, as a gateway does when the
/// catalog behind it committed and the reply was lost on the way back.
async fn gateway(upstream: String, fail: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::new();
    let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: bytes::Bytes| {
        let (client, upstream, fail) = (client.clone(), upstream.clone(), fail.clone());
        async move {
            let url = format!("{upstream}{}", uri.path_and_query().map_or("", |p| p.as_str()));
            let mut request = client.request(reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(), url).body(body);
            for (name, value) in &headers {
                if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
                    request = request.header(name.as_str(), value.as_bytes());
                }
            }
            let reply = request.send().await.unwrap();
            let status = StatusCode::from_u16(reply.status().as_u16()).unwrap();
            let content_type = reply.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_string();
            let body = reply.bytes().await.unwrap();
            // POST .../namespaces/<ns>/tables/<table> commits to a table (POST .../tables creates one).
            let commit = method == Method::POST && uri.path().rsplit_once("/tables/").is_some_and(|(_, table)| !table.contains('/'));
            if commit && status.is_success() && fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("content-type", "text/plain".to_string())],
                    bytes::Bytes::from_static(b"upstream timed out"),
                );
            }
            (status, [("content-type", content_type)], body)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(forward)).await.unwrap() });
    (uri, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_answered_503_after_it_landed_keeps_its_files_and_lands_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let Some(lakana) = Lakana::start().await else { return };
    let fail = std::sync::Arc::new(AtomicUsize::new(0));
    let (uri, _gateway) = gateway(lakana.uri.clone(), fail.clone()).await;
    let mut config = lakana.config(&lakana.root);
    config.catalog_uri = Some(uri);
    let lake = Lake::open(&config).await.unwrap();
    assert_eq!(stage(&lake, &batch("source-gw", 0, 40)).await.staged_rows, 40);
    fail.store(1, Ordering::SeqCst);
    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!(fail.load(Ordering::SeqCst), 0, "the gateway answered the landed commit with 503");
    assert_eq!(report.rows_committed, 40, "{report:?}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty(), "the committer found its commit and cleared the staged entries");
    // The snapshot's manifests are still there: the table reads, every row once.
    assert_once(&sorted(&scan(&lake, TableKind::Records).await, "message_id"), 40);
    // And the next commit builds on it.
    assert_eq!(stage(&lake, &batch_from("source-gw", 40, 10, 41)).await.staged_rows, 10);
    assert_eq!(lake.commit().await.unwrap().remove(0).rows_committed, 10);
    assert_once(&sorted(&scan(&lake, TableKind::Records).await, "message_id"), 50);
}
