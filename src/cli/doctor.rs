//! `doctor`: checks each dependency in turn and says, for each failure, what to do about it.

use anyhow::bail;

use crate::app::{query_service, QueryOptions};
use crate::lake::{Lake, LakeConfig, TableKind};
use crate::query::{Query, QueryKind};
use crate::storage::{Location, Warehouse};

struct Report {
    failures: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("[ok]   {what}: {detail}");
    }
    fn warn(&self, what: &str, detail: impl std::fmt::Display, hint: &str) {
        println!("[WARN] {what}: {detail}\n       hint: {hint}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, hint: &str) {
        self.failures += 1;
        println!("[FAIL] {what}: {detail}\n       hint: {hint}");
    }
}

pub async fn run(config: &LakeConfig, query: &QueryOptions) -> anyhow::Result<()> {
    let mut report = Report { failures: 0 };
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
    match Lake::open(config).await {
        Ok(lake) => {
            report.ok("catalog", format!("SQL catalog `{}` opened; namespace `{}` present", config.catalog_name, config.namespace));
            for kind in [TableKind::Records, TableKind::DeadLetters] {
                let target = lake.target(kind);
                match (lake.load(kind).await, lake.pending(kind).await, lake.committed_state(kind).await) {
                    (Ok(table), Ok(pending), Ok(state)) => {
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
                        println!("       {path}: {} ({} bytes, {})", record.reason, record.bytes, record.quarantined_at);
                    }
                    report.warn(
                        "quarantine",
                        format!("{} item(s) could not be processed and are kept under _quarantine/", items.len()),
                        "read each item's .reason.json; fix the producer or replay the item, then delete it",
                    );
                }
                Err(e) => report.fail("quarantine", e, "check storage permissions (list, read)"),
            }
            check_queries(&mut report, &lake, query).await;
        }
        Err(e) => report.fail("catalog", e, "check --catalog-uri; an incompatible table must be migrated or renamed with --table"),
    }
    println!("(Dremio checks arrive with their issue.)");
    if report.failures > 0 {
        bail!("{} check(s) failed", report.failures);
    }
    Ok(())
}

/// The cache answers, and the engine answers a real query (the busiest ticker of the last day).
async fn check_queries(report: &mut Report, lake: &Lake, options: &QueryOptions) {
    let service = match query_service(lake, options) {
        Ok(service) => service,
        Err(e) => return report.fail("query service", e, "check --redis-url"),
    };
    match service.cache() {
        None => println!("[--]   cache: none configured (pass --redis-url to check one)"),
        Some(cache) => match cache.ping().await {
            Ok(rtt) => report.ok("cache", format!("{} answered PING in {:.1} ms", cache.name(), rtt.as_secs_f64() * 1e3)),
            Err(e) => report.fail(
                "cache",
                e,
                "check --redis-url (rediss:// and port 6380 for Azure Cache for Redis) and the firewall; queries still work without it",
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
