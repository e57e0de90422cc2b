//! `migrate`: legacy Parquet files (a file, a directory, or an `abfss://` prefix) into the table.

use anyhow::Context;
use object_store::path::Path;
use object_store::ObjectMeta;

use crate::ingest::Pipeline;
use crate::lake::Lake;
use crate::migrate::layout::Mapping;
use crate::migrate::reconcile::LegacyRows;
use crate::migrate::{list_parquet, migrate_file};
use crate::storage::{Location, OpenedLocation, StorageSettings};

fn read_mapping(file: Option<&std::path::Path>) -> anyhow::Result<Mapping> {
    match file {
        Some(file) => {
            Mapping::parse(&std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?).map_err(anyhow::Error::msg)
        }
        None => Ok(Mapping::default()),
    }
}

/// The Parquet files the paths name: a path ending in `.parquet` is one file, anything else a folder or
/// prefix listed recursively.
async fn legacy_files(paths: &[String], settings: &StorageSettings) -> anyhow::Result<Vec<(OpenedLocation, ObjectMeta)>> {
    let mut work = Vec::new();
    for path in paths {
        let (folder, file) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((folder, name)) if name.ends_with(".parquet") => (folder.to_string(), Some(name.to_string())),
            _ => (path.clone(), None),
        };
        let opened = OpenedLocation::open(Location::parse(&folder)?, settings).with_context(|| format!("opening {folder}"))?;
        let files = match &file {
            Some(name) => vec![opened.head(&Path::from(name.as_str())).await.with_context(|| format!("reading {path}"))?],
            None => list_parquet(&opened.store, None).await?,
        };
        work.extend(files.into_iter().map(|meta| (opened.clone(), meta)));
    }
    Ok(work)
}

/// `reconcile`: the legacy files against the table; fails (non-zero exit) on any difference.
pub async fn reconcile(lake: &Lake, settings: &StorageSettings, paths: &[String], mapping: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mapping = read_mapping(mapping)?;
    let mut legacy = LegacyRows::default();
    for (opened, meta) in legacy_files(paths, settings).await? {
        legacy.add_file(opened.store.clone(), &opened.location.url(), &meta, &mapping).await?;
    }
    let report = crate::migrate::reconcile::reconcile(lake, &legacy).await?;
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"agrees": report.agrees(), "report": report}))?);
    if !report.agrees() {
        anyhow::bail!(
            "the table and the legacy files differ: {} groups by count, {} ids missing, {} extra, {} scores",
            report.count_differences.len(),
            report.missing_from_table,
            report.extra_in_table,
            report.score_differences
        );
    }
    Ok(())
}

/// What the command is asked to do.
pub struct MigrateArgs<'a> {
    pub paths: &'a [String],
    pub mapping: Option<&'a std::path::Path>,
    /// Files migrated at once (each streams its own row groups; staging and enrichment use the blocking pool).
    pub workers: usize,
    pub commit: bool,
}

pub async fn run(lake: &Lake, pipeline: &Pipeline, settings: &StorageSettings, args: MigrateArgs<'_>) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mapping = read_mapping(args.mapping)?;
    let work = legacy_files(args.paths, settings).await?;
    // Progress by bytes (files differ in size far more than in rows per byte); drawn only on a terminal.
    let progress = indicatif::ProgressBar::new(work.iter().map(|(_, meta)| meta.size).sum());
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mapping = &mapping;
    let mut results = futures::stream::iter(work)
        .map(|(opened, meta)| async move {
            let result = migrate_file(lake, pipeline, opened.store.clone(), &opened.location.url(), &meta, mapping).await;
            (opened, meta, result)
        })
        .buffer_unordered(args.workers.max(1));
    let (mut reports, mut failures, mut rows) = (Vec::new(), Vec::new(), 0u64);
    while let Some((opened, meta, result)) = results.next().await {
        match result {
            Ok(report) => {
                rows += report.rows;
                reports.push(report);
            }
            Err(e) => {
                tracing::error!(file = %meta.location, error = %e, retryable = e.is_retryable(), "file not migrated");
                failures.push(serde_json::json!({"file": format!("{}/{}", opened.location.url(), meta.location), "error": e.to_string()}));
            }
        }
        progress.inc(meta.size);
        progress.set_message(format!("{rows} rows, {:.0} rows/s", rows as f64 / started.elapsed().as_secs_f64().max(1e-3)));
    }
    progress.finish_and_clear();
    eprintln!("{:<60} {:>10} {:>10} {:>14}", "file", "rows", "staged", "dead-lettered");
    for r in &reports {
        eprintln!("{:<60} {:>10} {:>10} {:>14}", r.source, r.rows, r.staged, r.dead_lettered);
    }
    for f in &failures {
        eprintln!("{:<60} failed: {}", f["file"].as_str().unwrap_or_default(), f["error"].as_str().unwrap_or_default());
    }
    eprintln!("{} files, {rows} rows in {:.1} s; {} failed", reports.len(), started.elapsed().as_secs_f64(), failures.len());
    let committed = if args.commit { lake.commit().await? } else { Vec::new() };
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"files": reports, "failed": failures, "committed": committed}))?);
    if !failures.is_empty() {
        anyhow::bail!("{} file(s) could not be migrated", failures.len());
    }
    Ok(())
}
