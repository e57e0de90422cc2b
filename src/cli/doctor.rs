//! `doctor`: checks each dependency in turn and says, for each failure, what to do about it.

use anyhow::bail;

use crate::app::{query_service, QueryOptions};
use crate::lake::{Lake, LakeConfig, TableKind, Warehouse, WarehouseLocation};
use crate::query::{Query, QueryKind};

struct Report {
    failures: usize,
}

impl Report {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("[ok]   {what}: {detail}");
    }
    fn fail(&mut self, what: &str, detail: impl std::fmt::Display, hint: &str) {
        self.failures += 1;
        println!("[FAIL] {what}: {detail}\n       hint: {hint}");
    }
}

pub async fn run(config: &LakeConfig, query: &QueryOptions) -> anyhow::Result<()> {
    let mut report = Report { failures: 0 };
    match WarehouseLocation::parse(&config.warehouse).and_then(|l| Warehouse::open(l, config.storage_props.clone())) {
        Ok(warehouse) => match probe(&warehouse).await {
            Ok(()) => report.ok("warehouse", format!("{} is writable", warehouse.url())),
            Err(e) => report.fail("warehouse", e, "check the path or URL, permissions, and for Azure the account key or identity"),
        },
        Err(e) => report.fail("warehouse", e, "pass --warehouse DIR (or SENTIMENT_LAKE_WAREHOUSE)"),
    }
    match Lake::open(config).await {
        Ok(lake) => {
            report.ok("catalog", format!("SQL catalog `{}` opened; namespace `{}` present", config.catalog_name, config.namespace));
            for kind in [TableKind::Records, TableKind::DeadLetters] {
                let target = lake.target(kind);
                match (lake.load(kind).await, lake.pending_segments(kind).await) {
                    (Ok(table), Ok(pending)) => {
                        let m = table.metadata();
                        let spec: Vec<String> = m.default_partition_spec().fields().iter().map(|f| format!("{}({})", f.transform, f.name)).collect();
                        let watermarks = crate::lake::CommittedState::read(m).map(|s| s.watermarks.len()).unwrap_or_default();
                        report.ok(
                            &format!("table {}", target.ident),
                            format!(
                                "schema compatible, spec [{}], snapshot {:?}, {} sources with watermarks, {} staged segments",
                                spec.join(", "),
                                m.current_snapshot_id(),
                                watermarks,
                                pending.len()
                            ),
                        );
                    }
                    (Err(e), _) | (_, Err(e)) => report.fail(&format!("table {}", target.ident), e, "see the error; the table metadata may be unreachable"),
                }
            }
            check_queries(&mut report, &lake, query).await;
        }
        Err(e) => report.fail("catalog", e, "check --catalog-uri; an incompatible table must be migrated or renamed with --table"),
    }
    println!("(Dremio and Azure checks arrive with their issues.)");
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
            Err(e) => report.fail("cache", e, "check --redis-url (rediss:// and port 6380 for Azure Cache for Redis) and the firewall; queries still work without it"),
        },
    }
    let Ok(query) = Query::parse(QueryKind::TopTickers, Some("days=1&limit=1"), chrono::Utc::now()) else { return };
    let started = std::time::Instant::now();
    match service.answer(&query).await {
        Ok(answer) => report.ok(
            &format!("engine {}", service.engine().name()),
            format!("top tickers of the last day at snapshot {:?} in {:.1} ms: {}", answer.stored.snapshot_id, started.elapsed().as_secs_f64() * 1e3, answer.stored.data),
        ),
        Err(e) => report.fail(&format!("engine {}", service.engine().name()), e, "see the error; the table's data files may be unreachable"),
    }
}

async fn probe(warehouse: &Warehouse) -> Result<(), String> {
    let path = format!("_doctor/{}.probe", uuid::Uuid::new_v4());
    let op = warehouse.operator();
    op.write(&path, b"probe".to_vec()).await.map_err(|e| format!("write: {e}"))?;
    let back = op.read(&path).await.map_err(|e| format!("read: {e}"))?;
    op.delete(&path).await.map_err(|e| format!("delete: {e}"))?;
    if back.to_vec() != b"probe" {
        return Err("read back different bytes".into());
    }
    Ok(())
}
