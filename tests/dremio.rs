//! The Flight SQL client and the Dremio engine against a real Flight SQL server (`datafusion-flight-sql-server`
//! from crates.io, over DataFusion) standing in for Dremio, serving this lake's own table with its map, list
//! and struct columns.
//!
//! In front of the server sits Dremio's sign-in scheme (auth2): a call with valid `Basic` credentials is
//! let through as the server's current `Bearer` token, every answer carries that token, and anything else is
//! UNAUTHENTICATED. A restart issues a new token, so the client must sign in again.
//!
//! What the stand-in cannot run (Dremio's FLATTEN, MERGE, OPTIMIZE, VACUUM, `AT SNAPSHOT`, `table_history`)
//! is pinned by golden tests beside the code and checked on a real Dremio by `doctor --engine dremio`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use common::*;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion_flight_sql_server::service::FlightSqlService;
use datafusion_flight_sql_server::session::SessionStateProvider;
use sentiment_lake::app::{query_service, DremioSetup, QueryEngineChoice, QueryOptions};
use sentiment_lake::dremio::sql::TablePath;
use sentiment_lake::dremio::DremioWriter;
use sentiment_lake::dremio::{BreakerState, DremioAuth, DremioConfig, DremioError, FlightSqlClient, StatementKind};
use sentiment_lake::lake::{Lake, TableKind};
use sentiment_lake::maintain::dremio::DremioCatalog;
use sentiment_lake::query::{Query, QueryKind};

const USER: &str = "svc";
const PASSWORD: &str = "s3cret";

/// Accepts only the current token (set by the interceptor for a valid password, or sent by the client).
struct TokenCheck {
    state: SessionState,
    token: String,
}

#[async_trait]
impl SessionStateProvider for TokenCheck {
    async fn new_context(&self, request: &tonic::Request<()>) -> Result<SessionState, tonic::Status> {
        match request.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
            Some(value) if value == format!("Bearer {}", self.token) => Ok(self.state.clone()),
            _ => Err(tonic::Status::unauthenticated("invalid or expired token")),
        }
    }
}

struct StandIn {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The session headers (`schema`, `routing_tag`, `routing_queue`) of every call, as received.
    headers: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for StandIn {
    /// Stops serving: open connections get GOAWAY and close, the port is released.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn session_over(lake: &Lake) -> SessionState {
    let table = lake.load(TableKind::Records).await.unwrap();
    let ctx = SessionContext::new();
    // Served as the embedded engine reads it, so both engines see the same rows.
    ctx.register_table("sentiment_records", sentiment_lake::engine::table_provider(table).await.unwrap()).unwrap();
    let rollup = lake.load(TableKind::Rollup).await.unwrap();
    ctx.register_table("sentiment_records_rollup", sentiment_lake::engine::table_provider(rollup).await.unwrap()).unwrap();
    ctx.state()
}

/// Starts the stand-in on `port` (0: any free one); `generation` names the token it issues.
async fn start(state: SessionState, port: u16, generation: u32) -> StandIn {
    start_with(state, port, generation, None).await
}

/// [`start`], with TLS when `tls` names a directory holding `cert.pem` and `key.pem`.
async fn start_with(state: SessionState, port: u16, generation: u32, tls: Option<&std::path::Path>) -> StandIn {
    let token = format!("token-{generation}");
    let service = FlightSqlService::new_with_provider(Box::new(TokenCheck { state, token: token.clone() }));
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let bearer = format!("Bearer {token}");
    let request_token = bearer.clone();
    let headers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = headers.clone();
    let sign_in = move |mut request: tonic::Request<()>| {
        for name in ["schema", "routing_tag", "routing_queue"] {
            if let Some(value) = request.metadata().get(name).and_then(|v| v.to_str().ok()) {
                seen.lock().unwrap().push(format!("{name}={value}"));
            }
        }
        let sent = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Some(sent) = sent.filter(|s| s.starts_with("Basic ")) {
            if sent != basic {
                return Err(tonic::Status::unauthenticated("Unable to authenticate user"));
            }
            request.metadata_mut().insert("authorization", request_token.parse().unwrap());
        }
        Ok(request)
    };
    let server = arrow_flight::flight_service_server::FlightServiceServer::with_interceptor(service, sign_in);
    let answer_token: http::HeaderValue = bearer.parse().unwrap();
    let issue = tower::util::MapResponseLayer::new(move |mut response: http::Response<tonic::body::Body>| {
        response.headers_mut().insert("authorization", answer_token.clone());
        response
    });
    // A restart binds the port the previous server is still releasing.
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => break listener,
            Err(e) if tries < 40 => {
                tries += 1;
                tracing::debug!(error = %e, "port still taken");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("binding 127.0.0.1:{port}: {e}"),
        }
    };
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder();
    if let Some(dir) = tls {
        let identity =
            tonic::transport::Identity::from_pem(std::fs::read(dir.join("cert.pem")).unwrap(), std::fs::read(dir.join("key.pem")).unwrap());
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).unwrap();
    }
    tokio::spawn(async move {
        let _ = builder
            .layer(issue)
            .add_service(server)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await;
    });
    StandIn { port, stop: Some(stop), headers }
}

fn client_config(port: u16, auth: DremioAuth) -> DremioConfig {
    let mut config = DremioConfig::new(format!("grpc://127.0.0.1:{port}"), auth);
    config.max_retries = 1;
    config.min_backoff = Duration::from_millis(20);
    config.connect_timeout = Duration::from_secs(2);
    config.query_timeout = Duration::from_secs(30);
    config.breaker_threshold = 2;
    config.breaker_cooldown = Duration::from_millis(400);
    config
}

fn basic() -> DremioAuth {
    DremioAuth::Basic { user: USER.into(), password: PASSWORD.into() }
}

async fn lake_with_events(dir: &std::path::Path, count: u64) -> Lake {
    let lake = open(dir).await;
    ingest(&lake, &events(instant("2026-11-20T00:00:00Z"), 0, count)).await;
    lake
}

fn dremio_options(client: Arc<FlightSqlClient>) -> QueryOptions {
    let setup = DremioSetup {
        client,
        table: TablePath::parse("datafusion.public.sentiment_records").unwrap(),
        warehouse: None,
        catalog: DremioCatalog::Other,
        // The same snapshot ids as the embedded engine, from the lake's catalog.
        snapshots_from_catalog: true,
        // DataFusion has no `AT SNAPSHOT`; the stand-in serves one fixed snapshot.
        pin_snapshots: false,
        compact_window: Duration::ZERO,
    };
    QueryOptions { engine: QueryEngineChoice::Dremio(Arc::new(setup)), ..QueryOptions::default() }
}

/// The API's answers through Dremio's dialect over Flight SQL equal the embedded engine's, for every query
/// the stand-in can run; the records page carries the map, list and struct columns through Flight intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dremio_engine_answers_like_the_embedded_one() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 800).await;
    let stand_in = start(session_over(&lake).await, 0, 1).await;
    let client = Arc::new(FlightSqlClient::new(client_config(stand_in.port, basic())).unwrap());
    let embedded = query_service(&lake, &QueryOptions::default()).unwrap();
    let dremio = query_service(&lake, &dremio_options(client.clone())).unwrap();
    assert_eq!(dremio.engine().name(), "dremio");
    let now = instant("2026-11-20T00:00:00Z");
    let cases = [
        (QueryKind::TopTickers, "days=3&limit=4"),
        (QueryKind::TimeSeries, "ticker=AAPL&interval=hour&days=2"),
        (QueryKind::TimeSeries, "ticker=MSFT&interval=day&days=3"),
        (QueryKind::Toxicity, "min_toxicity=0.2&days=3&limit=5"),
        (QueryKind::Intents, "days=3"),
        // Only from the rollup table: the stand-in cannot run the SQL that flattens maps and lists.
        (QueryKind::Summary, "ticker=AAPL&days=3"),
        (QueryKind::Aspects, "ticker=AAPL&days=3"),
        (QueryKind::Entities, "days=3&entity_type=ORG"),
        (QueryKind::Records, "ticker=AAPL&days=3&limit=7"),
        (QueryKind::Records, "source_system=twitter&min_score=-0.2&max_score=0.6&days=3&limit=5"),
    ];
    for (kind, params) in cases {
        let query = Query::parse(kind, Some(params), now).unwrap();
        let want = embedded.answer(&query).await.unwrap();
        let got = dremio.answer(&query).await.unwrap_or_else(|e| panic!("{kind:?} {params}: {e}"));
        assert_eq!(got.stored.snapshot_id, want.stored.snapshot_id);
        assert_eq!(answer_data(&got), answer_data(&want), "{kind:?} {params}");
        assert!(!answer_data(&want).as_array().is_some_and(|a| a.is_empty()), "{kind:?} {params} has rows to compare");
        let raw_only = matches!(kind, QueryKind::Records | QueryKind::Toxicity);
        assert_eq!(got.stored.path, if raw_only { "raw" } else { "rollup" }, "{kind:?} {params}: Dremio reads the same rollup table");
    }
    // A second page follows the first page's cursor in both engines.
    let first = dremio.answer(&Query::parse(QueryKind::Records, Some("ticker=AAPL&days=3&limit=3"), now).unwrap()).await.unwrap();
    let cursor = first.stored.next_cursor.clone().expect("more than one page");
    let next = format!("ticker=AAPL&days=3&limit=3&cursor={cursor}");
    let query = Query::parse(QueryKind::Records, Some(&next), now).unwrap();
    assert_eq!(answer_data(&dremio.answer(&query).await.unwrap()), answer_data(&embedded.answer(&query).await.unwrap()));
    let first = answer_data(&first);
    let records = first.as_array().unwrap();
    assert!(records.iter().any(|r| r["emotion_intensity_vector"].is_object()), "maps arrive as maps: {records:?}");
    assert!(records.iter().any(|r| r["entity_recognition"].is_array()), "lists of structs arrive: {records:?}");
}

/// GetFlightInfo only plans; the statement runs when its DoGet is read. Errors are statement errors, not
/// outages: they neither retry nor open the circuit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_run_only_at_do_get_and_errors_stay_statement_errors() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 50).await;
    let stand_in = start(session_over(&lake).await, 0, 1).await;
    let client = FlightSqlClient::new(client_config(stand_in.port, basic())).unwrap();

    client.plan_schema("CREATE TABLE probe AS SELECT 1 AS x").await.unwrap();
    let missing = client.execute("SELECT x FROM probe", StatementKind::Read).await.unwrap_err();
    assert!(matches!(missing, DremioError::Statement(_)), "planning created nothing: {missing}");

    let schema = client.plan_schema("SELECT message_id, emotion_intensity_vector, entity_recognition FROM sentiment_records").await.unwrap();
    assert_eq!(schema.fields().len(), 3);
    assert!(matches!(schema.field(1).data_type(), arrow_schema::DataType::Map(..)), "{schema:?}");

    client.execute("CREATE TABLE probe AS SELECT 1 AS x", StatementKind::Once).await.unwrap();
    // DataFusion's session tables live in the server's session state, shared by the stand-in's calls.
    let batches = client.execute("SELECT x FROM probe", StatementKind::Read).await;
    assert!(batches.is_ok_and(|b| b.iter().map(|b| b.num_rows()).sum::<usize>() == 1), "the DoGet ran the statement");

    for _ in 0..4 {
        let e = client.execute("SELECT * FROM no_such_table", StatementKind::Read).await.unwrap_err();
        assert!(matches!(e, DremioError::Statement(_)) && !e.is_retryable(), "{e}");
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed, "bad statements are not outages");

    // A result beyond the byte bound fails instead of exhausting the instance; a smaller one is read whole.
    let mut bounded = client_config(stand_in.port, basic());
    bounded.max_result_bytes = 16 * 1024;
    let bounded = FlightSqlClient::new(bounded).unwrap();
    let e = bounded.execute("SELECT * FROM sentiment_records", StatementKind::Read).await.unwrap_err();
    assert!(matches!(e, DremioError::ResultTooLarge { limit: 16384 }), "{e}");
    let ids = bounded.execute("SELECT message_id FROM sentiment_records LIMIT 5", StatementKind::Read).await.unwrap();
    assert_eq!(ids.iter().map(|b| b.num_rows()).sum::<usize>(), 5);

    let rows = client.execute("SELECT count(*) AS n FROM sentiment_records", StatementKind::Read).await.unwrap();
    let n = arrow_cast::cast(rows[0].column(0), &arrow_schema::DataType::Int64).unwrap();
    assert_eq!(arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(&n).value(0), 50);
}

/// Dremio's sign-in: a password earns a token that later calls reuse; a wrong password or token is refused
/// clearly; after a restart the old token is refused and the client signs in again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_tokens_are_reused_and_renewed_after_a_restart() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 20).await;
    let state = session_over(&lake).await;
    let first = start(state.clone(), 0, 1).await;
    let port = first.port;

    let wrong = FlightSqlClient::new(client_config(port, DremioAuth::Basic { user: USER.into(), password: "nope".into() })).unwrap();
    assert!(matches!(wrong.execute("SELECT 1", StatementKind::Read).await, Err(DremioError::Unauthenticated(_))));
    let stale_token = FlightSqlClient::new(client_config(port, DremioAuth::Token("token-0".into()))).unwrap();
    assert!(matches!(stale_token.execute("SELECT 1", StatementKind::Read).await, Err(DremioError::Unauthenticated(_))));
    let token = FlightSqlClient::new(client_config(port, DremioAuth::Token("token-1".into()))).unwrap();
    token.execute("SELECT 1", StatementKind::Read).await.expect("a valid token is accepted as is");

    let mut config = client_config(port, basic());
    config.schema = Some("datafusion.public".into());
    config.routing_tag = Some("ingest".into());
    config.routing_queue = Some("High Cost User Queries".into());
    let client = FlightSqlClient::new(config).unwrap();
    client.execute("SELECT 1", StatementKind::Read).await.unwrap();
    client.execute("SELECT 2", StatementKind::Read).await.unwrap();
    let headers = first.headers.lock().unwrap().clone();
    for expected in ["schema=datafusion.public", "routing_tag=ingest", "routing_queue=High Cost User Queries"] {
        // Sent on both calls of each statement (GetFlightInfo and DoGet), so any new session gets them.
        assert_eq!(headers.iter().filter(|h| *h == expected).count(), 4, "{expected} in {headers:?}");
    }

    // Crash: every connection dropped mid-session.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let down = client.execute("SELECT 3", StatementKind::Read).await.unwrap_err();
    assert!(matches!(down, DremioError::Unavailable(_)), "{down}");
    // Two consecutive outages open the circuit: the next call fails at once, without waiting on the network.
    let _ = client.execute("SELECT 3", StatementKind::Read).await;
    let started = std::time::Instant::now();
    let open = client.execute("SELECT 3", StatementKind::Read).await.unwrap_err();
    assert!(matches!(open, DremioError::CircuitOpen { .. }) && open.is_retryable(), "{open}");
    assert!(started.elapsed() < Duration::from_millis(50), "failing fast took {:?}", started.elapsed());

    // Back on the same port with a new token: after the cool-down the channel reconnects by itself and the
    // refused old token is replaced by signing in again.
    let _second = start(state, port, 2).await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let rows = client.execute("SELECT 4 AS v", StatementKind::Read).await.expect("reconnected and signed in again");
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert!(matches!(token.execute("SELECT 1", StatementKind::Read).await, Err(DremioError::Unauthenticated(_))), "tokens cannot renew themselves");
}

/// `--writer dremio` against a server that refuses the MERGE (the stand-in has none): the commit fails as a
/// statement error and nothing staged is lost or left behind in the MERGE's staging folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_merge_keeps_everything_staged() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let stand_in = start(session_over(&lake).await, 0, 1).await;
    let client = Arc::new(FlightSqlClient::new(client_config(stand_in.port, basic())).unwrap());
    let writer = DremioWriter {
        client,
        table: TablePath::parse("datafusion.public.sentiment_records").unwrap(),
        warehouse: TablePath::parse("lake").unwrap(),
    };
    let lake = lake.with_records_writer(std::sync::Arc::new(writer));
    let ndjson: Vec<u8> = events(instant("2026-11-20T00:00:00Z"), 0, 30).iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, "dremio-writer", None).unwrap();
    sentiment_lake::ingest::Pipeline::new(sentiment_lake::enrich::IncompletePolicy::DeadLetter).ingest(&lake, &batch).await.unwrap();
    let staged = lake.pending(TableKind::Records).await.unwrap().len();
    assert!(staged > 0);
    let error = lake.commit().await.unwrap_err();
    assert!(error.to_string().contains("dremio"), "{error}");
    assert_eq!(lake.pending(TableKind::Records).await.unwrap().len(), staged, "every staged entry is still there");
    assert!(files_under(&dir.path().join(sentiment_lake::dremio::DREMIO_STAGING_DIR), ".parquet").is_empty(), "the MERGE's input was removed");
}

/// `--maintenance dremio` runs its statements under the lake's lease and reports each one; a server that
/// refuses them (the stand-in has no OPTIMIZE or VACUUM) makes the run report failures, not pass silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dremio_maintenance_reports_each_statement() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 20).await;
    let stand_in = start(session_over(&lake).await, 0, 1).await;
    let client = Arc::new(FlightSqlClient::new(client_config(stand_in.port, basic())).unwrap());
    let backend = sentiment_lake::maintain::MaintenanceBackend::Dremio(Arc::new(sentiment_lake::maintain::DremioMaintainer {
        client,
        table: TablePath::parse("datafusion.public.sentiment_records").unwrap(),
        catalog: DremioCatalog::Filesystem,
        compact_window: Duration::from_secs(3 * 86_400),
    }));
    let policy = sentiment_lake::maintain::MaintenancePolicy::default();
    for _ in 0..2 {
        let report = sentiment_lake::maintain::run_with(&lake, &policy, &backend).await.unwrap();
        assert!(report.ran, "the lease was released by the run before");
        let dremio = report.dremio.expect("the statements' report");
        let steps: Vec<(&str, &str)> = dremio.statements.iter().map(|s| (s.step, s.outcome)).collect();
        assert_eq!(steps, [("refresh", "failed"), ("compact", "failed"), ("expire", "failed")]);
        assert!(dremio.failed() && dremio.statements.iter().all(|s| s.error.is_some()));
    }
}

/// `doctor --engine dremio` through the real binary: what the stand-in can do passes (sign-in, the table's
/// schema against the seed contract), what only Dremio has fails with a hint, and the exit code says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_flight_sql_server_against_the_contract() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 20).await;
    let stand_in = start(session_over(&lake).await, 0, 1).await;
    let run = |password: &'static str| {
        let port = stand_in.port;
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
                .args(["doctor", "--engine", "dremio", "--dremio-user", USER, "--dremio-table", "datafusion.public.sentiment_records"])
                .arg("--dremio-url")
                .arg(format!("grpc://127.0.0.1:{port}"))
                .env("SENTIMENT_LAKE_DREMIO_PASSWORD", password)
                .env("SENTIMENT_LAKE_DREMIO_RETRIES", "0")
                .output()
                .unwrap()
        })
    };
    let output = run(PASSWORD).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(!output.status.success());
    assert!(stdout.contains("[ok]   connection and sign-in"), "{stdout}");
    assert!(stdout.contains("[ok]   table schema: 22 columns; every seed column present with its type"), "{stdout}");
    assert!(stdout.contains("[FAIL] current snapshot"), "the stand-in has no table_history: {stdout}");
    assert!(stdout.contains("[FAIL] idempotent MERGE"), "the stand-in has no MERGE: {stdout}");
    assert!(
        stdout.contains("[--]   reflection sentiment_lake_rollup: not created")
            && stdout.contains("ALTER TABLE \"datafusion\".\"public\".\"sentiment_records_rollup\" CREATE AGGREGATE REFLECTION"),
        "the reflections are printed: {stdout}"
    );
    assert!(!stdout.contains(PASSWORD) && !String::from_utf8_lossy(&output.stderr).contains(PASSWORD), "the password is never printed");

    let refused = run("wrong").await.unwrap();
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success());
    assert!(stdout.contains("[FAIL] connection and sign-in") && stdout.contains("hint: check --dremio-user"), "{stdout}");
}

/// `grpc+tls://` with a private CA: trusted through `--dremio-tls-ca`, refused without it, and a plain
/// connection to a TLS port fails as an outage, not as a statement error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let dir = warehouse();
    let lake = lake_with_events(dir.path(), 10).await;
    let certs = tempfile::tempdir().unwrap();
    common::tls::make_server_certificate(certs.path());
    let stand_in = start_with(session_over(&lake).await, 0, 1, Some(certs.path())).await;
    let config = |scheme: &str, ca: bool| {
        let mut config = client_config(stand_in.port, basic());
        config.url = format!("{scheme}://127.0.0.1:{}", stand_in.port);
        config.max_retries = 0;
        config.tls_ca_file = ca.then(|| certs.path().join("ca.pem").display().to_string());
        config
    };
    let trusted = FlightSqlClient::new(config("grpc+tls", true)).unwrap();
    let rows = trusted.execute("SELECT count(*) FROM sentiment_records", StatementKind::Read).await.unwrap();
    assert_eq!(rows[0].num_rows(), 1);
    let untrusted = FlightSqlClient::new(config("grpc+tls", false)).unwrap();
    let e = untrusted.execute("SELECT 1", StatementKind::Read).await.unwrap_err();
    assert!(matches!(e, DremioError::Unavailable(_)), "an unknown CA is refused: {e}");
    let plain = FlightSqlClient::new(config("grpc", false)).unwrap();
    let e = plain.execute("SELECT 1", StatementKind::Read).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
