//! Replayed dead letters committed into the records table, each exactly once.
//!
//! The rows and the dead letters they came from go in one compare-and-swap: the append and the replay
//! ledger after it ([`Replayed`]: the set in a property, what this commit added in the snapshot summary). Each attempt is selected against the
//! ledger of the metadata it builds on, so two replays racing, or a replay retried after an answer that
//! never came, land each dead letter once: what the other landed first is dropped from the attempt. The
//! ingestion watermarks are not touched, so a redelivered original event is still a duplicate.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use iceberg::spec::DataFile;

use super::policy::CommitPolicy;
use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::files::{delete, write_data_files};
use crate::lake::stage::{
    commit_landed, CommittedState, Replayed, COMMIT_ID_PROPERTY, LEDGER_FORMAT_PROPERTY, PARTIAL_SUMMARY, REPLAYED_ADDED_SUMMARY, REPLAYED_PROPERTY,
    WATERMARKS_PROPERTY,
};
use crate::lake::table::compat::conform;
use crate::lake::table::Change;
use crate::lake::target::TableHandle;

/// Rows decoded again from one source's dead letters: row `i` is the event at `sequence_numbers[i]`.
#[derive(Debug, Clone)]
pub struct ReplayRows {
    pub source: String,
    pub rows: RecordBatch,
    pub sequence_numbers: Vec<i64>,
}

/// Dead letters by source and sequence number.
type Keys = BTreeSet<(String, i64)>;

/// Data files an attempt wrote for `keys` under schema `schema_id`, kept for the next attempt after a refusal.
struct Written {
    keys: Keys,
    schema_id: i32,
    files: Vec<DataFile>,
}

/// What one replay commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayCommit {
    pub snapshot_id: Option<i64>,
    /// Rows this commit added.
    pub landed: usize,
    /// Rows dropped because their dead letters were replayed by someone else in the meantime.
    pub replayed_meanwhile: usize,
    pub attempts: u32,
}

/// Commits `parts` unless their dead letters are replayed already. `others` holds, per source, the
/// sequence numbers of its dead letters that stay in the dead-letter table unreplayed (sorted), as listed
/// against the replayed set `listed_against`: ranges are never closed across them, nor across what has
/// left the set since ([`Replayed::insert_closing`]).
pub async fn commit_replay(
    handle: TableHandle<'_>,
    policy: CommitPolicy,
    parts: &[ReplayRows],
    others: &HashMap<String, Vec<i64>>,
    listed_against: &Replayed,
) -> Result<ReplayCommit, LakeError> {
    let name = handle.target.name.clone();
    let commit_id = uuid::Uuid::new_v4().to_string();
    let mut report = ReplayCommit::default();
    let mut written: Option<Written> = None;
    loop {
        report.attempts += 1;
        let table = handle.load().await?;
        if commit_landed(table.metadata(), &commit_id) {
            // An earlier attempt landed although its reply said otherwise.
            report.snapshot_id = table.metadata().snapshots().find(|s| is_commit(s, &commit_id)).map(|s| s.snapshot_id());
            return Ok(report);
        }
        let replayed = Replayed::of(&name, table.metadata())?;
        let (selected, keys) = select(parts, &replayed)?;
        report.landed = keys.len();
        report.replayed_meanwhile = parts.iter().map(|p| p.sequence_numbers.len()).sum::<usize>() - keys.len();
        let schema_id = table.metadata().current_schema_id();
        let files = match written.take() {
            Some(w) if w.keys == keys && w.schema_id == schema_id => w.files,
            stale => {
                if let Some(stale) = stale {
                    delete(&table, &stale.files).await;
                }
                if keys.is_empty() {
                    return Ok(report);
                }
                let table_schema: SchemaRef = Arc::new(
                    iceberg::arrow::schema_to_arrow_schema(table.metadata().current_schema())
                        .map_err(LakeError::iceberg("the table's Arrow schema"))?,
                );
                let conformed = selected.iter().map(|p| conform(p, &table_schema)).collect::<Result<Vec<_>, _>>()?;
                let prefix = format!("replay-{}-{}", &commit_id[..8], report.attempts);
                write_data_files(&table, &conformed, handle.target.sort_columns, &prefix, None).await?
            }
        };
        let mut after = replayed.clone();
        let mut by_source: HashMap<&str, Vec<i64>> = HashMap::new();
        for (source, n) in &keys {
            by_source.entry(source.as_str()).or_default().push(*n);
        }
        let reopened = listed_against.difference(&replayed);
        let sources: Vec<&str> = by_source.keys().copied().collect();
        // The watermarks the replayed dead letters lie under, as a partial summary: a rollback to this
        // snapshot finds them here, not in an older summary (a ledger flush leaves none).
        let under = CommittedState::read(&name, table.metadata())?.watermarks.only(sources.iter().copied()).to_property();
        for (source, numbers) in by_source {
            after.insert_closing(source, &numbers, others.get(source).map(Vec::as_slice).unwrap_or_default(), &reopened);
        }
        let change = Change {
            files: files.clone(),
            summary: HashMap::from([
                (COMMIT_ID_PROPERTY.to_string(), commit_id.clone()),
                (REPLAYED_ADDED_SUMMARY.to_string(), after.difference(&replayed).to_property()),
                (WATERMARKS_PROPERTY.to_string(), under),
                (LEDGER_FORMAT_PROPERTY.to_string(), PARTIAL_SUMMARY.to_string()),
            ]),
            properties: vec![(REPLAYED_PROPERTY.to_string(), after.to_property())],
            ..Change::default()
        };
        let failure = match handle.commit(&table, change).await {
            Ok(Outcome::Landed { snapshot_id }) => {
                report.snapshot_id = snapshot_id;
                tracing::info!(table = %name, rows = report.landed, snapshot_id, ranges = after.ranges(), "Replayed dead letters committed.");
                return Ok(report);
            }
            Ok(Outcome::Conflict) => {
                // Refused: the files are ours alone and serve the next attempt if it selects the same rows.
                written = Some(Written { keys, schema_id, files });
                LakeError::Conflict { table: name.clone() }
            }
            // Whether it landed is not known: the next attempt re-reads the table and looks for our commit id.
            Err(e) if e.is_retryable() => e,
            Err(e) => return Err(e),
        };
        if report.attempts >= policy.max_attempts {
            return Err(LakeError::CommitExhausted { table: name, attempts: report.attempts, source: Box::new(failure) });
        }
        tokio::time::sleep(policy.backoff(report.attempts)).await;
    }
}

fn is_commit(snapshot: &iceberg::spec::Snapshot, commit_id: &str) -> bool {
    snapshot.summary().additional_properties.get(COMMIT_ID_PROPERTY).is_some_and(|c| c == commit_id)
}

/// The rows of `parts` whose dead letters `replayed` does not hold yet, and their keys.
fn select(parts: &[ReplayRows], replayed: &Replayed) -> Result<(Vec<RecordBatch>, Keys), LakeError> {
    let mut keys = BTreeSet::new();
    let mut selected = Vec::with_capacity(parts.len());
    for part in parts {
        let mask: BooleanArray =
            part.sequence_numbers.iter().map(|n| Some(!replayed.contains(&part.source, *n) && keys.insert((part.source.clone(), *n)))).collect();
        selected.push(arrow_select::filter::filter_record_batch(&part.rows, &mask)?);
    }
    Ok((selected, keys))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn part(source: &str, numbers: &[i64]) -> ReplayRows {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let rows = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(numbers.to_vec()))]).unwrap();
        ReplayRows { source: source.into(), rows, sequence_numbers: numbers.to_vec() }
    }

    #[test]
    fn selection_drops_what_is_replayed_and_what_repeats() {
        let mut replayed = Replayed::default();
        replayed.insert_range("a", 1, 2);
        let (rows, keys) = select(&[part("a", &[1, 3, 3]), part("b", &[1])], &replayed).unwrap();
        let kept: Vec<i64> = rows.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect();
        assert_eq!(kept, vec![3, 1]);
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), vec![("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(rows[0].column(0).len(), 1);
    }
}
