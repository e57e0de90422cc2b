//! `migrate`: legacy Parquet files (a file, a directory, or an `abfss://` prefix) into the table.

use anyhow::Context;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::ingest::Pipeline;
use crate::lake::Lake;
use crate::migrate::layout::Mapping;
use crate::migrate::plan::{plan_file, FilePlan, Status};
use crate::migrate::reconcile::{LegacyRows, Reconciliation};
use crate::migrate::rules::Rules;
use crate::migrate::{list_parquet, retire_files, FileReport, MigrateError, MigrateOptions, Migration};
use crate::storage::{Location, OpenedLocation, StorageSettings};

/// The run's rules: a rules file, one mapping for every file, or inference alone.
pub fn load_rules(mapping: Option<&std::path::Path>, rules: Option<&std::path::Path>) -> anyhow::Result<Rules> {
    let read = |file: &std::path::Path| std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()));
    match (mapping, rules) {
        (_, Some(rules)) => Rules::parse(&read(rules)?).map_err(anyhow::Error::msg),
        (Some(mapping), None) => Ok(Rules::everywhere(Mapping::parse(&read(mapping)?).map_err(anyhow::Error::msg)?)),
        (None, None) => Ok(Rules::default()),
    }
}

/// Refuses rules that match none of the run's files: a mistyped glob would leave its files to inference.
fn check_rules(rules: &Rules, work: &[(OpenedLocation, ObjectMeta)]) -> anyhow::Result<()> {
    let unmatched = rules.unmatched(work.iter().map(|(_, meta)| meta.location.as_ref()));
    if !work.is_empty() && !unmatched.is_empty() {
        anyhow::bail!("the rules file has rules that match none of the run's {} files: `{}`", work.len(), unmatched.join("`, `"));
    }
    Ok(())
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
pub async fn reconcile(lake: &Lake, settings: &StorageSettings, paths: &[String], rules: &Rules) -> anyhow::Result<()> {
    let mut legacy = LegacyRows::default();
    for (opened, meta) in legacy_files(paths, settings).await? {
        legacy.add_file(lake, opened.store.clone(), &opened.location.url(), &meta, rules).await?;
    }
    let report = crate::migrate::reconcile::reconcile(lake, &legacy).await?;
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"agrees": report.agrees(), "report": report}))?);
    if !report.agrees() {
        anyhow::bail!(
            "the table and the legacy files differ: {} groups by count, {} ids missing, {} extra, {} twice, {} scores, {} checksums",
            report.count_differences.len(),
            report.missing_from_table,
            report.extra_in_table,
            report.duplicated_in_table,
            report.score_differences,
            report.checksum_differences.len()
        );
    }
    Ok(())
}

/// What the command is asked to do.
pub struct MigrateArgs<'a> {
    pub paths: &'a [String],
    pub rules: Rules,
    /// Only show what a run would do.
    pub plan: bool,
    /// Files migrated at once (each streams its own row groups; staging and enrichment use the blocking pool).
    pub workers: usize,
    pub commit: bool,
    /// After the commit, read the files again and check the table against them.
    pub verify: bool,
    /// A location for the JSON reports.
    pub report: Option<&'a str>,
    pub options: MigrateOptions,
}

/// The run's verification: every file's rows accounted for, and the table against the files.
#[derive(Debug, serde::Serialize)]
struct Verification {
    verified: bool,
    /// Files whose rows read != committed before + staged + dead-lettered.
    unaccounted_files: Vec<String>,
    reconciliation: Reconciliation,
}

pub async fn run(lake: &Lake, pipeline: &Pipeline, settings: &StorageSettings, args: MigrateArgs<'_>) -> anyhow::Result<()> {
    use futures::StreamExt;
    // Each file's id check must see the rows of the files before it: one at a time, each committed.
    let commit_each = args.options.dedup_ids;
    if commit_each && !args.commit {
        anyhow::bail!("--dedup-ids commits after each file, so that the next file's check sees its rows: it cannot be used with --no-commit");
    }
    let work = legacy_files(args.paths, settings).await?;
    check_rules(&args.rules, &work)?;
    if args.plan {
        return plan(lake, pipeline, &args.rules, work, args.workers).await;
    }
    let migration = Migration::new(args.rules, args.options);
    let run_id = format!("{}-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let reports_to = match args.report {
        Some(location) => Some(OpenedLocation::open(Location::parse(location)?, settings).with_context(|| format!("opening {location}"))?),
        None => None,
    };
    // Progress by bytes (files differ in size far more than in rows per byte); drawn only on a terminal.
    let progress = indicatif::ProgressBar::new(work.iter().map(|(_, meta)| meta.size).sum());
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let migration = &migration;
    let mut results = futures::stream::iter(work)
        .map(|(opened, meta)| async move {
            let result = async {
                let report = migration.file(lake, pipeline, opened.store.clone(), &opened.location.url(), &meta).await?;
                let commits = if commit_each { lake.commit().await? } else { Vec::new() };
                Ok::<_, MigrateError>((report, commits))
            }
            .await;
            (opened, meta, result)
        })
        .buffer_unordered(if commit_each { 1 } else { args.workers.max(1) });
    let (mut reports, mut migrated, mut failures, mut refused, mut committed, mut rows) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0u64);
    while let Some((opened, meta, result)) = results.next().await {
        let file = format!("{}/{}", opened.location.url(), meta.location);
        match result {
            Ok((report, commits)) => {
                rows += report.rows;
                reports.push(report);
                committed.extend(commits);
                migrated.push((opened, meta.clone()));
            }
            // Refused by design, not failed: the run goes on and says so.
            Err(e @ MigrateError::DualWrite { .. }) => refused.push(serde_json::json!({"file": file, "reason": e.to_string()})),
            Err(e) => failures.push(serde_json::json!({"file": file, "error": e.to_string()})),
        }
        progress.inc(meta.size);
        progress.set_message(format!("{rows} rows, {:.0} rows/s", rows as f64 / started.elapsed().as_secs_f64().max(1e-3)));
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{:<60} {:>10} {:>10} {:>14} {:>16}", "file", "rows", "staged", "dead-lettered", "already in table");
    for r in &reports {
        eprintln!("{:<60} {:>10} {:>10} {:>14} {:>16}", r.file, r.rows, r.staged, r.dead_lettered, r.already_in_table);
        if let Some(first) = &r.same_as {
            eprintln!("{:<60} the same content as {first}: migrated once, there", "");
        }
    }
    for f in &failures {
        eprintln!("{:<60} failed: {}", f["file"].as_str().unwrap_or_default(), f["error"].as_str().unwrap_or_default());
    }
    for f in &refused {
        eprintln!("{:<60} refused: {}", f["file"].as_str().unwrap_or_default(), f["reason"].as_str().unwrap_or_default());
    }
    eprintln!("{} files, {rows} rows in {seconds:.1} s; {} failed, {} refused", reports.len(), failures.len(), refused.len());
    let (mut retirement, mut verification) = (None, None);
    if args.commit {
        committed.extend(lake.commit().await?);
        retirement = Some(retire_files(lake, &reports).await?);
        if args.verify {
            let verified = verify(lake, &migrated, &migration.rules, &reports).await?;
            eprintln!("verification: {}", if verified.verified { "every row accounted for, the table agrees with the files" } else { "FAILED" });
            verification = Some(verified);
        }
    }
    let run = serde_json::json!({
        "run_id": run_id,
        "seconds": seconds,
        "rows": rows,
        "files": reports,
        "failed": failures,
        "refused": refused,
        "committed": committed,
        "retirement": retirement,
        "verification": verification,
    });
    if let Some(to) = &reports_to {
        write_reports(to, &run_id, &reports, &run).await?;
        eprintln!("reports written to {}/{run_id}/", to.location.url());
    }
    println!("{}", serde_json::to_string_pretty(&run)?);
    if !failures.is_empty() {
        anyhow::bail!("{} file(s) could not be migrated", failures.len());
    }
    if verification.as_ref().is_some_and(|v| !v.verified) {
        anyhow::bail!("the migration did not verify (see `verification` in the report)");
    }
    Ok(())
}

/// `migrate --plan`: every file's plan, a line each on stderr and all of it as JSON on stdout; fails when a
/// file needs a rule or cannot be read.
async fn plan(lake: &Lake, pipeline: &Pipeline, rules: &Rules, work: Vec<(OpenedLocation, ObjectMeta)>, workers: usize) -> anyhow::Result<()> {
    use futures::StreamExt;
    let plans: Vec<FilePlan> = futures::stream::iter(work)
        .map(|(opened, meta)| async move {
            let applied = rules.for_file(meta.location.as_ref());
            plan_file(lake, pipeline, opened.store.clone(), &opened.location.url(), &meta, applied).await
        })
        .buffered(workers.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let column = |plan: &FilePlan, field: &str| {
        let choice = plan.layout.as_ref().and_then(|l| l.fields.get(field));
        choice.map_or("-".to_string(), |c| {
            c.column.clone().or_else(|| c.value.clone().map(|v| format!("={v}"))).unwrap_or_else(|| format!("{:?}", c.by))
        })
    };
    eprintln!("{:<48} {:<10} {:>10} {:<18} {:<18} {:<12} {:<16} {:>8}", "file", "status", "rows", "time", "text", "ticker", "score", "dead~");
    for p in &plans {
        let status = serde_json::to_value(p.status)?.as_str().unwrap_or_default().to_string();
        eprintln!(
            "{:<48} {:<10} {:>10} {:<18} {:<18} {:<12} {:<16} {:>8}",
            p.file.rsplit('/').next().unwrap_or_default(),
            status,
            p.rows,
            column(p, "event_timestamp"),
            column(p, "text_content"),
            column(p, "ticker"),
            column(p, "sentiment_score"),
            p.dead_letters.estimated
        );
        if let Some(error) = &p.error {
            eprintln!("{:<48} {error}", "");
        }
    }
    let count = |status: Status| plans.iter().filter(|p| p.status == status).count();
    let blocked: Vec<&str> = plans.iter().filter(|p| matches!(p.status, Status::NeedsRule | Status::Refused)).map(|p| p.file.as_str()).collect();
    eprintln!(
        "{} files: {} ready, {} migrated already, {} need a rule, {} refused, {} dual-written",
        plans.len(),
        count(Status::Ready),
        count(Status::Migrated),
        count(Status::NeedsRule),
        count(Status::Refused),
        count(Status::DualWrite)
    );
    let summary = serde_json::json!({
        "ready": blocked.is_empty(),
        "files": plans.len(),
        "rows": plans.iter().map(|p| p.rows - p.already_committed).sum::<u64>(),
        "need_a_rule": plans.iter().filter(|p| p.status == Status::NeedsRule).map(|p| &p.file).collect::<Vec<_>>(),
        "refused": plans.iter().filter(|p| p.status == Status::Refused).map(|p| &p.file).collect::<Vec<_>>(),
        "plan": plans,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if !blocked.is_empty() {
        anyhow::bail!("{} file(s) need a rule or cannot be read: nothing was migrated (see the plan)", blocked.len());
    }
    Ok(())
}

/// Reads the migrated files again and checks the table against them.
async fn verify(lake: &Lake, files: &[(OpenedLocation, ObjectMeta)], rules: &Rules, reports: &[FileReport]) -> anyhow::Result<Verification> {
    let mut legacy = LegacyRows::default();
    for (opened, meta) in files {
        legacy.add_file(lake, opened.store.clone(), &opened.location.url(), meta, rules).await?;
    }
    let reconciliation = crate::migrate::reconcile::reconcile(lake, &legacy).await?;
    let unaccounted_files: Vec<String> = reports.iter().filter(|r| !r.accounted()).map(|r| r.source.clone()).collect();
    let verified = unaccounted_files.is_empty() && reconciliation.missing_from_table == 0 && reconciliation.verifies_migrated();
    Ok(Verification { verified, unaccounted_files, reconciliation })
}

/// `<run id>/run.json` and `<run id>/files/<n>-<file name>.json` under the report location.
async fn write_reports(to: &OpenedLocation, run_id: &str, reports: &[FileReport], run: &serde_json::Value) -> anyhow::Result<()> {
    let put = |name: String, value: serde_json::Value| async move {
        let body = serde_json::to_vec_pretty(&value).expect("JSON values serialise");
        to.store.put(&Path::from(name.as_str()), bytes::Bytes::from(body).into()).await.with_context(|| format!("writing the report {name}"))
    };
    for (n, report) in reports.iter().enumerate() {
        let name: String = report
            .file
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        put(format!("{run_id}/files/{n:05}-{name}.json"), serde_json::to_value(report)?).await?;
    }
    put(format!("{run_id}/run.json"), run.clone()).await?;
    Ok(())
}
