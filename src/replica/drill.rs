//! The restore drill: the replica restored into a scratch place and compared with the primary at the
//! snapshot the replica holds, check by check, so that a restore is known to work before it is needed.
//!
//! The records table is compared row for row in aggregate: rows per ticker and UTC day, a checksum of
//! the scores per group (the sum of their bit patterns, exact and independent of order), and the message
//! ids (how many distinct, and an order-independent hash of the set, held as 64-bit hashes: bounded at
//! 8 bytes per distinct id). The ingestion ledger, and the row counts of the other tables at the
//! replicated snapshots, are compared too.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use futures::TryStreamExt;
use iceberg::table::Table;

use super::error::ReplicaError;
use super::replicate::Source;
use super::restore::{restore, RestorePoint};
use crate::lake::{Lake, LakeConfig, LakeError, TableKind};
use crate::schema::column;

/// One check of the drill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: String,
    pub primary: String,
    pub restored: String,
    pub pass: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillReport {
    /// The records table's snapshot compared (the one the replica holds).
    pub snapshot: Option<i64>,
    pub checks: Vec<Check>,
    pub restore_seconds: f64,
}

impl DrillReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.pass)
    }

    /// The checks as a table a person reads.
    pub fn table(&self) -> String {
        let mut out = String::from("| check | primary | restored | result |\n|---|---|---|---|\n");
        for c in &self.checks {
            out.push_str(&format!("| {} | {} | {} | {} |\n", c.check, c.primary, c.restored, if c.pass { "PASS" } else { "FAIL" }));
        }
        out
    }
}

/// Rows of the records table summarised for comparison.
#[derive(Debug, Default, PartialEq, Eq)]
struct Profile {
    rows: u64,
    /// (ticker, day since the epoch) -> (rows, wrapping sum of the scores' bit patterns, null scores).
    groups: BTreeMap<(String, i64), (u64, u64, u64)>,
    ids: HashSet<u64>,
    /// Wrapping sum of the distinct ids' hashes: equal sets, equal sums.
    id_hash: u64,
}

/// A hash of ids that is the same in every process (the drill compares two scans of one run, but a fixed
/// seed keeps its figures comparable between runs too).
fn id_hash(source: &str, id: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5e17_1a4e).hash_one((source, id))
}

impl Profile {
    fn add(&mut self, batch: &RecordBatch) -> Result<(), ReplicaError> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| ReplicaError::Format {
                what: "records scan",
                path: name.to_string(),
                detail: "no such column".into(),
            })
        };
        let tickers = column(column::TICKER)?.as_string::<i32>();
        let times = column(column::EVENT_TIMESTAMP)?.as_primitive::<TimestampMicrosecondType>();
        let scores = column(column::SENTIMENT_SCORE)?.as_primitive::<Float32Type>();
        let ids = column(column::MESSAGE_ID)?.as_string::<i32>();
        let sources = column(column::SOURCE_SYSTEM)?.as_string::<i32>();
        for row in 0..batch.num_rows() {
            let ticker = if tickers.is_null(row) { String::new() } else { tickers.value(row).to_string() };
            let day = if times.is_null(row) { i64::MIN } else { times.value(row).div_euclid(86_400_000_000) };
            let group = self.groups.entry((ticker, day)).or_default();
            group.0 += 1;
            if scores.is_null(row) {
                group.2 += 1;
            } else {
                group.1 = group.1.wrapping_add(u64::from(scores.value(row).to_bits()));
            }
            let hash = id_hash(if sources.is_null(row) { "" } else { sources.value(row) }, if ids.is_null(row) { "" } else { ids.value(row) });
            if self.ids.insert(hash) {
                self.id_hash = self.id_hash.wrapping_add(hash);
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    async fn of(table: &Table, snapshot: i64) -> Result<Self, ReplicaError> {
        let columns = [column::TICKER, column::EVENT_TIMESTAMP, column::SENTIMENT_SCORE, column::MESSAGE_ID, column::SOURCE_SYSTEM];
        let context = format!("scanning {} at snapshot {snapshot}", table.identifier());
        let scan_error = |e| LakeError::iceberg(context.clone())(e);
        let scan = table.scan().snapshot_id(snapshot).select(columns).build().map_err(scan_error)?;
        let mut batches = scan.to_arrow().await.map_err(scan_error)?;
        let mut profile = Self::default();
        while let Some(batch) = batches.try_next().await.map_err(scan_error)? {
            profile.add(&batch)?;
        }
        Ok(profile)
    }
}

fn total_records(table: &Table, snapshot: Option<i64>) -> String {
    snapshot
        .and_then(|id| table.metadata().snapshot_by_id(id))
        .and_then(|s| s.summary().additional_properties.get("total-records").cloned())
        .unwrap_or_else(|| if snapshot.is_none() { "0 (no snapshot)".into() } else { "snapshot gone".into() })
}

/// Restores the replica `source` into the empty place `scratch` and compares it with `primary`.
pub async fn drill(primary: &Lake, source: Source, scratch: &LakeConfig) -> Result<DrillReport, ReplicaError> {
    let started = std::time::Instant::now();
    let restored_report = restore(source, scratch, RestorePoint::Latest).await?;
    let restore_seconds = started.elapsed().as_secs_f64();
    let restored = Lake::open(scratch).await?;
    let mut checks = Vec::new();
    let mut check = |name: &str, primary: String, restored: String| {
        let pass = primary == restored;
        checks.push(Check { check: name.to_string(), primary, restored, pass });
    };
    let snapshot = restored_report.snapshot;
    let primary_records = primary.load(TableKind::Records).await?;
    let restored_records = restored.load(TableKind::Records).await?;
    match snapshot {
        Some(id) if primary_records.metadata().snapshot_by_id(id).is_none() => {
            check("records snapshot", "expired on the primary (run the drill right after a replication round)".into(), id.to_string())
        }
        Some(id) => {
            check("records snapshot", id.to_string(), id.to_string());
            let (ours, theirs) = (Profile::of(&primary_records, id).await?, Profile::of(&restored_records, id).await?);
            check("records rows", ours.rows.to_string(), theirs.rows.to_string());
            check("ticker-day groups", ours.groups.len().to_string(), theirs.groups.len().to_string());
            let differing = ours.groups.iter().filter(|(k, v)| theirs.groups.get(*k) != Some(*v)).count()
                + theirs.groups.keys().filter(|k| !ours.groups.contains_key(*k)).count();
            check("groups with other rows or score checksums", "0".into(), differing.to_string());
            let checksum = |p: &Profile| format!("{:016x}", p.groups.values().fold(0u64, |a, g| a.wrapping_add(g.1)));
            check("score checksum", checksum(&ours), checksum(&theirs));
            check("distinct ids", ours.ids.len().to_string(), theirs.ids.len().to_string());
            check("id set hash", format!("{:016x}", ours.id_hash), format!("{:016x}", theirs.id_hash));
        }
        None => check("records snapshot", "none".into(), "none".into()),
    }
    // Sources and a digest of the watermarks: the ledger itself runs to one entry per partition and file.
    let digest = |w: &crate::lake::Watermarks| format!("{} sources, {:016x}", w.iter().count(), id_hash("ledger", &w.to_property()));
    let watermarks = |table: &Table| {
        crate::lake::CommittedState::read("records", table.metadata()).map(|s| digest(&s.watermarks)).unwrap_or_else(|e| e.to_string())
    };
    // The replica's ledger is the primary's as of the replicated version; the primary may have moved on.
    let at_snapshot = snapshot.map_or_else(
        || Ok(digest(&crate::lake::Watermarks::default())),
        |id| crate::lake::history::watermarks_at("records", primary_records.metadata(), id).map(|w| digest(&w)),
    );
    check("ingestion ledger", at_snapshot.unwrap_or_else(|e| format!("unknown: {e}")), watermarks(&restored_records));
    for kind in [TableKind::DeadLetters, TableKind::Rollup] {
        let (theirs, ours) = (restored.load(kind).await?, primary.load(kind).await?);
        let id = theirs.metadata().current_snapshot_id();
        check(&format!("{} rows", restored.target(kind).name), total_records(&ours, id), total_records(&theirs, id));
    }
    Ok(DrillReport { snapshot, checks, restore_seconds })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float32Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn batch(rows: &[(&str, i64, f32, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(column::TICKER, DataType::Utf8, true),
            Field::new(column::EVENT_TIMESTAMP, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new(column::SENTIMENT_SCORE, DataType::Float32, true),
            Field::new(column::MESSAGE_ID, DataType::Utf8, true),
            Field::new(column::SOURCE_SYSTEM, DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC")),
                Arc::new(Float32Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
                Arc::new(StringArray::from(vec!["twitter"; rows.len()])),
            ],
        )
        .unwrap()
    }

    fn profile(batches: &[RecordBatch]) -> Profile {
        let mut profile = Profile::default();
        for b in batches {
            profile.add(b).unwrap();
        }
        profile
    }

    #[test]
    fn a_profile_ignores_order_and_sees_one_changed_score_or_id() {
        let day = 86_400_000_000;
        let rows = [("AAPL", 5, 0.25, "a"), ("AAPL", 7, -0.5, "b"), ("MSFT", day + 1, 0.1, "c")];
        let whole = profile(&[batch(&rows)]);
        let reordered = profile(&[batch(&[rows[2], rows[0]]), batch(&[rows[1]])]);
        assert_eq!(whole, reordered);
        assert_eq!(whole.groups.len(), 2);
        let one_score = profile(&[batch(&[rows[0], ("AAPL", 7, -0.50001, "b"), rows[2]])]);
        assert_ne!(whole.groups, one_score.groups);
        let one_id = profile(&[batch(&[rows[0], ("AAPL", 7, -0.5, "z"), rows[2]])]);
        assert_eq!(whole.groups, one_id.groups);
        assert_ne!(whole.id_hash, one_id.id_hash);
        let twice = profile(&[batch(&[rows[0], rows[0], rows[2]])]);
        assert_eq!(twice.rows, 3);
        assert_eq!(twice.ids.len(), 2, "an id twice counts once among the distinct");
    }
}
