//! The table's own commands: `commit`, `health`, `maintain`, `rollback`, `rollup`, `schema add-column`,
//! `dead-letters replay` and `create-table`.

use anyhow::Context;

use super::backends::WriterKind;
use super::opts::{DeadLetterAction, MaintainArgs, RollupAction, TagAction};
use super::setup::Setup;
use crate::lake::TableKind;
use crate::schema::extension::ColumnType;

pub async fn commit(setup: &Setup) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let committed = lake.commit().await?;
    let peak_rss_bytes = crate::observability::peak_rss_bytes();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"committed": committed, "peak_rss_bytes": peak_rss_bytes}))?);
    Ok(())
}

pub async fn dead_letters(setup: &Setup, action: &DeadLetterAction) -> anyhow::Result<()> {
    let DeadLetterAction::Replay { rule, field, source, since, dry_run } = action;
    let lake = setup.open().await?;
    let filter = crate::ingest::replay::ReplayFilter { rule: rule.clone(), field: field.clone(), source: source.clone(), since: *since };
    let options = crate::ingest::replay::ReplayOptions { dry_run: *dry_run, ..Default::default() };
    let report = crate::ingest::replay::replay(&lake, &setup.pipeline()?, &filter, options).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn health(setup: &Setup) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let health = crate::maintain::health::health(&lake, TableKind::Records, &Default::default(), chrono::Utc::now()).await?;
    println!("{}", serde_json::to_string_pretty(&health)?);
    Ok(())
}

pub async fn rollup(setup: &Setup, action: &RollupAction) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    match action {
        RollupAction::Verify { from, to } => {
            let window = from.zip(*to).map(|(from, to)| (from.timestamp_micros(), to.timestamp_micros()));
            let report = lake.verify_rollups(window).await?;
            let mismatches: Vec<_> = report
                .mismatches
                .iter()
                .map(|m| serde_json::json!({"key": format!("{:?}", m.key), "rollup": format!("{:?}", m.rollup), "raw": format!("{:?}", m.raw)}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "records_snapshot": report.records_snapshot,
                    "rollup_snapshot": report.rollup_snapshot,
                    "delta_snapshots": report.delta,
                    "rows_compared": report.rows_compared,
                    "mismatches": mismatches,
                }))?
            );
            if !report.mismatches.is_empty() {
                anyhow::bail!("{} rollup rows differ from their recomputation from raw rows", report.mismatches.len());
            }
        }
        RollupAction::Rebuild => println!("{}", serde_json::to_string_pretty(&lake.rebuild_rollups().await?)?),
        RollupAction::Repair => {
            let options = crate::lake::rollup::FollowOptions {
                max_appends: usize::MAX,
                rebuild_up_to_rows: 0,
                max_attempts: lake.policy().max_attempts,
                ..lake.follow_options()
            };
            let report = lake.follow_rollups(options).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if let Some(behind) = &report.behind {
                anyhow::bail!("the rollup cannot follow: {behind}");
            }
        }
    }
    Ok(())
}

pub async fn maintain(setup: &Setup, args: &MaintainArgs) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let report = crate::maintain::run_with(&lake, &args.policy(), &setup.backends.maintenance_backend()?).await?;
    let failed = report.dremio.as_ref().is_some_and(|d| d.failed());
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.ran {
        anyhow::bail!("another maintenance run holds the lease");
    }
    if failed {
        anyhow::bail!("Dremio refused a maintenance statement (see the report)");
    }
    Ok(())
}

pub async fn add_column(setup: &Setup, name: &str, column_type: ColumnType, doc: Option<&str>) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let schema = lake.add_column(name, column_type, doc).await?;
    let field = schema.field_by_name(name).context("the new column")?;
    println!("{}", serde_json::json!({"column": name, "field_id": field.id, "type": field.field_type.to_string(), "schema_id": schema.schema_id()}));
    Ok(())
}

/// `rollback --release <source>`.
pub async fn release(setup: &Setup, source: &str) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    match lake.release_awaited(TableKind::Records, source).await? {
        Some(released) => println!("{}", serde_json::to_string_pretty(&serde_json::json!({"released": source, "range": released}))?),
        None => anyhow::bail!("nothing is awaited for {source} (see `sentiment-lake health`)"),
    }
    Ok(())
}

/// `rollback --to <snapshot or instant>`.
pub async fn rollback(setup: &Setup, to: Option<&str>) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let to = to.context("--to is required")?;
    let as_of = crate::query::params::parse_as_of("--to", to)?;
    let table = lake.load(TableKind::Records).await?;
    let target = crate::engine::resolve_as_of(table.metadata(), as_of)?;
    match lake.rollback(TableKind::Records, target).await? {
        Some(report) => println!("{}", serde_json::to_string_pretty(&report)?),
        None => println!("snapshot {target} is already current; nothing to do"),
    }
    Ok(())
}

pub async fn create(setup: &Setup) -> anyhow::Result<()> {
    match (&setup.backends.dremio, setup.backends.writer) {
        (Some(dremio), WriterKind::Dremio) => {
            let statement =
                crate::dremio::sql::create_table(&dremio.table, &crate::schema::sentiment_schema(), &setup.config.layout.partition_spec())?;
            println!("{statement};");
            let answer = dremio.client.execute(&statement, crate::dremio::StatementKind::Idempotent).await?;
            let rows: usize = answer.iter().map(|b| b.num_rows()).sum();
            println!("-- Dremio answered with {rows} row(s)");
            Ok(())
        }
        _ => {
            let lake = setup.open().await?;
            let ident = &lake.target(TableKind::Records).ident;
            println!("{ident} is in the catalog (snapshot {:?})", lake.load(TableKind::Records).await?.metadata().current_snapshot_id());
            Ok(())
        }
    }
}

pub async fn tag(setup: &Setup, action: &TagAction) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let table = lake.load(TableKind::Records).await?;
    match action {
        TagAction::Create { name, snapshot } => {
            let snapshot_id = match snapshot {
                Some(at) => crate::engine::resolve_as_of(table.metadata(), crate::query::params::parse_as_of("--snapshot", at)?)?,
                None => table.metadata().current_snapshot_id().context("the table has no snapshot to tag yet")?,
            };
            let tag = lake.create_tag(TableKind::Records, name, snapshot_id).await?;
            println!("{}", serde_json::to_string_pretty(&tag)?);
        }
        TagAction::List => println!("{}", serde_json::to_string_pretty(&crate::lake::history::tags(table.metadata()))?),
    }
    Ok(())
}
