//! Reconciliation (the seed's 4.3): legacy files against the table, for the tickers and days the files
//! cover. While the old and new writers both run (dual-write), the two must agree; after a migration, a row
//! may be missing only if the dead-letter table holds it for the same file.
//!
//! Compared: row counts per ticker and UTC day, message ids missing from the table (those dead-lettered
//! counted apart), ids the table has for those tickers and days that no file has, ids it has twice, scores
//! that differ by more than float32 precision, and the score sums per ticker/day (the checksum). The
//! legacy side is held as one entry per row (about 70 bytes each: the id, a group index, the score), so a
//! run suits files of up to tens of millions of rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMicrosecondType};
use arrow_array::Array;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};
use serde_json::Value;

use super::layout::Rows;
use super::rules::Rules;
use super::{LegacyFile, MigrateError};
use crate::lake::{Lake, LakeError, TableKind};
use crate::schema::{column, dead_letter, normalize_ticker};

/// Scores closer than this are equal: the table stores float32, the files often float64.
const SCORE_TOLERANCE: f64 = 1e-6;
/// How many ids of each kind the report lists (all are counted).
const LISTED: usize = 100;

/// One legacy row: its ticker/day (an index into the groups) and its legacy score (NaN without one).
#[derive(Debug, Clone, Copy)]
struct Row {
    group: u32,
    score: f64,
}

/// The legacy rows of a set of files, by message id: about 70 bytes per row (the id, an index, the
/// score), ticker/day pairs held once.
#[derive(Debug, Default)]
pub struct LegacyRows {
    ids: HashMap<Box<str>, u32>,
    rows: Vec<Row>,
    groups: Vec<(String, String)>,
    group_index: HashMap<(String, String), u32>,
    /// The files' source ids, whose dead letters explain rows the table lacks.
    sources: HashSet<String>,
}

impl LegacyRows {
    fn insert(&mut self, id: &str, ticker: &str, day: &str, score: Option<f64>) {
        let key = (ticker.to_string(), day.to_string());
        let group = match self.group_index.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.groups.len() as u32;
                self.groups.push(key.clone());
                self.group_index.insert(key, g);
                g
            }
        };
        let row = Row { group, score: score.unwrap_or(f64::NAN) };
        match self.ids.get(id) {
            // The same id in two files is one row (the later file's values win).
            Some(&index) => self.rows[index as usize] = row,
            None => {
                self.ids.insert(id.into(), self.rows.len() as u32);
                self.rows.push(row);
            }
        }
    }

    fn group_of(&self, ticker: &str, day: &str) -> Option<u32> {
        self.group_index.get(&(ticker.to_string(), day.to_string())).copied()
    }
}

impl LegacyRows {
    /// Adds every row of one file (as migration would map it, under the source `lake` knows it by: the
    /// same synthetic ids). Dual-written files are legacy files here: reconciliation compares both stores.
    pub async fn add_file(
        &mut self,
        lake: &Lake,
        store: Arc<dyn ObjectStore>,
        location_url: &str,
        meta: &ObjectMeta,
        rules: &Rules,
    ) -> Result<(), MigrateError> {
        let mut legacy = LegacyFile::open(store, location_url, meta, rules.for_file(meta.location.as_ref()), true).await?;
        legacy.resume(lake).await?;
        legacy.decided()?;
        let LegacyFile { source, opened, layout, defaults, .. } = legacy;
        self.sources.insert(source);
        let unreadable = |e| MigrateError::of_read(meta.location.as_ref(), e);
        // Only the key columns are read: the texts are most of a file's bytes.
        let (columns, layout) = layout.keys_only();
        let mut stream = opened.stream_columns(&columns).map_err(unreadable)?;
        let mut first_row = 0u64;
        while let Some(batch) = stream.try_next().await.map_err(unreadable)? {
            let rows = Rows::new(&batch, &layout, &defaults, first_row);
            for row in 0..rows.len() {
                let (Some(ticker), Some(at)) = (rows.ticker(row).map(str::trim).and_then(normalize_ticker), rows.event_time(row)) else { continue };
                self.insert(&rows.message_id(row), &ticker, &at.format("%Y-%m-%d").to_string(), rows.score(row));
            }
            first_row += rows.len() as u64;
        }
        Ok(())
    }
}

/// What reconciliation found; `agrees()` is the automation's verdict.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Reconciliation {
    /// `ticker/day` -> `[legacy rows, table rows]`, for every group whose counts differ.
    pub count_differences: BTreeMap<String, [u64; 2]>,
    pub groups_compared: usize,
    /// Legacy ids the table lacks that the dead-letter table holds for the same file: refused with a reason,
    /// accounted for (and left out of the counts per ticker/day).
    pub dead_lettered: u64,
    /// Legacy ids the table lacks and nothing explains.
    pub missing_from_table: u64,
    pub missing_examples: Vec<String>,
    pub extra_in_table: u64,
    pub extra_examples: Vec<String>,
    pub score_differences: u64,
    /// `[id, legacy score, table score]`.
    pub score_examples: Vec<(String, f64, f64)>,
    /// Legacy ids the table holds more than once.
    pub duplicated_in_table: u64,
    pub duplicate_examples: Vec<String>,
    /// `ticker/day` -> `[legacy score sum, table score sum]` over the ids both hold with a legacy score, for
    /// every group whose sums differ by more than float32 precision allows: the checksum of the key column.
    pub checksum_differences: BTreeMap<String, [f64; 2]>,
}

impl Reconciliation {
    pub fn agrees(&self) -> bool {
        self.count_differences.is_empty() && self.missing_from_table == 0 && self.extra_in_table == 0 && self.verifies_migrated()
    }

    /// What a migration run's verification asks of the rows it migrated: each legacy id the table holds is
    /// there once with its legacy score, and the score sums per ticker/day agree. (Missing ids are rows
    /// the run dead-lettered, counted against the dead-letter table; extra ids, rows other writers added.)
    pub fn verifies_migrated(&self) -> bool {
        self.score_differences == 0 && self.duplicated_in_table == 0 && self.checksum_differences.is_empty()
    }
}

/// The message ids of the dead letters of `sources` (read from their raw bodies, the records migration built).
async fn dead_lettered_ids(lake: &Lake, sources: &HashSet<String>) -> Result<HashSet<String>, LakeError> {
    let mut ids = HashSet::new();
    let table = lake.load(TableKind::DeadLetters).await?;
    if sources.is_empty() || table.metadata().current_snapshot_id().is_none() {
        return Ok(ids);
    }
    let scan =
        table.scan().select([dead_letter::SOURCE, dead_letter::RAW_BODY]).build().map_err(LakeError::iceberg("planning the dead-letter scan"))?;
    let mut batches = scan.to_arrow().await.map_err(LakeError::iceberg("reading the dead letters"))?;
    while let Some(batch) = batches.try_next().await.map_err(LakeError::iceberg("reading the dead letters"))? {
        let (source, body) = (batch.column(0).as_string::<i32>(), batch.column(1));
        for i in (0..batch.num_rows()).filter(|&i| sources.contains(source.value(i))) {
            let raw = match body.data_type() {
                arrow_schema::DataType::LargeBinary => body.as_binary::<i64>().value(i),
                _ => body.as_binary::<i32>().value(i),
            };
            if let Some(id) = serde_json::from_slice::<Value>(raw).ok().and_then(|v| v.get("message_id").and_then(Value::as_str).map(str::to_string))
            {
                ids.insert(id);
            }
        }
    }
    Ok(ids)
}

/// Compares the legacy rows with the table's current snapshot.
pub async fn reconcile(lake: &Lake, legacy: &LegacyRows) -> Result<Reconciliation, LakeError> {
    let mut counts: Vec<[u64; 2]> = vec![[0, 0]; legacy.groups.len()];
    let mut sums: Vec<[f64; 3]> = vec![[0.0; 3]; legacy.groups.len()];
    for &index in legacy.ids.values() {
        counts[legacy.rows[index as usize].group as usize][0] += 1;
    }
    let mut report = Reconciliation::default();
    let mut seen = vec![false; legacy.rows.len()];
    let table = lake.load(TableKind::Records).await?;
    if table.metadata().current_snapshot_id().is_some() {
        let columns = [column::MESSAGE_ID, column::TICKER, column::EVENT_TIMESTAMP, column::SENTIMENT_SCORE];
        let scan = table.scan().select(columns).build().map_err(LakeError::iceberg("planning the reconciliation scan"))?;
        let mut batches = scan.to_arrow().await.map_err(LakeError::iceberg("reading the table"))?;
        while let Some(batch) = batches.try_next().await.map_err(LakeError::iceberg("reading the table"))? {
            let (ids, tickers) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
            let times = batch.column(2).as_primitive::<TimestampMicrosecondType>();
            let scores = batch.column(3).as_primitive::<Float32Type>();
            for i in 0..batch.num_rows() {
                let day = chrono::DateTime::from_timestamp_micros(times.value(i)).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
                let Some(group) = legacy.group_of(tickers.value(i), &day) else { continue };
                counts[group as usize][1] += 1;
                let id = ids.value(i);
                match legacy.ids.get(id) {
                    Some(&index) => {
                        let row = legacy.rows[index as usize];
                        if std::mem::replace(&mut seen[index as usize], true) {
                            report.duplicated_in_table += 1;
                            if report.duplicate_examples.len() < LISTED {
                                report.duplicate_examples.push(id.to_string());
                            }
                        }
                        let table_score = if scores.is_null(i) { f64::NAN } else { f64::from(scores.value(i)) };
                        if !row.score.is_nan() {
                            let legacy_score = row.score;
                            let sum = &mut sums[row.group as usize];
                            sum[0] += legacy_score;
                            sum[1] += if table_score.is_nan() { 0.0 } else { table_score };
                            sum[2] += 1.0;
                            if (legacy_score - table_score).abs() > SCORE_TOLERANCE || table_score.is_nan() {
                                report.score_differences += 1;
                                if report.score_examples.len() < LISTED {
                                    report.score_examples.push((id.to_string(), legacy_score, table_score));
                                }
                            }
                        }
                    }
                    None => {
                        report.extra_in_table += 1;
                        if report.extra_examples.len() < LISTED {
                            report.extra_examples.push(id.to_string());
                        }
                    }
                }
            }
        }
    }
    let refused = dead_lettered_ids(lake, &legacy.sources).await?;
    for (id, &index) in legacy.ids.iter().filter(|(_, &index)| !seen[index as usize]) {
        if refused.contains(id.as_ref()) {
            report.dead_lettered += 1;
            counts[legacy.rows[index as usize].group as usize][0] -= 1;
            continue;
        }
        report.missing_from_table += 1;
        if report.missing_examples.len() < LISTED {
            report.missing_examples.push(id.to_string());
        }
    }
    report.missing_examples.sort();
    report.groups_compared = counts.len();
    let name = |g: usize| format!("{}/{}", legacy.groups[g].0, legacy.groups[g].1);
    report.checksum_differences = sums
        .iter()
        .enumerate()
        .filter(|(_, [legacy, table, n])| (legacy - table).abs() > SCORE_TOLERANCE * n.max(1.0))
        .map(|(g, [legacy, table, _])| (name(g), [*legacy, *table]))
        .collect();
    report.count_differences = counts.iter().enumerate().filter(|(_, [a, b])| a != b).map(|(g, c)| (name(g), *c)).collect();
    Ok(report)
}
