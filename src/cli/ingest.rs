//! `ingest` (a file of events through the pipeline) and `generate` (a file of synthetic events).

use std::path::Path;

use anyhow::Context;

use super::setup::Setup;

pub async fn ingest(setup: &Setup, file: &Path, no_commit: bool) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let content = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let written_at = std::fs::metadata(file).and_then(|m| m.modified()).ok().map(chrono::DateTime::<chrono::Utc>::from);
    let batch = crate::ingest::file::batch_from_file(&content, &file.display().to_string(), written_at)?;
    let staged = setup.pipeline()?.ingest(&lake, &batch).await?;
    let committed = if no_commit { Vec::new() } else { lake.commit().await? };
    let peak_rss_bytes = crate::observability::peak_rss_bytes();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"staged": staged, "committed": committed, "peak_rss_bytes": peak_rss_bytes}))?);
    Ok(())
}

pub fn generate(events: u64, seed: u64, days: u32, tickers: usize, out: &Path) -> anyhow::Result<()> {
    let mut generator = crate::synthetic::EventGenerator::new(seed, chrono::Utc::now(), days, tickers);
    std::fs::write(out, generator.ndjson(0, events)).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {events} events to {}", out.display());
    Ok(())
}
