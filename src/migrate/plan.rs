//! `migrate --plan`: what migrating each file would do, read from its footer and the sample inference
//! reads, with nothing staged or committed. Per file: the layout inferred (each seed field's column or
//! value and the evidence for it), what a rule must still decide, sample rows before and after mapping
//! with each one's outcome, the dead letters to expect and why, and how much the table already has.
//!
//! A real run opens every file the same way ([`super::LegacyFile::resume`]: the layout recorded when its
//! migration began, or the same inference over the same sample), so the layout it reports is the one the
//! plan showed.
//!
//! Uses [`super`] (opening files), [`super::layout`] (mapping rows), [`crate::ingest`] (validating the
//! sample as a run would) and [`crate::lake`] (what is committed already).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use object_store::{ObjectMeta, ObjectStore};
use serde_json::{Map, Value};

use super::infer::{Inferred, SAMPLE_ROWS};
use super::layout::records;
use super::rules::Applied;
use super::{Committed, LegacyFile, MigrateError};
use crate::ingest::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::Lake;

/// Sample rows shown per file (all of the sample is validated).
const SHOWN_ROWS: usize = 3;
/// Values longer than this are cut in what the plan shows.
const SHOWN_CHARS: usize = 160;

/// What a run would do with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Inference (and its rule) decide every field: a run migrates it.
    Ready,
    /// Every row is committed already: a run reads nothing.
    Migrated,
    /// No rows: nothing to do.
    Empty,
    /// Two columns fit a field alike, or none fits a required one: a rule must name the column.
    NeedsRule,
    /// This lake dual-wrote it: its rows are in the table already.
    DualWrite,
    /// Not a readable Parquet file, or its rule names a column it lacks.
    Refused,
}

/// One file's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilePlan {
    pub file: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub bytes: u64,
    pub rows: u64,
    pub row_groups: usize,
    /// Rows the table has from an earlier run (not read again).
    pub already_committed: u64,
    /// The file's columns and their Arrow types.
    pub columns: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<Inferred>,
    pub sample: Vec<SampleRow>,
    pub dead_letters: DeadLetterForecast,
}

/// A row of the sample, as the file holds it and as it would be staged.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SampleRow {
    /// Its row number (from 1).
    pub row: u64,
    pub before: Map<String, Value>,
    pub after: Value,
    /// `staged`, or the reason it would be dead-lettered.
    pub outcome: String,
}

/// The dead letters to expect: counted in the sample, estimated for the file, and what the footer says
/// exactly about rows without a time or a text.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeadLetterForecast {
    pub sampled_rows: usize,
    /// `class: field` -> rows of the sample, with one message.
    pub in_sample: BTreeMap<String, ReasonCount>,
    /// In the sample's proportion, for the whole file.
    pub estimated: u64,
    /// Rows whose time or text column is null, by the footer's statistics (each is a dead letter).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub null_in_footer: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReasonCount {
    pub rows: usize,
    pub example: String,
}

impl FilePlan {
    fn refused(file: String, meta: &ObjectMeta, status: Status, error: &MigrateError) -> Self {
        Self {
            file,
            status,
            error: Some(error.to_string()),
            source: None,
            rule: None,
            bytes: meta.size,
            rows: 0,
            row_groups: 0,
            already_committed: 0,
            columns: Vec::new(),
            layout: None,
            sample: Vec::new(),
            dead_letters: DeadLetterForecast::default(),
        }
    }
}

/// The plan of one file (`meta` under `location_url`), under the rule `applied`; reads the table only to
/// say what it has.
pub async fn plan_file(
    lake: &Lake,
    pipeline: &Pipeline,
    store: Arc<dyn ObjectStore>,
    location_url: &str,
    meta: &ObjectMeta,
    applied: Applied<'_>,
) -> Result<FilePlan, MigrateError> {
    let file = format!("{}/{}", location_url.trim_end_matches('/'), meta.location);
    let refused = |e: MigrateError, file: String| if e.is_retryable() { Err(e) } else { Ok(FilePlan::refused(file, meta, Status::Refused, &e)) };
    let mut legacy = match LegacyFile::inspect(store, location_url, meta, applied).await {
        Ok(inspected) => inspected,
        Err(e) => return refused(e, file),
    };
    let committed = match legacy.resume(lake).await {
        Ok(committed) => committed,
        Err(e) => return refused(e, file),
    };
    // What the plan shows: the rows inference read (read here when a recorded layout spared inference).
    let sample = match legacy.sample.take() {
        Some(sample) => sample,
        None => match legacy.opened.sample(SAMPLE_ROWS).await {
            Ok(sample) => sample,
            Err(e) => return refused(MigrateError::of_read(&file, e), file),
        },
    };
    let rows = legacy.opened.rows();
    let status = match () {
        _ if legacy.dual_write.is_some() => Status::DualWrite,
        _ if rows == 0 => Status::Empty,
        _ if committed == Committed::Retired || committed == Committed::Through(rows) => Status::Migrated,
        _ if legacy.decided().is_err() => Status::NeedsRule,
        _ => Status::Ready,
    };
    let already_committed = match committed {
        Committed::Retired => rows,
        Committed::Through(n) => n.min(rows),
    };
    let schema = legacy.opened.schema().clone();
    let mut plan = FilePlan {
        file,
        status,
        error: (status == Status::NeedsRule).then(|| legacy.inferred.undecided()),
        source: Some(legacy.source.clone()),
        rule: legacy.rule.clone(),
        bytes: meta.size,
        rows,
        row_groups: legacy.opened.row_groups(),
        already_committed,
        columns: schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect(),
        layout: Some(legacy.inferred.clone()),
        sample: Vec::new(),
        dead_letters: DeadLetterForecast::default(),
    };
    for (field, column) in [("event_timestamp", legacy.layout.timestamp), ("text_content", legacy.layout.text)] {
        if let Some(nulls) = column.and_then(|c| legacy.opened.null_count(schema.field(c).name())).filter(|&n| n > 0) {
            plan.dead_letters.null_in_footer.insert(field, nulls);
        }
    }
    if status == Status::NeedsRule || sample.num_rows() == 0 {
        plan.sample = shown(&sample, &[], &[]);
        return Ok(plan);
    }
    let mapped = records(&sample, &legacy.layout, &legacy.defaults, 0);
    let events = mapped.iter().enumerate().map(|(i, record)| SourceEvent::new(i as i64 + 1, bytes::Bytes::from(record.to_string()))).collect();
    let validated = pipeline.validate_batch(&SourceBatch { source: legacy.source.clone(), invocation_id: None, events }, chrono::Utc::now());
    let mut outcomes = vec!["staged".to_string(); mapped.len()];
    for dead in &validated.dead_letters {
        let reason = format!("{}: {}", dead.error_class.as_str(), dead.error_field.as_deref().unwrap_or("-"));
        let count = plan.dead_letters.in_sample.entry(reason).or_insert_with(|| ReasonCount { rows: 0, example: dead.error_message.clone() });
        count.rows += 1;
        if let Some(outcome) = outcomes.get_mut((dead.sequence_number - 1) as usize) {
            *outcome = format!("dead letter: {}", dead.error_message);
        }
    }
    plan.dead_letters.sampled_rows = mapped.len();
    let dead = validated.dead_letters.len() as u64;
    // The rows a run would read: those not committed already.
    plan.dead_letters.estimated = (dead as f64 / mapped.len() as f64 * (rows - already_committed) as f64).round() as u64;
    plan.sample = shown(&sample, &mapped, &outcomes);
    Ok(plan)
}

/// The first rows of `sample` as the file holds them (cut to [`SHOWN_CHARS`]) beside their mapped records.
fn shown(sample: &RecordBatch, mapped: &[Value], outcomes: &[String]) -> Vec<SampleRow> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<_> = sample.columns().iter().map(|column| ArrayFormatter::try_new(column.as_ref(), &options).ok()).collect();
    (0..sample.num_rows().min(SHOWN_ROWS))
        .map(|row| {
            let before = sample
                .schema()
                .fields()
                .iter()
                .zip(&formatters)
                .zip(sample.columns())
                .map(|((field, formatter), column)| {
                    let value = match formatter {
                        _ if column.is_null(row) => Value::Null,
                        Some(f) => Value::String(cut(&f.value(row).to_string())),
                        None => Value::String("(not shown)".into()),
                    };
                    (field.name().clone(), value)
                })
                .collect();
            let after = mapped.get(row).map(cut_strings).unwrap_or(Value::Null);
            SampleRow { row: row as u64 + 1, before, after, outcome: outcomes.get(row).cloned().unwrap_or_else(|| "not mapped".into()) }
        })
        .collect()
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn cut_strings(record: &Value) -> Value {
    match record {
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), cut_strings(v))).collect()),
        Value::String(s) => Value::String(cut(s)),
        other => other.clone(),
    }
}
