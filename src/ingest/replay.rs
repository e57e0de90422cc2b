//! Dead letters brought back (`dead-letters replay`): their raw bytes decoded again under today's rules and
//! the table's schema as it is now (columns added since included), and those that now pass committed to
//! the records table, each dead letter exactly once ([`Lake::commit_replay`]).
//!
//! Only settled dead letters are taken: those at or below both tables' watermarks of their source, outside
//! any range a rollback awaits. Above that, the event may still come back through Event Hubs, and the
//! ledger, not the replay, decides it. A redelivered original is a duplicate for the ledger whether or not
//! its dead letter was replayed, so a replay and a redelivery never both land it. And a row whose
//! (`source_system`, `message_id`) the table already holds for its ticker and day is not replayed: the
//! event reached the table another way (redelivered after a rollback and judged under newer rules, two
//! deliveries judged differently, a restored snapshot); it is counted as `already_in_table`.
//!
//! Memory is bounded by bytes: dead letters are read in scan order and replayed in chunks of at most
//! [`ReplayOptions::chunk_bytes`] of raw bodies, one commit each.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use iceberg::expr::{Predicate, Reference};
use iceberg::spec::Datum;

use super::dedup::{self, RowKey};
use super::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::{CommittedState, Lake, LakeError, ReplayRows, Replayed, TableKind};
use crate::observability::DeadLettersReplayed;
use crate::schema::dead_letter::{self, StoredDeadLetter};

/// Which dead letters to replay (all when empty).
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// The rule that refused them: an error class (`decode`, `validation`, `incomplete`).
    pub rule: Option<String>,
    /// The field named in their error.
    pub field: Option<String>,
    pub source: Option<String>,
    /// Dead-lettered at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

impl ReplayFilter {
    fn predicate(&self) -> Predicate {
        let mut predicate = Predicate::AlwaysTrue;
        if let Some(source) = &self.source {
            predicate = predicate.and(Reference::new(dead_letter::SOURCE).equal_to(Datum::string(source)));
        }
        if let Some(rule) = &self.rule {
            predicate = predicate.and(Reference::new(dead_letter::ERROR_CLASS).equal_to(Datum::string(rule)));
        }
        if let Some(since) = self.since {
            predicate = predicate
                .and(Reference::new(dead_letter::DEAD_LETTERED_AT).greater_than_or_equal_to(Datum::timestamptz_micros(since.timestamp_micros())));
        }
        predicate
    }

    /// The scan's predicate prunes files and row groups; rows are checked here.
    fn keeps(&self, letter: &StoredDeadLetter) -> bool {
        self.source.as_ref().is_none_or(|s| *s == letter.source)
            && self.rule.as_ref().is_none_or(|r| *r == letter.error_class)
            && self.field.as_ref().is_none_or(|f| letter.error_field.as_ref() == Some(f))
            && self.since.is_none_or(|since| letter.dead_lettered_at >= since)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// Decode and judge only: commit nothing.
    pub dry_run: bool,
    /// Raw bytes of dead letters replayed per commit.
    pub chunk_bytes: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self { dry_run: false, chunk_bytes: 32 << 20 }
    }
}

/// A dead letter that still fails.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StillFailing {
    pub source: String,
    pub sequence_number: i64,
    pub error_class: String,
    pub error_field: Option<String>,
    pub error_message: String,
}

/// What a dead letter weighs besides its body, for the chunk bound.
const LETTER_OVERHEAD_BYTES: usize = 256;

/// Examples of dead letters still failing kept in a report.
const EXAMPLES: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub dry_run: bool,
    /// Dead letters the filter chose.
    pub selected: usize,
    /// Of those, replayed before (by an earlier run, or given back to redelivery by a rollback).
    pub already_replayed: usize,
    /// Of those, above their source's watermarks or in a range a rollback awaits: the ledger decides them
    /// when they are redelivered; replayable once it has.
    pub not_settled: usize,
    /// Decoded and valid now (committed unless a dry run, or already in the table).
    pub passing: usize,
    /// Passing, but the table holds a row with the same id for the same ticker and day: not landed.
    pub already_in_table: usize,
    /// Rows committed.
    pub landed: usize,
    /// Passing, but replayed by a concurrent run first.
    pub replayed_meanwhile: usize,
    pub still_failing: usize,
    /// Rows of the dead-letter table that cannot be read as dead letters (a required value missing, a time
    /// out of range), with the first few reasons: skipped, the others replayed.
    pub unreadable: usize,
    pub unreadable_examples: Vec<String>,
    /// `class` or `class/field` -> dead letters still failing for it.
    pub failing_by_reason: BTreeMap<String, usize>,
    /// The first few still failing, with today's reason.
    pub failing_examples: Vec<StillFailing>,
    /// Snapshots of the records table the replay committed.
    pub snapshots: Vec<i64>,
}

/// Where each source stands in the ledgers when the replay starts.
struct Ledgers {
    records: CommittedState,
    dead_letters: CommittedState,
    replayed: Replayed,
    retired: HashSet<String>,
}

impl Ledgers {
    fn settled(&self, source: &str, sequence_number: i64) -> bool {
        let retired = self.retired.contains(source);
        let covered = |state: &CommittedState| state.watermarks.get(source).map_or(retired, |w| sequence_number <= w);
        let awaited =
            self.records.awaiting.get(source).is_some_and(|a| a.after.is_none_or(|after| sequence_number > after) && sequence_number <= a.through);
        covered(&self.records) && covered(&self.dead_letters) && !awaited
    }
}

/// Replays the dead letters `filter` picks (see the module).
pub async fn replay(lake: &Lake, pipeline: &Pipeline, filter: &ReplayFilter, options: ReplayOptions) -> Result<ReplayReport, LakeError> {
    let mut report = ReplayReport { dry_run: options.dry_run, ..ReplayReport::default() };
    // The dead letters' ledger first: every dead letter at or below it is in the scans that follow.
    let dead_letters = lake.committed_state(TableKind::DeadLetters).await?;
    let records_table = lake.load(TableKind::Records).await?;
    let name = &lake.target(TableKind::Records).name;
    let records = CommittedState::read(name, records_table.metadata())?;
    let replayed = Replayed::of(name, records_table.metadata())?;
    let retired = lake.retired_sources().await?.into_iter().map(|r| r.source).collect();
    let ledgers = Ledgers { records, dead_letters, replayed, retired };
    let mut index = unreplayed_index(lake, &ledgers.replayed).await?;

    let Some(mut stream) = lake.scan(TableKind::DeadLetters, filter.predicate(), None).await? else {
        return Ok(report);
    };
    let mut chunk: Vec<StoredDeadLetter> = Vec::new();
    let mut chunk_bytes = 0;
    while let Some(batch) = stream.try_next().await.map_err(LakeError::iceberg("reading the dead letters"))? {
        let rows =
            dead_letter::dead_letters_from_batch(&batch).map_err(|e| LakeError::Config(format!("dead letters that cannot be read back: {e}")))?;
        let mut letters = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Ok(letter) => letters.push(letter),
                Err(why) => {
                    report.unreadable += 1;
                    if report.unreadable_examples.len() < EXAMPLES {
                        report.unreadable_examples.push(why);
                    }
                }
            }
        }
        for letter in letters.into_iter().filter(|l| filter.keeps(l)) {
            report.selected += 1;
            if ledgers.replayed.contains(&letter.source, letter.sequence_number) {
                report.already_replayed += 1;
                continue;
            }
            if !ledgers.settled(&letter.source, letter.sequence_number) {
                report.not_settled += 1;
                continue;
            }
            // Counted with a share for the letter's other fields, so that empty bodies still fill a chunk.
            chunk_bytes += letter.raw_body.len() + LETTER_OVERHEAD_BYTES;
            chunk.push(letter);
            if chunk_bytes >= options.chunk_bytes {
                replay_chunk(lake, pipeline, std::mem::take(&mut chunk), &mut index, &ledgers.replayed, options, &mut report).await?;
                chunk_bytes = 0;
            }
        }
    }
    if !chunk.is_empty() {
        replay_chunk(lake, pipeline, chunk, &mut index, &ledgers.replayed, options, &mut report).await?;
    }
    DeadLettersReplayed {
        selected: report.selected,
        landed: report.landed,
        still_failing: report.still_failing,
        not_settled: report.not_settled,
        dry_run: options.dry_run,
    }
    .emit();
    Ok(report)
}

/// Per source, the sorted sequence numbers of its dead letters not replayed: what a replay's ranges must
/// not close over.
async fn unreplayed_index(lake: &Lake, replayed: &Replayed) -> Result<HashMap<String, Vec<i64>>, LakeError> {
    let mut index: HashMap<String, Vec<i64>> = HashMap::new();
    let columns = [dead_letter::SOURCE, dead_letter::SEQUENCE_NUMBER];
    let Some(mut stream) = lake.scan(TableKind::DeadLetters, Predicate::AlwaysTrue, Some(&columns)).await? else {
        return Ok(index);
    };
    while let Some(batch) = stream.try_next().await.map_err(LakeError::iceberg("reading the dead letters"))? {
        use arrow_array::cast::AsArray;
        let source = arrow_cast::cast(batch.column(0), &arrow_schema::DataType::Utf8)?;
        let sequence = arrow_cast::cast(batch.column(1), &arrow_schema::DataType::Int64)?;
        let (source, sequence) = (source.as_string::<i32>(), sequence.as_primitive::<arrow_array::types::Int64Type>());
        for row in 0..batch.num_rows() {
            let (source, n) = (source.value(row), sequence.value(row));
            if !replayed.contains(source, n) {
                index.entry(source.to_string()).or_default().push(n);
            }
        }
    }
    for numbers in index.values_mut() {
        numbers.sort_unstable();
        numbers.dedup();
    }
    Ok(index)
}

/// Decodes one chunk again, judges it, and commits what passes (unless a dry run).
async fn replay_chunk(
    lake: &Lake,
    pipeline: &Pipeline,
    chunk: Vec<StoredDeadLetter>,
    index: &mut HashMap<String, Vec<i64>>,
    listed_against: &Replayed,
    options: ReplayOptions,
    report: &mut ReplayReport,
) -> Result<(), LakeError> {
    let mut by_source: BTreeMap<String, Vec<StoredDeadLetter>> = BTreeMap::new();
    for letter in chunk {
        by_source.entry(letter.source.clone()).or_default().push(letter);
    }
    let mut parts = Vec::with_capacity(by_source.len());
    for (source, mut letters) in by_source {
        letters.sort_by_key(|l| l.sequence_number);
        letters.dedup_by_key(|l| l.sequence_number);
        let events = letters
            .into_iter()
            .map(|l| SourceEvent {
                sequence_number: l.sequence_number,
                offset: l.offset,
                enqueued_time: l.enqueued_time,
                partition_key: l.partition_key,
                body: l.raw_body.into(),
                defect: None,
            })
            .collect();
        let batch = SourceBatch { source: source.clone(), invocation_id: None, events };
        let validated = pipeline.validate_for(lake, &batch, Utc::now()).await?;
        for failing in validated.dead_letters {
            report.still_failing += 1;
            let class = failing.error_class.as_str();
            let reason = failing.error_field.as_ref().map_or_else(|| class.to_string(), |field| format!("{class}/{field}"));
            *report.failing_by_reason.entry(reason).or_default() += 1;
            if report.failing_examples.len() < EXAMPLES {
                report.failing_examples.push(StillFailing {
                    source: failing.source,
                    sequence_number: failing.sequence_number,
                    error_class: class.to_string(),
                    error_field: failing.error_field,
                    error_message: failing.error_message,
                });
            }
        }
        report.passing += validated.sequence_numbers.len();
        let held = dedup::held(lake, &RowKey::of_rows(&validated.records)).await?;
        report.already_in_table += held.len();
        let keep: arrow_array::BooleanArray = (0..validated.sequence_numbers.len()).map(|row| Some(!held.contains(&row))).collect();
        let rows = arrow_select::filter::filter_record_batch(&validated.records, &keep)?;
        let sequence_numbers: Vec<i64> =
            validated.sequence_numbers.iter().enumerate().filter(|(row, _)| !held.contains(row)).map(|(_, n)| *n).collect();
        if !sequence_numbers.is_empty() {
            parts.push(ReplayRows { source, rows, sequence_numbers });
        }
    }
    if options.dry_run || parts.is_empty() {
        return Ok(());
    }
    // What stays unreplayed after this chunk, per source: its ranges close over nothing else.
    let others: HashMap<String, Vec<i64>> = parts
        .iter()
        .map(|part| {
            let landing: HashSet<i64> = part.sequence_numbers.iter().copied().collect();
            let rest = index.get(&part.source).map(|all| all.iter().copied().filter(|n| !landing.contains(n)).collect()).unwrap_or_default();
            (part.source.clone(), rest)
        })
        .collect();
    let committed = lake.commit_replay(&parts, &others, listed_against).await?;
    report.landed += committed.landed;
    report.replayed_meanwhile += committed.replayed_meanwhile;
    report.snapshots.extend(committed.snapshot_id);
    index.extend(others);
    Ok(())
}
