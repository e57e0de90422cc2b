//! Ingestion: a [`SourceBatch`] of raw events -> a [`ValidatedBatch`] (Arrow rows + dead letters) -> staged
//! segments in the lake. Commit happens later and elsewhere ([`crate::lake::Lake::commit`]), so an
//! invocation's cost is one or two small object writes, not a table commit.
//!
//! Nothing is dropped here: every event either becomes a row or a dead letter carrying its raw bytes and the
//! reason. Duplicates (redeliveries) are not filtered here; the committer drops them against the table's
//! watermark, which is the only place that knows for sure what is committed.

mod batch;
pub mod decode;
pub mod dedup;
pub mod dual_write;
pub mod file;
pub mod replay;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};

pub use self::batch::{SourceBatch, SourceEvent};
use crate::enrich::{Enricher, IncompletePolicy};
use crate::lake::{Lake, LakeError, Segment, TableKind};
use crate::observability::{BatchReceived, BatchStaged, RecordRejected};
use crate::schema::dead_letter::{dead_letters_to_batch, DeadLetter, ErrorClass};
use crate::schema::extension::{ExtraColumn, ExtrasBuilder};
use crate::schema::RecordBatchBuilder;

/// The outcome of decoding and validating a batch: rows ready for the table, and everything refused.
#[derive(Debug, Clone)]
pub struct ValidatedBatch {
    pub source: String,
    pub invocation_id: Option<String>,
    pub records: RecordBatch,
    pub sequence_numbers: Vec<i64>,
    pub dead_letters: Vec<DeadLetter>,
    /// Records whose missing analysis fields were computed here.
    pub enriched: usize,
}

/// How batches are turned into rows: what happens to records without analysis, whether staged rows
/// are also written to the legacy store ([`dual_write`]), and whether records segments are staged with
/// their per-minute summary.
#[derive(Debug, Clone)]
pub struct Pipeline {
    enricher: Option<Enricher>,
    dual_write: Option<dual_write::DualWrite>,
    summarise: bool,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new(IncompletePolicy::default())
    }
}

impl Pipeline {
    pub fn new(policy: IncompletePolicy) -> Self {
        Self { enricher: (policy == IncompletePolicy::Enrich).then(Enricher::default), dual_write: None, summarise: true }
    }

    /// The same pipeline staging records segments without their per-minute summary: for history (a
    /// migration), whose rows a dashboard's fresh reads seldom ask for before they are committed. A segment
    /// without a summary is still read by those reads, from its rows ([`crate::lake::tail`]); the summary
    /// would cost a third of staging a row of sparse history (each row is its own minute in every dimension).
    pub fn without_summaries(self) -> Self {
        Self { summarise: false, ..self }
    }

    /// The same pipeline, also writing each staged batch's rows to the legacy store.
    pub fn with_dual_write(self, dual_write: dual_write::DualWrite) -> Self {
        Self { dual_write: Some(dual_write), ..self }
    }

    /// Decodes, enriches (per policy) and validates every event. Pure: no I/O. `now` fills missing
    /// ingestion timestamps and dates dead letters; it never decides whether an event is valid.
    pub fn validate_batch(&self, batch: &SourceBatch, now: DateTime<Utc>) -> ValidatedBatch {
        validate_events(batch, now, self.enricher.as_ref(), Vec::new())
    }

    /// Validates a batch and stages rows and dead letters. Returns only after both are durable, so that
    /// acknowledging the batch to Event Hubs afterwards cannot lose data.
    pub async fn ingest(&self, lake: &Lake, batch: &SourceBatch) -> Result<IngestReport, LakeError> {
        self.ingest_at(lake, batch, Utc::now()).await
    }

    /// [`Pipeline::ingest`] as of `now`: what a delivery processed at another time (a redelivery) does.
    ///
    /// Decoding and enrichment are CPU-bound (a 1,000-event batch of raw 1 KB messages takes ~100 ms to
    /// enrich), so they run on the blocking pool: the server keeps answering the host's probes and other
    /// partitions' invocations meanwhile.
    pub async fn ingest_at(&self, lake: &Lake, batch: &SourceBatch, now: DateTime<Utc>) -> Result<IngestReport, LakeError> {
        self.ingest_over(lake, batch, batch.sequence_range(), now).await
    }

    /// [`Pipeline::ingest`] of a batch that stands for all of `range`: sequence numbers in it without an
    /// event were left out on purpose (migration's rows the table already holds), and the ledger advances
    /// over them as over the batch's own. A batch without events still stages `range`, so the range is never
    /// taken for a gap.
    pub async fn ingest_covering(&self, lake: &Lake, batch: &SourceBatch, range: (i64, i64)) -> Result<IngestReport, LakeError> {
        if let Some((first, last)) = batch.sequence_range() {
            if first < range.0 || last > range.1 {
                return Err(LakeError::Config(format!(
                    "events {first}..={last} of {} lie outside the range {range:?} staged for them",
                    batch.source
                )));
            }
        }
        self.ingest_over(lake, batch, Some(range), Utc::now()).await
    }

    async fn ingest_over(&self, lake: &Lake, batch: &SourceBatch, range: Option<(i64, i64)>, now: DateTime<Utc>) -> Result<IngestReport, LakeError> {
        let validated = self.validate_for(lake, batch, now).await?;
        ingest_validated(lake, batch, range, validated, self).await
    }

    /// [`Pipeline::validate_batch`] for `lake`'s records table as it is now: columns added to it since the
    /// seed's are filled from the events that carry them. On the blocking pool.
    pub async fn validate_for(&self, lake: &Lake, batch: &SourceBatch, now: DateTime<Utc>) -> Result<ValidatedBatch, LakeError> {
        let (pipeline, owned) = (self.clone(), batch.clone());
        let extras = lake.extra_columns().await?;
        Ok(tokio::task::spawn_blocking(move || validate_events(&owned, now, pipeline.enricher.as_ref(), extras))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
    }
}

fn validate_events(batch: &SourceBatch, now: DateTime<Utc>, enricher: Option<&Enricher>, extras: Vec<ExtraColumn>) -> ValidatedBatch {
    let mut enriched = 0;
    let mut builder = RecordBatchBuilder::with_capacity(batch.events.len());
    let mut extra_values = ExtrasBuilder::new(extras, batch.events.len());
    let mut sequence_numbers = Vec::with_capacity(batch.events.len());
    let mut dead_letters = Vec::new();
    for event in &batch.events {
        let refused = |class: ErrorClass, field: Option<&str>, message: String| DeadLetter {
            source: batch.source.clone(),
            sequence_number: event.sequence_number,
            offset: event.offset.clone(),
            enqueued_time: event.enqueued_time,
            partition_key: event.partition_key.clone(),
            raw_body: event.body.to_vec(),
            error_class: class,
            error_field: field.map(str::to_string),
            error_message: message,
            dead_lettered_at: now,
            invocation_id: batch.invocation_id.clone(),
        };
        if let Some(defect) = &event.defect {
            dead_letters.push(refused(ErrorClass::Decode, None, defect.clone()));
            continue;
        }
        let mut scratch = Vec::new();
        let mut raw = match decode::decode(&event.body, &mut scratch) {
            Ok(raw) => raw,
            Err(e) => {
                dead_letters.push(refused(ErrorClass::Decode, e.field(), e.to_string()));
                continue;
            }
        };
        if let Some(enricher) = enricher {
            enriched += usize::from(enricher.fill_missing(&mut raw));
        }
        let extra = match extra_values.read(&event.body) {
            Ok(values) => values,
            Err(e) => {
                dead_letters.push(refused(ErrorClass::Validation, Some(&e.field), e.message));
                continue;
            }
        };
        match validate::validate(raw, event.enqueued_time.unwrap_or(now), now) {
            Ok(record) => {
                builder.append(&record);
                extra_values.append(extra);
                sequence_numbers.push(event.sequence_number);
            }
            Err(e) => {
                let class = if e.is_incomplete() { ErrorClass::Incomplete } else { ErrorClass::Validation };
                let field = e.violations.first().map(|v| v.field.as_str());
                dead_letters.push(refused(class, field, e.to_string()));
            }
        }
    }
    let records = builder.finish().expect("builder columns always match the table's Arrow schema");
    let records = if extra_values.is_empty() {
        records
    } else {
        let mut fields: Vec<_> = records.schema().fields().iter().cloned().collect();
        fields.extend(extra_values.fields().cloned());
        let mut columns = records.columns().to_vec();
        columns.extend(extra_values.finish());
        RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).expect("added columns have one value per row")
    };
    ValidatedBatch { source: batch.source.clone(), invocation_id: batch.invocation_id.clone(), records, sequence_numbers, dead_letters, enriched }
}

/// What an ingest call staged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReport {
    pub received: usize,
    pub staged_rows: usize,
    pub dead_lettered: usize,
    pub enriched: usize,
    pub segments: Vec<String>,
    /// Files written to the legacy store (dual-write).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dual_written: Vec<String>,
}

async fn ingest_validated(
    lake: &Lake,
    batch: &SourceBatch,
    range: Option<(i64, i64)>,
    validated: ValidatedBatch,
    pipeline: &Pipeline,
) -> Result<IngestReport, LakeError> {
    let started = Instant::now();
    BatchReceived { source: &batch.source, events: batch.events.len() }.emit();
    for letter in &validated.dead_letters {
        RecordRejected {
            source: &letter.source,
            sequence_number: letter.sequence_number,
            error_class: letter.error_class.as_str(),
            reason: &letter.error_message,
        }
        .emit();
    }
    let mut report = IngestReport {
        received: batch.events.len(),
        staged_rows: validated.records.num_rows(),
        dead_lettered: validated.dead_letters.len(),
        enriched: validated.enriched,
        segments: Vec::new(),
        dual_written: Vec::new(),
    };
    let Some(range) = range else {
        return Ok(report);
    };
    // Both tables get a segment for the batch's whole range, even one without rows: a table's ledger
    // advances only through contiguous ranges, so each must hear about every batch.
    // Sources without an enqueued time (files, the CLI) count from when the batch was received.
    let enqueued = batch.events.iter().filter_map(|e| e.enqueued_time).max().or_else(|| Some(chrono::Utc::now()));
    let letters = Segment {
        enqueued,
        source: validated.source.clone(),
        invocation_id: validated.invocation_id.clone(),
        range,
        sequence_numbers: validated.dead_letters.iter().map(|l| l.sequence_number).collect(),
        rows: dead_letters_to_batch(&validated.dead_letters)?,
    };
    report.segments.push(lake.stage(TableKind::DeadLetters, &letters, false).await?);
    let records = Segment {
        enqueued,
        source: validated.source,
        invocation_id: validated.invocation_id,
        range,
        rows: validated.records,
        sequence_numbers: validated.sequence_numbers,
    };
    let rows = records.rows.clone();
    report.segments.push(lake.stage(TableKind::Records, &records, pipeline.summarise).await?);
    if let Some(dual_write) = &pipeline.dual_write {
        // After the lake's segments are durable: a failure here fails the invocation, and the redelivery
        // is dropped by the ledger while the legacy files are rewritten under the same names.
        report.dual_written = dual_write.write(&batch.source, range, &rows).await?;
    }
    BatchStaged {
        source: &batch.source,
        rows: report.staged_rows,
        dead_letters: report.dead_lettered,
        enriched: report.enriched,
        elapsed: started.elapsed(),
    }
    .emit();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn event(seq: i64, body: &str) -> SourceEvent {
        SourceEvent::new(seq, Bytes::from(body.to_string()))
    }

    #[test]
    fn every_event_becomes_a_row_or_a_dead_letter() {
        let good = r#"{"message_id":"a","event_timestamp":"2025-01-01T00:00:00Z","source_system":"x","text_content":"t","sentiment_score":0.1,
            "sentiment_magnitude":0.1,"primary_emotion":"joy","sarcasm_detection":false,"subjectivity_score":0.5,"toxicity_score":0,"user_intent":"buy"}"#;
        let incomplete = r#"{"message_id":"b","event_timestamp":"2025-01-01T00:00:00Z","source_system":"x","text_content":"t"}"#;
        let mut null_body = event(5, "");
        null_body.defect = Some("event body is null".into());
        let batch = SourceBatch {
            source: "s".into(),
            invocation_id: Some("inv".into()),
            events: vec![event(1, good), event(2, "not json"), event(3, r#"{"sentiment_score":9}"#), event(4, incomplete), null_body],
        };
        assert_eq!(batch.sequence_range(), Some((1, 5)));
        let v = Pipeline::new(IncompletePolicy::DeadLetter).validate_batch(&batch, Utc::now());
        assert_eq!(v.records.num_rows(), 1);
        assert_eq!(v.sequence_numbers, vec![1]);
        let classes: Vec<_> = v.dead_letters.iter().map(|d| (d.sequence_number, d.error_class)).collect();
        assert_eq!(classes, vec![(2, ErrorClass::Decode), (3, ErrorClass::Validation), (4, ErrorClass::Incomplete), (5, ErrorClass::Decode)]);
        assert_eq!(v.dead_letters[0].raw_body, b"not json");
        assert_eq!(v.dead_letters[1].error_field.as_deref(), Some("message_id"));
        assert_eq!(v.dead_letters[3].error_message, "event body is null");

        let enriching = Pipeline::new(IncompletePolicy::Enrich).validate_batch(&batch, Utc::now());
        assert_eq!(enriching.sequence_numbers, vec![1, 4], "the incomplete record is enriched instead");
        assert_eq!(enriching.enriched, 2, "record 1 lacked optional fields, record 4 everything");
    }
}
