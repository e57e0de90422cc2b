//! Flight SQL benchmark: what going through Dremio's wire protocol costs, measured against a real Flight SQL
//! server (`datafusion-flight-sql-server`, the tests' stand-in for Dremio) on loopback, in the same run as the
//! embedded engine answering the same SQL in process over the same table:
//! - API answer latency (time series by hour over a week, a records page) through the Dremio engine vs the
//!   embedded engine: the Flight round trips, Arrow IPC encoding and the client's decoding;
//! - streaming a whole table through the client: rows/s and MB/s of Arrow data vs collecting it in process;
//! - a call while the circuit is open vs a call to a server that is down.
//!
//! Run: `cargo bench --bench flight`. `FLIGHT_BENCH_ROWS` (default 200,000), `FLIGHT_BENCH_ITERATIONS` (50).
//! Server and client share this machine's cores, as a sidecar would; against a real Dremio the engine's own
//! work dominates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::context::SessionContext;
use datafusion_flight_sql_server::service::FlightSqlService;
use sentiment_lake::app::{query_service, DremioSetup, QueryEngineChoice, QueryOptions};
use sentiment_lake::dremio::sql::TablePath;
use sentiment_lake::dremio::{DremioAuth, DremioConfig, DremioError, FlightSqlClient, StatementKind};
use sentiment_lake::engine::{EmbeddedEngine, QueryEngine, SqlQuery, DEFAULT_MEMORY_LIMIT};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::ingest::file::batch_from_file;
use sentiment_lake::ingest::Pipeline;
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::query::{Query, QueryKind};
use sentiment_lake::synthetic::EventGenerator;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn p50(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn time<F, Fut, T>(iterations: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        std::hint::black_box(f().await);
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    p50(samples)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let rows: u64 = env_or("FLIGHT_BENCH_ROWS", 200_000);
        let iterations: usize = env_or("FLIGHT_BENCH_ITERATIONS", 50);
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&LakeConfig::local(dir.path().to_str().unwrap())).await.unwrap();
        let end = chrono::Utc::now();
        let mut generator = EventGenerator::new(11, end, 7, 20);
        let batch = batch_from_file(&generator.ndjson(0, rows), "flight-bench", None).unwrap();
        Pipeline::new(IncompletePolicy::DeadLetter).ingest(&lake, &batch).await.unwrap();
        lake.commit().await.unwrap();

        let table = lake.load(TableKind::Records).await.unwrap();
        let ctx = SessionContext::new();
        ctx.register_table("sentiment_records", sentiment_lake::engine::table_provider(table).await.unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let service = arrow_flight::flight_service_server::FlightServiceServer::new(FlightSqlService::new(ctx.state()));
        let ctx = ctx.clone();
        tokio::spawn(
            tonic::transport::Server::builder().add_service(service).serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let client = Arc::new(FlightSqlClient::new(DremioConfig::new(format!("grpc://127.0.0.1:{port}"), DremioAuth::None)).unwrap());

        let setup = DremioSetup {
            client: client.clone(),
            table: TablePath::parse("sentiment_records").unwrap(),
            warehouse: None,
            catalog: Default::default(),
            snapshots_from_catalog: true,
            pin_snapshots: false,
            compact_window: Duration::ZERO,
        };
        let embedded = query_service(&lake, &QueryOptions::default()).unwrap();
        let dremio = query_service(&lake, &QueryOptions { engine: QueryEngineChoice::Dremio(Arc::new(setup)), ..QueryOptions::default() }).unwrap();
        println!("Flight SQL benchmark: {rows} rows over 7 days x 20 tickers; p50 of {iterations} sequential runs each; stand-in server on loopback");
        println!();
        println!("| what | embedded, in process | Dremio engine over Flight SQL | Flight / embedded |");
        println!("|---|---:|---:|---:|");
        for (kind, params) in [(QueryKind::TimeSeries, "ticker=AAPL&interval=hour&days=7"), (QueryKind::Records, "ticker=AAPL&days=7&limit=100")] {
            let query = Query::parse(kind, Some(params), end).unwrap();
            let a = time(iterations, || async { embedded.answer(&query).await.unwrap() }).await;
            let b = time(iterations, || async { dremio.answer(&query).await.unwrap() }).await;
            println!("| `{}?{params}` answer, ms | {a:.2} | {b:.2} | {:.2}x |", kind.name(), b / a);
        }

        let sql = "SELECT * FROM sentiment_records";
        let engine = EmbeddedEngine::new(lake.catalog(), lake.target(TableKind::Records).ident.clone(), DEFAULT_MEMORY_LIMIT).unwrap();
        let snapshot = engine.current_snapshot().await.unwrap();
        let query = SqlQuery { text: sql.into(), params: Vec::new() };
        let scans = (iterations / 10).max(3);
        let local_batches = engine.execute(&snapshot, &query).await.unwrap();
        let bytes: usize = local_batches.iter().map(|b| b.get_array_memory_size()).sum();
        let remote_rows: usize = client.execute(sql, StatementKind::Read).await.unwrap().iter().map(|b| b.num_rows()).sum();
        let local_rows: usize = local_batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!((local_rows, remote_rows), (rows as usize, rows as usize), "both paths return the whole table");
        let local = time(scans, || async { engine.execute(&snapshot, &query).await.unwrap() }).await;
        let remote = time(scans, || async { client.execute(sql, StatementKind::Read).await.unwrap() }).await;
        // The stand-in's own session over the same provider, in process: what the server spends before Flight.
        let direct = time(scans, || async { ctx.sql(sql).await.unwrap().collect().await.unwrap() }).await;
        println!("| whole table, DataFusion session with default settings, in process, ms | {direct:.0} | | |");
        let mb = bytes as f64 / 1e6;
        println!("| whole table ({rows} rows, {mb:.0} MB of Arrow), ms | {local:.0} | {remote:.0} | {:.2}x |", remote / local);
        println!("| whole table, rows/s | {:.0} | {:.0} | |", rows as f64 / (local / 1e3), rows as f64 / (remote / 1e3));
        println!("| whole table, MB/s | {:.0} | {:.0} | |", mb / (local / 1e3), mb / (remote / 1e3));

        // Down: connection refused on a closed port, with the client's default retries, then with the circuit open.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = DremioConfig::new(format!("grpc://127.0.0.1:{closed}"), DremioAuth::None);
        config.breaker_threshold = u32::MAX;
        let down = FlightSqlClient::new(config.clone()).unwrap();
        let refused = time(5, || down.execute("SELECT 1", StatementKind::Read)).await;
        config.breaker_threshold = 1;
        config.breaker_cooldown = Duration::from_secs(3600);
        let breaking = FlightSqlClient::new(config).unwrap();
        let _ = breaking.execute("SELECT 1", StatementKind::Read).await;
        assert!(matches!(breaking.execute("SELECT 1", StatementKind::Read).await, Err(DremioError::CircuitOpen { .. })));
        let open = time(iterations, || breaking.execute("SELECT 1", StatementKind::Read)).await;
        println!();
        println!("| Dremio down | p50 |");
        println!("|---|---:|");
        println!("| a call to a closed port (3 retries with back-off, then 503) | {refused:.0} ms |");
        println!("| a call while the circuit is open (503 at once) | {:.1} µs |", open * 1e3);
    });
}
