//! `doctor`: checks each dependency in turn and says, for each failure, what to do about it.

use anyhow::bail;

use super::backends::EngineKind;
use super::opts::{CacheArgs, InvocationLimit, SizingArgs};
use super::setup::Setup;
use crate::app::{query_service, DremioSetup, QueryOptions};
use crate::dremio::sql::{self, Literal};
use crate::dremio::{DremioError, StatementKind};
use crate::engine::{DremioEngine, QueryEngine, SnapshotSource};
use crate::lake::catalog::tls::{self as catalog_tls, TlsSettings};
use crate::lake::{Lake, LakeConfig, TableKind};
use crate::query::{Query, QueryKind};
use crate::storage::{Location, Warehouse};

/// The checks' lines, printed as they come (the CLI) or only kept (the app's `GET /api/doctor`).
pub struct Report {
    pub failures: usize,
    pub text: String,
    echo: bool,
}

impl Report {
    fn new(echo: bool) -> Self {
        Self { failures: 0, text: String::new(), echo }
    }
    fn line(&mut self, line: String) {
        if self.echo {
            println!("{line}");
        }
        self.text.push_str(&line);
        self.text.push('\n');
    }
    fn ok(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.line(format!("[ok]   {what}: {detail}"));
    }
    fn warn(&mut self, what: &str, detail: impl std::fmt::Display, hint: &str) {
        self.line(format!("[WARN] {what}: {detail}\n       hint: {hint}"));
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, hint: &str) {
        self.failures += 1;
        self.line(format!("[FAIL] {what}: {detail}\n       hint: {hint}"));
    }
    fn skipped(&mut self, what: &str, why: impl std::fmt::Display) {
        self.line(format!("[--]   {what}: {why}"));
    }
}

/// The checks, printed as they run; fails when one failed.
pub async fn run(config: &LakeConfig, query: &QueryOptions, sizing: anyhow::Result<crate::functions::sizing::Budget>) -> anyhow::Result<()> {
    let report = check(config, Ok(query.clone()), sizing, true).await;
    if report.failures > 0 {
        bail!("{} check(s) failed", report.failures);
    }
    Ok(())
}

/// The checks, one line (or a few) each: what `doctor` prints.
pub async fn check(
    config: &LakeConfig,
    query: anyhow::Result<QueryOptions>,
    sizing: anyhow::Result<crate::functions::sizing::Budget>,
    echo: bool,
) -> Report {
    let mut report = Report::new(echo);
    match sizing {
        Ok(budget) if budget.fits() => report.ok("instance memory", format!("the Event Hubs limits fit:\n{}", budget.render().trim_end())),
        Ok(budget) => report.warn(
            "instance memory",
            format!("the Event Hubs limits can exceed the instance's memory:\n{}", budget.render().trim_end()),
            "lower prefetchCount or maxEventBatchSize in host.json (docs/deploy.md, Sizing), or choose a larger instance",
        ),
        Err(e) => report.skipped("instance memory", format!("not checked ({e})")),
    }
    match Location::parse(&config.warehouse).and_then(|l| Warehouse::open(l, &config.storage)) {
        Ok(warehouse) => {
            report.ok("warehouse", format!("{} through {}", warehouse.url(), warehouse.access()));
            match probe(&warehouse).await {
                Ok(()) => report.ok("warehouse access", "write, read, list and delete work"),
                Err(e) => report.fail(
                    "warehouse access",
                    e,
                    "check the path or URL and its permissions; on Azure the identity needs Storage Blob Data Contributor on the account",
                ),
            }
        }
        Err(e) => report.fail("warehouse", e, "check --warehouse and, for Azure, the credential settings (see `--help`)"),
    }
    check_catalog_tls(&mut report, config).await;
    match Lake::open(config).await {
        Ok(lake) => {
            report.ok("catalog", format!("SQL catalog `{}` opened; namespace `{}` present", config.catalog_name, config.namespace));
            for kind in [TableKind::Records, TableKind::DeadLetters] {
                let target = lake.target(kind);
                match (lake.load(kind).await, lake.pending(kind).await, lake.committed_state(kind).await) {
                    (Ok(table), Ok(pending), Ok(state)) => {
                        for (source, awaited) in state.awaiting.iter() {
                            let from = awaited.after.map_or("its start".to_string(), |after| (after + 1).to_string());
                            report.warn(
                                &format!("table {}", target.ident),
                                format!(
                                    "awaiting the replay of {source} from {from} through {} (rolled back to snapshot {} at {}); its newer entries wait too",
                                    awaited.through, awaited.to_snapshot, awaited.at
                                ),
                                "replay the source from its checkpoint (docs/time-travel.md), or `sentiment-lake rollback --release <source>` if those events are gone",
                            );
                        }
                        let m = table.metadata();
                        let spec: Vec<String> = m.default_partition_spec().fields().iter().map(|f| format!("{}({})", f.transform, f.name)).collect();
                        report.ok(
                            &format!("table {}", target.ident),
                            format!(
                                "schema compatible, spec [{}], snapshot {:?}, {} sources with watermarks, {} staged entries ({} bytes)",
                                spec.join(", "),
                                m.current_snapshot_id(),
                                state.watermarks.len(),
                                pending.len(),
                                pending.bytes()
                            ),
                        );
                    }
                    (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => report.fail(
                        &format!("table {}", target.ident),
                        e,
                        "see the error; the table metadata may be unreachable or its ledger unreadable",
                    ),
                }
            }
            match crate::maintain::health::health(&lake, TableKind::Records, &Default::default(), chrono::Utc::now()).await {
                Ok(health) if health.warnings.is_empty() => report.ok(
                    "table health",
                    format!(
                        "{} data files in {} partitions ({:.0} % small), {} snapshots, {} manifests",
                        health.data_files,
                        health.partitions,
                        health.small_file_ratio * 100.0,
                        health.snapshots,
                        health.manifests
                    ),
                ),
                Ok(health) => {
                    report.warn("table health", health.warnings.join("; "), "run `sentiment-lake maintain` (or check the MaintainTable timer)")
                }
                Err(e) => report.fail("table health", e, "see the error; the table's manifests may be unreachable"),
            }
            check_signals(&mut report, &lake).await;
            let ledger = &lake.retired_target().ident;
            match lake.retired_sources().await {
                Ok(retired) => report.ok(&format!("table {ledger}"), format!("migration ledger: {} retired legacy files", retired.len())),
                Err(e) => {
                    report.fail(&format!("table {ledger}"), e, "see the error; the migration ledger's metadata or data files may be unreachable")
                }
            }
            match lake.quarantine().list().await {
                Ok(items) if items.is_empty() => report.ok("quarantine", "empty"),
                Ok(items) => {
                    for (path, record) in items.iter().take(5) {
                        report.line(format!("       {path}: {} ({} bytes, {})", record.reason, record.bytes, record.quarantined_at));
                    }
                    report.warn(
                        "quarantine",
                        format!("{} item(s) could not be processed and are kept under _quarantine/", items.len()),
                        "read each item's .reason.json; fix the producer or replay the item, then delete it",
                    );
                }
                Err(e) => report.fail("quarantine", e, "check storage permissions (list, read)"),
            }
            match &query {
                Ok(query) => check_queries(&mut report, &lake, query).await,
                Err(e) => report.fail("query service", format!("{e:#}"), "fix the cache and engine settings (--redis-url, --redis-auth, --engine)"),
            }
        }
        Err(e) => report.fail("catalog", e, "check --catalog-uri; an incompatible table must be migrated or renamed with --table"),
    }
    // After every check that may have needed a token: storage, the catalog, the cache.
    if let Some(identity) = config.storage.azure.built_identity() {
        match identity.answered() {
            Some(answered) => {
                report.ok("Entra identity", format!("{answered} answered (the same credential signs in to storage, the catalog and the cache)"))
            }
            None => report.warn(
                "Entra identity",
                format!("no token came from {}", identity.describe()),
                "see the failed checks above; on a laptop run `az login`, in Azure check the app's managed identity and its role assignments",
            ),
        }
    }
    report.skipped("Dremio", "run `sentiment-lake doctor --engine dremio --dremio-url ...` to check one");
    report
}

/// The data's signals (docs/operations.md), counted in the commit interval the app runs with.
async fn check_signals(report: &mut Report, lake: &Lake) {
    let interval = std::env::var("SENTIMENT_LAKE_COMMIT_INTERVAL_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let policy = crate::maintain::signals::SignalPolicy {
        interval: std::time::Duration::from_secs(interval),
        gap_grace: lake.policy().pass.gap_grace,
        ..Default::default()
    };
    match crate::maintain::signals::signals(lake, &policy, chrono::Utc::now()).await {
        Ok(signals) => {
            let stall = &signals.stalled_committer;
            if stall.firing {
                report.fail(
                    "signal stalled_committer",
                    format!(
                        "{} staged segment(s), the oldest {} s old (threshold {} s)",
                        stall.staged_segments,
                        stall.oldest_staged_age_s.unwrap_or(0),
                        stall.threshold_s
                    ),
                    "see `health` (commits.last_error); docs/operations.md#stalled-committer",
                );
            }
            let rate = &signals.dead_letter_rate;
            if rate.firing {
                report.warn(
                    "signal dead_letter_rate",
                    format!(
                        "{} dead letters and {} rows in the last {} s ({:.1} %)",
                        rate.dead_letters,
                        rate.records,
                        rate.window_s,
                        rate.ratio.unwrap_or(0.0) * 100.0
                    ),
                    "read the dead-letter table's reasons; after a fix, `sentiment-lake dead-letters replay` (docs/dead-letters.md)",
                );
            }
            for (source, age) in &signals.quiet_sources.quiet {
                report.warn("signal quiet_source", format!("{source}: no event for {age} s"), "docs/operations.md#quiet-source");
            }
            let drift = &signals.score_drift;
            for d in drift.distributions.iter().filter(|d| d.firing) {
                report.warn(
                    "signal score_drift",
                    format!(
                        "{} {}: PSI {:.2} (threshold {}) over {} rows against {} of the week before",
                        d.key.source_system,
                        d.key.model_label(),
                        d.psi.unwrap_or(0.0),
                        drift.threshold,
                        d.current_rows,
                        d.baseline_rows
                    ),
                    "docs/quality.md#score-drift: a producer's scale or model changed, or the news did",
                );
            }
            if signals.firing.is_empty() {
                report.ok(
                    "signals",
                    format!(
                        "no stalled commit, dead-letter rate {:.1} % over {} s, {} Event Hubs source(s) heard within {} s, {} model version(s) without score drift",
                        rate.ratio.unwrap_or(0.0) * 100.0,
                        rate.window_s,
                        signals.quiet_sources.watched,
                        signals.quiet_sources.threshold_s,
                        drift.distributions.len()
                    ),
                );
            }
        }
        Err(e) => report.fail("signals", e, "see the error; the staging area, table metadata or the quality table may be unreachable"),
    }
}

/// The catalog database's TLS: the mode the URI asks for and the certificate the server presents, verified
/// the way the real connections verify it.
async fn check_catalog_tls(report: &mut Report, config: &LakeConfig) {
    let uri = match config.catalog_type {
        crate::lake::CatalogType::Sql => config.catalog_uri.as_deref(),
        crate::lake::CatalogType::Rest => config.lease_uri.as_deref(),
    };
    let Some(uri) = uri else { return };
    let settings = match TlsSettings::from_uri(uri) {
        Ok(Some(settings)) => settings,
        Ok(None) => return,
        Err(e) => return report.fail("catalog TLS", e, "fix sslmode in the catalog URI"),
    };
    let loopback = settings.host == "localhost" || settings.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match catalog_tls::inspect(&settings).await {
        Ok(tls) if tls.verified() => report.ok("catalog TLS", tls.describe()),
        Ok(tls) if loopback => report.ok("catalog TLS", format!("{} (a loopback server)", tls.describe())),
        Ok(tls) => report.warn(
            "catalog TLS",
            tls.describe(),
            "use sslmode=verify-full in the catalog URI (Azure Database for PostgreSQL's certificates chain to Mozilla's roots; sslrootcert=<CA file> for a private CA)",
        ),
        Err(e) => report.fail("catalog TLS", e, "check the catalog URI's host, sslmode and sslrootcert"),
    }
}

/// The cache answers, and the engine answers a real query (the busiest ticker of the last day).
async fn check_queries(report: &mut Report, lake: &Lake, options: &QueryOptions) {
    let service = match query_service(lake, options) {
        Ok(service) => service,
        Err(e) => return report.fail("query service", e, "check --redis-url"),
    };
    match service.cache() {
        None => report.skipped("cache", "none configured (pass --redis-url to check one)"),
        Some(cache) => match cache.ping().await {
            Ok(rtt) => report.ok("cache", format!("{} answered PING in {:.1} ms", cache.describe(), rtt.as_secs_f64() * 1e3)),
            Err(e) => report.fail(
                "cache",
                e,
                "check --redis-url (rediss:// and port 10000 for Azure Managed Redis, 6380 for Azure Cache for Redis), --redis-auth (entra needs an access policy assignment for the identity) and the firewall; queries still work without it",
            ),
        },
    }
    let Ok(query) = Query::parse(QueryKind::TopTickers, Some("days=1&limit=1"), chrono::Utc::now()) else {
        return;
    };
    let started = std::time::Instant::now();
    match service.answer(&query).await {
        Ok(answer) => report.ok(
            &format!("engine {}", service.engine().name()),
            format!(
                "top tickers of the last day at snapshot {:?} in {:.1} ms: {}",
                answer.stored.snapshot_id,
                started.elapsed().as_secs_f64() * 1e3,
                answer.stored.data
            ),
        ),
        Err(e) => report.fail(&format!("engine {}", service.engine().name()), e, "see the error; the table's data files may be unreachable"),
    }
}

/// Exercises each permission the lake needs on its warehouse, naming the first that fails.
async fn probe(warehouse: &Warehouse) -> Result<(), String> {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let dir = object_store::path::Path::from(format!("_doctor/{}", uuid::Uuid::new_v4()));
    let path = dir.clone().join("probe");
    let store = warehouse.store();
    store.put(&path, object_store::PutPayload::from_static(b"probe")).await.map_err(|e| format!("write: {e}"))?;
    let back = store.get(&path).await.map_err(|e| format!("read: {e}"))?.bytes().await.map_err(|e| format!("read: {e}"))?;
    let listed: Vec<_> = store.list(Some(&dir)).try_collect().await.map_err(|e| format!("list: {e}"))?;
    store.delete(&path).await.map_err(|e| format!("delete: {e}"))?;
    if back.as_ref() != b"probe" {
        return Err("read back different bytes".into());
    }
    if !listed.iter().any(|meta| meta.location == path) {
        return Err("list: the probe just written was not listed".into());
    }
    Ok(())
}

fn dremio_hint(e: &DremioError) -> &'static str {
    match e {
        DremioError::Unauthenticated(_) => "check --dremio-user and SENTIMENT_LAKE_DREMIO_PASSWORD (or the token); CE has no personal access tokens",
        DremioError::Unavailable(_) | DremioError::CircuitOpen { .. } => {
            "check --dremio-url (grpc://host:32010; grpc+tls:// when services.flight.ssl.enabled) and that port 32010 is reachable"
        }
        DremioError::Config(_) => "fix the setting named in the error",
        _ => "see Dremio's message; the job is in Dremio's job list",
    }
}

/// Names and types of the seed's columns missing or different in `got` (Dremio's view of the table).
pub fn contract_differences(seed: &arrow_schema::Schema, got: &arrow_schema::Schema) -> Vec<String> {
    use arrow_schema::DataType as T;
    fn family(t: &T) -> &'static str {
        match t {
            T::Utf8 | T::LargeUtf8 | T::Utf8View => "text",
            T::Timestamp(..) | T::Date64 => "timestamp",
            T::Float32 => "float",
            T::Float64 => "double",
            T::Boolean => "boolean",
            T::Int32 => "int",
            T::Int64 => "bigint",
            T::Binary | T::LargeBinary | T::BinaryView => "binary",
            T::Map(..) => "map",
            T::List(_) | T::LargeList(_) | T::ListView(_) => "list",
            T::Struct(_) => "struct",
            _ => "other",
        }
    }
    let mut differences = Vec::new();
    for field in seed.fields() {
        match got.fields().iter().find(|f| f.name().eq_ignore_ascii_case(field.name())) {
            None => differences.push(format!("{} is missing", field.name())),
            Some(other) if family(other.data_type()) != family(field.data_type()) => differences.push(format!(
                "{} is {} ({:?}), the contract says {}",
                field.name(),
                family(other.data_type()),
                other.data_type(),
                family(field.data_type())
            )),
            Some(_) => {}
        }
    }
    differences
}

/// `doctor --engine dremio`: the conformance check of a Dremio for this service.
pub async fn dremio(setup: &DremioSetup, create_reflections: bool) -> anyhow::Result<()> {
    let mut report = Report::new(true);
    let client = &setup.client;
    report.line(format!("Dremio at {} ({:?}), table {}", client.config().url, client.config().auth, setup.table));
    let started = std::time::Instant::now();
    match client.execute("SELECT 1 AS ok", StatementKind::Read).await {
        Ok(_) => report.ok("connection and sign-in", format!("a query ran in {:.1} ms", started.elapsed().as_secs_f64() * 1e3)),
        Err(e) => {
            let hint = dremio_hint(&e);
            report.fail("connection and sign-in", &e, hint);
            bail!("Dremio cannot be reached or refused the sign-in: nothing else can be checked");
        }
    }
    match client.plan_schema(&sql::schema_probe(&setup.table)).await {
        Ok(schema) => {
            let differences = contract_differences(&crate::schema::sentiment_arrow_schema(), &schema);
            if differences.is_empty() {
                report.ok("table schema", format!("{} columns; every seed column present with its type", schema.fields().len()));
            } else {
                report.fail(
                    "table schema",
                    differences.join("; "),
                    "create the table with the seed schema (docs/dremio.md: CREATE TABLE, or let the direct writer create it in the shared catalog)",
                );
            }
        }
        Err(e) => {
            let hint = if matches!(e, DremioError::Statement(_)) {
                "check --dremio-table (source.folder.table as Dremio names it) and that the table exists"
            } else {
                dremio_hint(&e)
            };
            report.fail("table schema", &e, hint);
        }
    }
    let engine = DremioEngine::new(client.clone(), setup.table.clone(), SnapshotSource::Dremio, setup.pin_snapshots);
    let snapshot = match engine.current_snapshot().await {
        Ok(snapshot) => {
            report.ok("current snapshot", format!("{:?} (from table_history)", snapshot.snapshot_id));
            Some(snapshot)
        }
        Err(e) => {
            report.fail("current snapshot", e, "Dremio's table_history() must work on the table (an Iceberg table, Dremio 24+)");
            None
        }
    };
    if let Some(snapshot) = snapshot {
        // Every API query once, in Dremio's dialect (FLATTEN, map access, DATE_TRUNC, window functions).
        let service = crate::query::QueryService::new(std::sync::Arc::new(engine), None, Default::default());
        let now = chrono::Utc::now();
        for kind in QueryKind::ALL {
            let params = match kind {
                QueryKind::TopTickers | QueryKind::Intents | QueryKind::Records | QueryKind::Toxicity | QueryKind::Entities => "days=7",
                _ => "ticker=AAPL&days=7",
            };
            let Ok(query) = Query::parse(kind, Some(params), now) else { continue };
            let started = std::time::Instant::now();
            match service.answer(&query).await {
                Ok(_) => report.ok(
                    &format!("query {}", kind.name()),
                    format!("answered at snapshot {:?} in {:.1} ms", snapshot.snapshot_id, started.elapsed().as_secs_f64() * 1e3),
                ),
                Err(e) => report.fail(
                    &format!("query {}", kind.name()),
                    e,
                    "this Dremio does not run the service's SQL; see docs/dremio.md (Dremio 25.1+ for MAP columns)",
                ),
            }
        }
    }
    check_reflections(&mut report, setup, create_reflections).await;
    check_merge(&mut report, setup).await;
    if report.failures > 0 {
        bail!("{} check(s) failed", report.failures);
    }
    Ok(())
}

/// The aggregate reflections matching the API's questions: printed, and created with
/// `--create-reflections` (an existing one of the same name is reported, not replaced).
async fn check_reflections(report: &mut Report, setup: &DremioSetup, create: bool) {
    let last = setup.table.parts().last().cloned().unwrap_or_default();
    let rollup = setup.table.sibling(&crate::lake::rollup_table_name(&last));
    for (name, statement) in sql::aggregate_reflections(&setup.table, &rollup) {
        if !create {
            report.skipped(&format!("reflection {name}"), format!("not created (doctor --create-reflections runs it):\n      {statement}"));
            continue;
        }
        match setup.client.execute(&statement, StatementKind::Once).await {
            Ok(_) => report.ok(&format!("reflection {name}"), format!("created: {statement}")),
            Err(e) => report.fail(
                &format!("reflection {name}"),
                e,
                "reflections need Dremio's ALTER TABLE ... CREATE AGGREGATE REFLECTION and the table (the rollup table is created by this lake beside the records)",
            ),
        }
    }
}

/// CREATE TABLE, the same insert-only MERGE twice (one row, then none), DROP TABLE, on a scratch table
/// beside the real one.
async fn check_merge(report: &mut Report, setup: &DremioSetup) {
    let client = &setup.client;
    let scratch = setup.table.sibling(&format!("sentiment_lake_doctor_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let create = format!("CREATE TABLE {scratch} (\"message_id\" VARCHAR, \"event_timestamp\" TIMESTAMP, \"n\" INT)");
    if let Err(e) = client.execute(&create, StatementKind::Once).await {
        let hint = "the user needs CREATE TABLE on the table's folder (and, on a filesystem source, \"Enable exports into the source\")";
        return report.fail("scratch table", e, hint);
    }
    let columns = ["message_id", "event_timestamp", "n"];
    let rows = vec![vec![Literal::Text("doctor-1"), Literal::Timestamp(chrono::Utc::now()), Literal::Double(1.0)]];
    let merge =
        sql::values_source(&columns, &rows).and_then(|source| sql::merge_insert(&scratch, &source, &columns, "message_id", None, "event_timestamp"));
    let outcome = match merge {
        Ok(merge) => {
            let first = client.execute(&merge, StatementKind::Idempotent).await.and_then(|b| crate::dremio::rows_inserted(&b));
            let second = client.execute(&merge, StatementKind::Idempotent).await.and_then(|b| crate::dremio::rows_inserted(&b));
            match (first, second) {
                (Ok(1), Ok(0)) => Ok("the same MERGE inserted 1 row, then 0".to_string()),
                (Ok(a), Ok(b)) => Err(format!("the same MERGE inserted {a} row(s), then {b}: expected 1, then 0")),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(detail) => report.ok("idempotent MERGE", detail),
        Err(detail) => report.fail("idempotent MERGE", detail, "--writer dremio needs Dremio 22+ MERGE on Iceberg tables; see the error"),
    }
    if let Err(e) = client.execute(&sql::drop_table(&scratch), StatementKind::Idempotent).await {
        report.warn("scratch table", e, &format!("drop {scratch} by hand"));
    }
}

/// `doctor`: the deployment's checks; with `--engine dremio`, the conformance check of the user's own Dremio.
pub async fn command(setup: &Setup, cache: &CacheArgs, sizing: &SizingArgs, limit: &InvocationLimit, create_reflections: bool) -> anyhow::Result<()> {
    match &setup.backends.dremio {
        Some(setup_of_dremio) if setup.backends.engine == EngineKind::Dremio => dremio(setup_of_dremio, create_reflections).await,
        _ => run(&setup.config, &setup.query_options(cache)?, sizing.budget(setup.commit_pass_mb, limit.max_invocation_mb)).await,
    }
}

/// `sizing`: the memory arithmetic of the host's limits on the chosen instance; fails when they can exceed it.
pub fn sizing(setup: &Setup, sizing: &SizingArgs, limit: &InvocationLimit) -> anyhow::Result<()> {
    let budget = sizing.budget(setup.commit_pass_mb, limit.max_invocation_mb)?;
    print!("{}", budget.render());
    anyhow::ensure!(
        budget.fits(),
        "the limits can exceed the instance's memory: lower prefetchCount or maxEventBatchSize, or choose a larger instance"
    );
    Ok(())
}
