//! `replicate`: the lake's tables copied to a replica, once or every `--every` seconds.

use std::time::Duration;

use super::opts::ReplicaArgs;
use super::setup::Setup;
use crate::replica::{ReplicaConfig, Replicator, Source};
use crate::storage::AzureAuth;

/// How the replica at `location` is reached: the warehouse's storage settings, with the replica account's
/// own connection string when one is given.
pub fn replica_config(setup: &Setup, location: &str, args: &ReplicaArgs) -> ReplicaConfig {
    let mut storage = setup.config.storage.clone();
    if let Some(connection_string) = &args.connection_string {
        storage.azure.connection_string = Some(connection_string.clone());
        storage.azure.auth = AzureAuth::ConnectionString;
        storage.azure.blob_endpoint = None;
    }
    ReplicaConfig {
        location: location.to_string(),
        catalog_uri: args.catalog_uri.clone(),
        catalog_name: setup.config.catalog_name.clone(),
        catalog_auth: setup.config.catalog_auth,
        storage,
        lease: std::time::Duration::from_secs(args.lease_secs.max(1)),
    }
}

pub async fn replicate(setup: &Setup, location: &str, args: &ReplicaArgs, every: Option<u64>) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let replicator = Replicator::open(Source::lake(&lake)?, &replica_config(setup, location, args)).await?;
    loop {
        match replicator.round().await {
            Ok(report) => {
                println!("{}", serde_json::to_string(&report)?);
                if every.is_none() {
                    let failed = report.tables.iter().filter(|t| t.error.is_some()).count();
                    anyhow::ensure!(failed == 0, "replication stopped short for {failed} table(s); the replica stays at its last complete state");
                }
            }
            Err(e) if every.is_some() && e.is_retryable() => tracing::warn!(error = %e, "Replication round failed; trying again next round."),
            Err(e) => return Err(e.into()),
        }
        let Some(every) = every else { return Ok(()) };
        tokio::time::sleep(Duration::from_secs(every.max(1))).await;
    }
}

pub async fn promote(setup: &Setup) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let report = crate::replica::promote(&lake).await?;
    for table in &report.tables {
        let done = if table.already { "was promoted already" } else { "is a primary now" };
        eprintln!("{} (snapshot {:?}, a replica of {}) {done}", table.table, table.snapshot, table.replica_of);
    }
    eprintln!("Rewind each partition's checkpoint to the sequence number below (docs/recovery.md); events up to it are in the table:");
    for source in &report.sources {
        match &source.event_hubs {
            Some(p) => {
                eprintln!("  {}/{} consumer group {} partition {}: {}", p.namespace, p.hub, p.consumer_group, p.partition, source.sequence_number)
            }
            None => eprintln!("  {}: {}", source.source, source.sequence_number),
        }
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn restore(setup: &Setup, from: &str, args: &ReplicaArgs, snapshot: Option<&str>) -> anyhow::Result<()> {
    use crate::replica::{replica_source, RestorePoint};
    let source = replica_source(&replica_config(setup, from, args), &setup.config).await?;
    let point = match snapshot {
        None => RestorePoint::Latest,
        Some(at) => {
            let records = source.catalog.load_table(&source.tables.records).await?;
            let tagged = crate::lake::history::tags(records.metadata()).into_iter().find(|t| t.name == at);
            match tagged {
                Some(tag) => RestorePoint::Snapshot(tag.snapshot_id),
                None => {
                    RestorePoint::Snapshot(crate::engine::resolve_as_of(records.metadata(), crate::query::params::parse_as_of("--snapshot", at)?)?)
                }
            }
        }
    };
    let report = crate::replica::restore(source, &setup.config, point).await?;
    eprintln!("restored {} into {} at snapshot {:?}", from, setup.config.warehouse, report.snapshot);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

pub async fn drill(setup: &Setup, replica: &str, args: &ReplicaArgs, scratch: Option<&str>, scratch_catalog_uri: Option<&str>) -> anyhow::Result<()> {
    let primary = setup.open().await?;
    let source = crate::replica::replica_source(&replica_config(setup, replica, args), &setup.config).await?;
    // A scratch directory of its own, removed afterwards, unless the caller names the place.
    let temporary = scratch.is_none().then(|| std::env::temp_dir().join(format!("sentiment-lake-drill-{}", uuid::Uuid::now_v7())));
    let location = scratch.map(str::to_string).or_else(|| temporary.as_ref().map(|t| t.display().to_string())).unwrap_or_default();
    let scratch_config = crate::lake::LakeConfig {
        warehouse: location.clone(),
        catalog_type: crate::lake::CatalogType::Sql,
        catalog_uri: scratch_catalog_uri.map(str::to_string),
        ..setup.config.clone()
    };
    let report = crate::replica::drill(&primary, source, &scratch_config).await;
    if let Some(dir) = &temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    let report = report?;
    println!(
        "Restore drill: {replica} restored into {location} in {:.1} s, compared with the primary at snapshot {:?}\n",
        report.restore_seconds, report.snapshot
    );
    println!("{}", report.table());
    anyhow::ensure!(report.passed(), "the drill FAILED: the restored replica differs from the primary (see the table)");
    println!("PASS");
    Ok(())
}
