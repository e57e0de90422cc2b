//! Proof that the rollup is exact: its rows for a records snapshot, merged with the delta it lacks,
//! against the same aggregates recomputed from every live row.

use std::collections::BTreeMap;

use super::cover::base;
use super::read::{added_files, aggregate, live_files, rollup_rows};
use crate::lake::error::LakeError;
use crate::lake::target::TableHandle;
use crate::rollup::{Detail, Dimension, Grain, Measures, Partials, Piece, RowFilter, RowKey, Scope};

/// One rollup row that differs from its recomputation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub key: RowKey,
    pub rollup: Option<Measures>,
    pub raw: Option<Measures>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// The records snapshot checked, and the rollup state that answered it.
    pub records_snapshot: Option<i64>,
    pub rollup_snapshot: Option<i64>,
    /// Appends not yet rolled up, answered from their added files.
    pub delta: usize,
    pub rows_compared: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Compares every rollup row whose whole period lies in `[from, to)` (every row without a window) with
/// its recomputation from the live rows of the records table's current snapshot.
pub async fn verify(records: TableHandle<'_>, rollup: TableHandle<'_>, window: Option<(i64, i64)>) -> Result<VerifyReport, LakeError> {
    let mut report = VerifyReport::default();
    let records_table = records.load().await?;
    let Some(at) = records_table.metadata().current_snapshot_id() else {
        return Ok(report);
    };
    report.records_snapshot = Some(at);
    let rollup_table = rollup.load().await?;
    let found = base(records_table.metadata(), rollup_table.metadata(), at).map_err(|e| LakeError::Rollup(e.to_string()))?;
    report.rollup_snapshot = Some(found.rollup_snapshot);
    report.delta = found.delta.len();
    let pieces: Option<Vec<Piece>> = window.map(|(from, to)| Grain::ALL.iter().map(|&grain| Piece { grain: Some(grain), from, to }).collect());
    let mut held = rollup_rows(&rollup_table, found.rollup_snapshot, pieces.as_deref(), &Dimension::ALL, None, &Detail::ALL).await?;
    // Minute rows before the state's floor answer nothing: neither side is compared there.
    let filter = RowFilter { window, minutes_from: found.minute_floor, ..RowFilter::default() };
    for id in &found.delta {
        held.merge(aggregate(&records_table, added_files(&records_table, *id).await?, &Grain::ALL, &filter).await?);
    }
    let raw = aggregate(&records_table, live_files(&records_table, at, None).await?, &Grain::ALL, &filter).await?;
    let floor = found.minute_floor.unwrap_or(i64::MIN);
    let inside = |key: &RowKey| {
        window.is_none_or(|(from, to)| key.period_start >= from && key.period_start.saturating_add(key.grain.micros()) <= to)
            && (key.grain != Grain::Minute || key.period_start >= floor)
    };
    let held: BTreeMap<RowKey, Measures> = held.rows.into_iter().filter(|(k, _)| inside(k)).collect();
    let raw: BTreeMap<RowKey, Measures> = raw.rows.into_iter().filter(|(k, _)| inside(k)).collect();
    let keys: std::collections::BTreeSet<&RowKey> = held.keys().chain(raw.keys()).collect();
    report.rows_compared = keys.len();
    for key in keys {
        let (a, b) = (held.get(key), raw.get(key));
        if a != b {
            report.mismatches.push(Mismatch { key: key.clone(), rollup: a.cloned(), raw: b.cloned() });
        }
    }
    Ok(report)
}

/// The partials that answer `scope` at records snapshot `at`: rollup rows of whole minutes, hours
/// and days, the delta's added files, and raw rows for the edges shorter than a minute and the minutes
/// before the rollup state's minute floor. `None` when the
/// rollup cannot answer `at` (no rollup state covers its lineage, or too much is not rolled up yet).
pub async fn answer_partials(
    records: &iceberg::table::Table,
    rollup: &iceberg::table::Table,
    at: i64,
    scope: &Scope,
    max_delta_files: usize,
) -> Result<Option<(Partials, AnsweredFrom)>, LakeError> {
    let (window, ticker) = (scope.window, scope.ticker.as_deref());
    let Ok(found) = base(records.metadata(), rollup.metadata(), at) else {
        return Ok(None);
    };
    let mut delta_tasks = Vec::new();
    for id in &found.delta {
        delta_tasks.extend(added_files(records, *id).await?);
        if delta_tasks.len() > max_delta_files {
            return Ok(None);
        }
    }
    let pieces = crate::rollup::pieces_from(window.0, window.1, scope.coarsest, found.minute_floor);
    let mut partials = rollup_rows(rollup, found.rollup_snapshot, Some(&pieces), &scope.dimensions, ticker, &scope.detail).await?;
    let ticker = ticker.map(str::to_string);
    let delta_files = delta_tasks.len();
    // The whole minutes, hours and days of the window; the raw edges either side are read from the live
    // rows of `at` (rolled up or not), the rest of the delta here.
    let whole = pieces.iter().filter(|p| p.grain.is_some()).map(|p| (p.from, p.to)).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    if let Some(whole) = whole {
        partials.merge(
            aggregate(records, delta_tasks, &[Grain::Minute], &RowFilter { window: Some(whole), ticker: ticker.clone(), ..RowFilter::default() })
                .await?,
        );
    }
    for edge in pieces.iter().filter(|p| p.grain.is_none()) {
        let live = live_files(records, at, Some((edge.from, edge.to))).await?;
        partials.merge(
            aggregate(
                records,
                live,
                &[Grain::Minute],
                &RowFilter { window: Some((edge.from, edge.to)), ticker: ticker.clone(), ..RowFilter::default() },
            )
            .await?,
        );
    }
    Ok(Some((
        partials,
        AnsweredFrom { rollup_snapshot: found.rollup_snapshot, covers: found.covers, delta_snapshots: found.delta.len(), delta_files },
    )))
}

/// Which rollup state and delta an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsweredFrom {
    pub rollup_snapshot: i64,
    pub covers: i64,
    pub delta_snapshots: usize,
    pub delta_files: usize,
}
