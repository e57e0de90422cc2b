//! `doctor`: checks each dependency in turn and says, for each failure, what to do about it.

use anyhow::bail;

use crate::lake::{Lake, LakeConfig, TableKind, Warehouse, WarehouseLocation};

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

pub async fn run(config: &LakeConfig) -> anyhow::Result<()> {
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
        }
        Err(e) => report.fail("catalog", e, "check --catalog-uri; an incompatible table must be migrated or renamed with --table"),
    }
    println!("(Redis, Dremio and Azure checks arrive with the query and Azure issues.)");
    if report.failures > 0 {
        bail!("{} check(s) failed", report.failures);
    }
    Ok(())
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
