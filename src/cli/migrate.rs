//! `migrate`: legacy Parquet files (a file, a directory, or an `abfss://` prefix) into the table.

use anyhow::Context;
use object_store::path::Path;
use object_store::ObjectStoreExt;

use crate::ingest::Pipeline;
use crate::lake::Lake;
use crate::migrate::layout::Mapping;
use crate::migrate::{list_parquet, migrate_file};
use crate::storage::{Location, OpenedLocation, StorageSettings};

pub async fn run(
    lake: &Lake,
    pipeline: &Pipeline,
    settings: &StorageSettings,
    paths: &[String],
    mapping: Option<&std::path::Path>,
    commit: bool,
) -> anyhow::Result<()> {
    let mapping = match mapping {
        Some(file) => {
            Mapping::parse(&std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?).map_err(anyhow::Error::msg)?
        }
        None => Mapping::default(),
    };
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for path in paths {
        // A path ending in .parquet is one file: open its folder and take that object alone.
        let (folder, file) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((folder, name)) if name.ends_with(".parquet") => (folder.to_string(), Some(name.to_string())),
            _ => (path.clone(), None),
        };
        let opened = OpenedLocation::open(Location::parse(&folder)?, settings).with_context(|| format!("opening {folder}"))?;
        let files = match &file {
            Some(name) => {
                let location = Path::from(name.as_str());
                let mut meta = opened.store.head(&location).await.with_context(|| format!("reading {path}"))?;
                // object_store 0.13's PrefixStore answers `head` with the path under its prefix included.
                meta.location = location;
                vec![meta]
            }
            None => list_parquet(&opened.store, None).await?,
        };
        for meta in files {
            match migrate_file(lake, pipeline, opened.store.clone(), &opened.location.url(), &meta, &mapping).await {
                Ok(report) => reports.push(report),
                Err(e) => {
                    tracing::error!(file = %meta.location, error = %e, retryable = e.is_retryable(), "file not migrated");
                    failures.push(serde_json::json!({"file": format!("{}/{}", opened.location.url(), meta.location), "error": e.to_string()}));
                }
            }
        }
    }
    let committed = if commit { lake.commit().await? } else { Vec::new() };
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"files": reports, "failed": failures, "committed": committed}))?);
    if !failures.is_empty() {
        anyhow::bail!("{} file(s) could not be migrated", failures.len());
    }
    Ok(())
}
