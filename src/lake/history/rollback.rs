//! Rollback: `main` points at an earlier snapshot of its own lineage again, and the ledger goes back with it.
//!
//! The watermarks of every source a rolled-back commit advanced are set to what they were at the target
//! snapshot: the value in the newest summary at or before it that advanced the source, or no watermark if
//! none did. Redelivered events of those sources are then committed again (the rows the rollback removed
//! come back when their events are replayed); events at or below the restored watermarks are still
//! duplicates. Sources no rolled-back commit touched keep their watermarks. If a watermark at the target
//! cannot be known (a snapshot of its lineage expired), the rollback is refused: guessing could duplicate or
//! drop rows.
//!
//! The rolled-back ranges are then awaited ([`Awaiting`], in the same commit): the planner
//! never bridges them as gaps, however long the replay takes, and entries staged before the rollback do not
//! count as the replay. What is awaited shows in metrics, `health` and `doctor` until the replay is
//! committed through it, or an operator releases it ([`release_awaited`], `rollback --release`) when
//! the events are gone for good.
//!
//! The replay ledger of dead letters goes back too ([`Replayed`]): what the rolled-back replays added is
//! replayable again (their rows are gone).
//!
//! Not undone: dead letters and the migration ledger (a migrated file retired after the target keeps its
//! ledger row, so its rows do not come back by migrating it again; `docs/time-travel.md`).

use std::collections::BTreeSet;

use iceberg::spec::TableMetadata;

use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::stage::{Awaited, Awaiting, CommittedState, Replayed, Watermarks, AWAITING_PROPERTY, REPLAYED_PROPERTY, WATERMARKS_PROPERTY};
use crate::lake::table::Change;
use crate::lake::target::TableHandle;

/// A source's watermark before and after the rollback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceReset {
    pub source: String,
    pub before: Option<i64>,
    pub after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RollbackReport {
    pub table: String,
    pub from: i64,
    pub to: i64,
    /// Snapshots between the target and the former current one (now off the main lineage).
    pub rolled_back: usize,
    /// Rows the table had before and has after, from the snapshot summaries.
    pub rows_before: Option<i64>,
    pub rows_after: Option<i64>,
    pub sources: Vec<SourceReset>,
    /// What is now awaited from a replay, per source.
    pub awaiting: Awaiting,
}

fn summary_watermarks(metadata: &TableMetadata, id: i64) -> Option<Watermarks> {
    crate::lake::stage::summary_watermarks(metadata.snapshot_by_id(id)?)
}

fn total_rows(metadata: &TableMetadata, id: i64) -> Option<i64> {
    metadata.snapshot_by_id(id)?.summary().additional_properties.get("total-records")?.parse().ok()
}

/// What the rollback to `to` commits on top of `metadata`, and its report (`None`: `to` is already current).
fn plan(table: &str, metadata: &TableMetadata, to: i64) -> Result<Option<(Watermarks, Replayed, RollbackReport)>, LakeError> {
    let now = chrono::Utc::now();
    let refuse = |detail: String| LakeError::Config(format!("rollback of {table} to {to}: {detail}"));
    let current = metadata.current_snapshot_id().ok_or_else(|| refuse("the table has no snapshot".into()))?;
    if metadata.snapshot_by_id(to).is_none() {
        return Err(refuse("no such snapshot (unknown or expired)".into()));
    }
    if current == to {
        return Ok(None);
    }
    let mut rolled_back = Vec::new();
    let mut cursor = Some(current);
    while let Some(id) = cursor.filter(|id| *id != to) {
        let snapshot = metadata.snapshot_by_id(id).ok_or_else(|| refuse(format!("snapshot {id} of the current lineage is expired")))?;
        rolled_back.push(id);
        cursor = snapshot.parent_snapshot_id();
    }
    if cursor != Some(to) {
        return Err(refuse(format!("it is not an ancestor of the current snapshot {current}")));
    }
    let advanced: BTreeSet<String> = rolled_back
        .iter()
        .filter_map(|id| summary_watermarks(metadata, *id))
        .flat_map(|w| w.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>())
        .collect();
    let committed = CommittedState::read(table, metadata)?;
    let (mut watermarks, mut awaiting) = (committed.watermarks, committed.awaiting);
    let rolled_back_at = uuid::Uuid::now_v7().to_string();
    let mut sources = Vec::with_capacity(advanced.len());
    for source in advanced {
        // The newest summary at or before the target that advanced the source holds its watermark then.
        let (mut cursor, mut at_target) = (Some(to), None);
        while let Some(id) = cursor {
            let snapshot = metadata.snapshot_by_id(id).ok_or_else(|| LakeError::Ledger {
                table: table.to_string(),
                detail: format!("the watermark of {source} at snapshot {to} cannot be known: snapshot {id} of its lineage is expired"),
            })?;
            if let Some(value) = summary_watermarks(metadata, id).and_then(|w| w.get(&source)) {
                at_target = Some(value);
                break;
            }
            cursor = snapshot.parent_snapshot_id();
        }
        let before = watermarks.get(&source);
        match at_target {
            Some(value) => watermarks.set(&source, value),
            None => {
                watermarks.remove(&source);
            }
        }
        if let Some(through) = before.filter(|b| at_target.is_none_or(|after| after < *b)) {
            let awaited = Awaited { after: at_target, through, rolled_back_at: rolled_back_at.clone(), to_snapshot: to, at: now };
            awaiting.record(&source, awaited);
        }
        sources.push(SourceReset { source, before, after: at_target });
    }
    let replayed = replayed_after(table, metadata, Some(&rolled_back))?;
    let report = RollbackReport {
        table: table.to_string(),
        from: current,
        to,
        rolled_back: rolled_back.len(),
        rows_before: total_rows(metadata, current),
        rows_after: total_rows(metadata, to),
        sources,
        awaiting,
    };
    Ok(Some((watermarks, replayed, report)))
}

/// The replay ledger once `main` leaves the snapshots `off_lineage` (`None`: not all known, their lineage
/// expired): without what replays among them added.
fn replayed_after(table: &str, metadata: &TableMetadata, off_lineage: Option<&[i64]>) -> Result<Replayed, LakeError> {
    let mut replayed = Replayed::of(table, metadata)?;
    match off_lineage {
        Some(ids) => {
            for snapshot in ids.iter().filter_map(|id| metadata.snapshot_by_id(*id)) {
                if let Some(added) = Replayed::added_by(table, snapshot)? {
                    replayed.remove_all(&added);
                }
            }
        }
        // The set only grows but by rollbacks: kept whole, a dead letter replayed after `to` stays
        // unreplayable (its rows went with the reset) rather than ever landing twice.
        None => tracing::warn!(table, "The replays between the restored snapshot and the latest one cannot be read (expired); dead letters they replayed are not replayable again."),
    }
    Ok(replayed)
}

/// Points the table's `main` at `to`, an ancestor of its current snapshot, with the ledger as it was then
/// (see the module). Retried on conflicts with concurrent commits, re-planned on the table they left.
pub async fn rollback(handle: TableHandle<'_>, max_attempts: u32, to: i64) -> Result<Option<RollbackReport>, LakeError> {
    let name = handle.target.name.clone();
    for _attempt in 0..max_attempts {
        let table = handle.load().await?;
        let Some((watermarks, replayed, report)) = plan(&name, table.metadata(), to)? else { return Ok(None) };
        let properties = vec![
            (WATERMARKS_PROPERTY.to_string(), watermarks.to_property()),
            (AWAITING_PROPERTY.to_string(), report.awaiting.to_property()),
            (REPLAYED_PROPERTY.to_string(), replayed.to_property()),
        ];
        let change = Change { set_current: Some(to), properties, ..Change::default() };
        match handle.commit(&table, change).await? {
            Outcome::Landed { .. } => {
                tracing::info!(table = %name, from = report.from, to, rolled_back = report.rolled_back, "Rolled back.");
                return Ok(Some(report));
            }
            Outcome::Conflict => continue,
        }
    }
    Err(LakeError::Conflict { table: name })
}

/// Stops awaiting the replay of what a rollback took out of `source` (the events are gone for good, or
/// were committed another way): its gaps are then bridged after the grace period like any other. `None`:
/// nothing was awaited for it.
pub async fn release_awaited(handle: TableHandle<'_>, max_attempts: u32, source: &str) -> Result<Option<Awaited>, LakeError> {
    let name = handle.target.name.clone();
    for _attempt in 0..max_attempts {
        let table = handle.load().await?;
        let mut awaiting = CommittedState::read(&name, table.metadata())?.awaiting;
        let Some(released) = awaiting.remove(source) else { return Ok(None) };
        let change = Change { properties: vec![(AWAITING_PROPERTY.to_string(), awaiting.to_property())], ..Change::default() };
        match handle.commit(&table, change).await? {
            Outcome::Landed { .. } => {
                tracing::warn!(table = %name, source, after = ?released.after, through = released.through, "Released a rolled-back range: it is no longer awaited.");
                return Ok(Some(released));
            }
            Outcome::Conflict => continue,
        }
    }
    Err(LakeError::Conflict { table: name })
}

/// The ingestion watermarks as they were at snapshot `to` (the current ones when `to` is current), worked
/// out from the lineage as a rollback does; an error when the lineage between is expired.
pub fn watermarks_at(table: &str, metadata: &TableMetadata, to: i64) -> Result<Watermarks, LakeError> {
    match plan(table, metadata, to)? {
        Some((watermarks, _, _)) => Ok(watermarks),
        None => Ok(CommittedState::read(table, metadata)?.watermarks),
    }
}

/// Points `main` at `to` with `watermarks` as the ledger and nothing awaited: a restored table starting
/// over from a past state, its sources resuming after `watermarks` (unlike [`rollback`], `to` need not be
/// reachable through unexpired snapshots: a tagged one kept by expiry is enough).
pub async fn reset(handle: TableHandle<'_>, max_attempts: u32, to: i64, watermarks: &Watermarks) -> Result<(), LakeError> {
    let name = handle.target.name.clone();
    for _attempt in 0..max_attempts {
        let table = handle.load().await?;
        let metadata = table.metadata();
        let committed = CommittedState::read(&name, metadata)?;
        if metadata.current_snapshot_id() == Some(to) && committed.watermarks == *watermarks {
            return Ok(());
        }
        let replayed = replayed_after(&name, metadata, leaving(metadata, to).as_deref())?;
        let properties = vec![
            (WATERMARKS_PROPERTY.to_string(), watermarks.to_property()),
            (AWAITING_PROPERTY.to_string(), Awaiting::default().to_property()),
            (REPLAYED_PROPERTY.to_string(), replayed.to_property()),
        ];
        let set_current = (metadata.current_snapshot_id() != Some(to)).then_some(to);
        match handle.commit(&table, Change { set_current, properties, ..Change::default() }).await? {
            Outcome::Landed { .. } => return Ok(()),
            Outcome::Conflict => continue,
        }
    }
    Err(LakeError::Conflict { table: name })
}

/// The snapshots of the current lineage above `to` (`None` when `to` is not reached through snapshots
/// still in the metadata).
fn leaving(metadata: &TableMetadata, to: i64) -> Option<Vec<i64>> {
    let mut ids = Vec::new();
    let mut cursor = metadata.current_snapshot_id();
    while let Some(id) = cursor.filter(|id| *id != to) {
        ids.push(id);
        cursor = metadata.snapshot_by_id(id)?.parent_snapshot_id();
    }
    cursor.map(|_| ids)
}
