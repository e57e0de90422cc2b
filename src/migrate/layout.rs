//! Which legacy column holds which seed field, detected from the file's schema, and the rows of a batch
//! turned into the producer's record (JSON with the seed's field names) that ingestion validates.
//!
//! Detection covers the layouts the old Python writer and its predecessors produced: the seed's own names;
//! `symbol`/`created_at`/`text`/`compound`; a label instead of a score; the ticker only in the file or
//! folder name. Types are whatever pyarrow wrote: timestamps in any unit with or without a zone (INT96
//! arrives as nanoseconds), epoch numbers, date strings; dictionary, large and view strings.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// The processing version recorded when the legacy file carried its own score (enrichment fills the rest).
pub const LEGACY_PROCESSING_VERSION: &str = "legacy-migration-1";

/// Column indices of the seed fields a legacy file provides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub message_id: Option<usize>,
    pub timestamp: Option<usize>,
    pub text: Option<usize>,
    pub ticker: Option<usize>,
    pub score: Option<usize>,
    pub label: Option<usize>,
    pub source: Option<usize>,
    pub model: Option<usize>,
    pub url: Option<usize>,
    pub title: Option<usize>,
    /// Scores on VADER's lexicon scale, [-4, 4]: divided by 4.
    pub score_rescaled: bool,
}

/// A string column, whatever its string encoding.
pub fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

/// A mapping file (JSON) for layouts detection cannot guess: which column holds which seed field, and
/// values for fields no column holds.
///
/// ```json
/// {"columns": {"event_timestamp": "posted", "text_content": "body", "sentiment_score": "polarity"},
///  "defaults": {"ticker": "AAPL", "source_system": "stocktwits"}}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub columns: MappedColumns,
    #[serde(default)]
    pub defaults: MappedDefaults,
}

/// Column names, by the seed field they fill (`sentiment_label` is a label column scored as in detection).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappedColumns {
    pub message_id: Option<String>,
    pub event_timestamp: Option<String>,
    pub text_content: Option<String>,
    pub ticker: Option<String>,
    pub sentiment_score: Option<String>,
    pub sentiment_label: Option<String>,
    pub source_system: Option<String>,
    pub model_name: Option<String>,
    pub source_url: Option<String>,
    pub article_title: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappedDefaults {
    /// The ticker of every row without one (instead of the file or folder name).
    pub ticker: Option<String>,
    /// The source of every row without one (instead of `legacy`).
    pub source_system: Option<String>,
    /// The legacy scores' range: 1 ([-1, 1], as they are) or 4 (VADER's lexicon scale, divided by 4), for
    /// files whose values do not say.
    pub score_range: Option<u8>,
}

impl Mapping {
    pub fn parse(json: &str) -> Result<Self, String> {
        let mapping: Self = serde_json::from_str(json).map_err(|e| format!("mapping file: {e}"))?;
        mapping.check().map_err(|e| format!("mapping file: {e}"))?;
        Ok(mapping)
    }

    /// What the types cannot say: `score_range` is 1 or 4.
    pub fn check(&self) -> Result<(), String> {
        match self.defaults.score_range {
            None | Some(1) | Some(4) => Ok(()),
            Some(other) => Err(format!("`score_range` is 1 or 4, not {other}")),
        }
    }

    /// The columns the mapping names, by the seed field they fill.
    pub fn named_columns(&self) -> Vec<(&'static str, String)> {
        let c = &self.columns;
        [
            ("message_id", &c.message_id),
            ("event_timestamp", &c.event_timestamp),
            ("text_content", &c.text_content),
            ("ticker", &c.ticker),
            ("sentiment_score", &c.sentiment_score),
            ("sentiment_label", &c.sentiment_label),
            ("source_system", &c.source_system),
            ("model_name", &c.model_name),
            ("source_url", &c.source_url),
            ("article_title", &c.article_title),
        ]
        .into_iter()
        .filter_map(|(field, column)| column.clone().map(|column| (field, column)))
        .collect()
    }
}

impl Layout {
    /// The columns a reconciliation key needs (id, ticker, time, score, label), in schema order, and this
    /// layout over a batch of only those columns.
    pub fn keys_only(&self) -> (Vec<usize>, Layout) {
        let mut keep: Vec<usize> = [self.message_id, self.ticker, self.timestamp, self.score, self.label].into_iter().flatten().collect();
        keep.sort_unstable();
        keep.dedup();
        let at = |column: Option<usize>| column.and_then(|c| keep.iter().position(|&k| k == c));
        let projected = Layout {
            message_id: at(self.message_id),
            ticker: at(self.ticker),
            timestamp: at(self.timestamp),
            score: at(self.score),
            label: at(self.label),
            score_rescaled: self.score_rescaled,
            ..Layout::default()
        };
        (keep, projected)
    }
}

/// A ticker from a file or folder name: `AAPL.parquet`, `AAPL_2023-01.parquet`, `ticker=AAPL/...`, `AAPL/...`.
pub fn ticker_from_path(path: &str) -> Option<String> {
    let looks_like = |s: &str| !s.is_empty() && s.len() <= 10 && s.chars().all(|c| c.is_ascii_uppercase() || c == '.' || c == '-');
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let file = parts.pop()?;
    let stem = file.rsplit_once('.').map_or(file, |(stem, _extension)| stem);
    let head = stem.split(['_', ' ']).next().unwrap_or(stem);
    if looks_like(head) {
        return Some(head.to_string());
    }
    parts.iter().rev().find_map(|dir| {
        let value = dir.strip_prefix("ticker=").or_else(|| dir.strip_prefix("symbol=")).unwrap_or(dir);
        looks_like(value).then(|| value.to_string())
    })
}

/// A column as strings, whatever its string encoding; `None` for types that do not cast.
fn strings(column: &ArrayRef) -> Option<ArrayRef> {
    arrow_cast::cast(column, &DataType::Utf8).ok()
}

/// Epoch numbers: the unit is read off the magnitude (seconds, ms, µs or ns since 1970).
pub fn epoch_micros(value: i64) -> Option<i64> {
    let magnitude = value.unsigned_abs();
    match magnitude {
        m if m >= 100_000_000_000_000_000 => Some(value / 1_000),
        m if m >= 100_000_000_000_000 => Some(value),
        m if m >= 100_000_000_000 => value.checked_mul(1_000),
        _ => value.checked_mul(1_000_000),
    }
}

/// Epoch numbers as floats (seconds with a fraction, as pandas writes them): the unit by magnitude.
pub fn epoch_micros_f64(value: f64) -> Option<i64> {
    let magnitude = value.abs();
    let micros = match magnitude {
        m if !m.is_finite() => return None,
        m if m >= 1e17 => value / 1e3,
        m if m >= 1e14 => value,
        m if m >= 1e11 => value * 1e3,
        _ => value * 1e6,
    };
    (micros.abs() < 9.2e18).then_some(micros as i64)
}

/// An instant in text: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f][zone]` (UTC without one, also ` UTC`), or a
/// date alone (midnight UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let text = text.strip_suffix(" UTC").or_else(|| text.strip_suffix(" GMT")).unwrap_or(text);
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Event times as microseconds since the epoch (UTC); a zone-less timestamp is taken as UTC.
fn times(column: &ArrayRef) -> Vec<Option<DateTime<Utc>>> {
    let micros = |v: Option<i64>| v.and_then(DateTime::from_timestamp_micros);
    match column.data_type() {
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            match arrow_cast::cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None)) {
                Ok(cast) => cast.as_primitive::<TimestampMicrosecondType>().iter().map(micros).collect(),
                Err(_) => vec![None; column.len()],
            }
        }
        t if t.is_integer() => match arrow_cast::cast(column, &DataType::Int64) {
            Ok(cast) => cast.as_primitive::<Int64Type>().iter().map(|v| micros(v.and_then(epoch_micros))).collect(),
            Err(_) => vec![None; column.len()],
        },
        t if t.is_floating() => match arrow_cast::cast(column, &DataType::Float64) {
            Ok(cast) => cast.as_primitive::<Float64Type>().iter().map(|v| micros(v.and_then(epoch_micros_f64))).collect(),
            Err(_) => vec![None; column.len()],
        },
        _ => match strings(column) {
            Some(text) => text.as_string::<i32>().iter().map(|v| v.and_then(parse_time)).collect(),
            None => vec![None; column.len()],
        },
    }
}

pub fn label_score(label: &str) -> Option<f64> {
    match label.trim().to_ascii_lowercase().as_str() {
        "positive" | "bullish" | "pos" => Some(0.5),
        "negative" | "bearish" | "neg" => Some(-0.5),
        "neutral" | "neu" => Some(0.0),
        _ => None,
    }
}

/// What fills a field no column holds, for every row of a file.
#[derive(Debug, Clone, Default)]
pub struct FileDefaults {
    /// The file's ticker (from the mapping, or its file or folder name).
    pub ticker: Option<String>,
    pub source_system: Option<String>,
    /// With the row number, the message id of rows without one.
    pub id_prefix: String,
}

/// A batch's columns as a layout reads them: strings as `Utf8`, scores as `Float64`, times converted.
/// Each field of a row is read from here, whether it becomes a producer record or a reconciliation key.
pub struct Rows<'a> {
    layout: &'a Layout,
    defaults: &'a FileDefaults,
    first_row: u64,
    len: usize,
    ids: Option<ArrayRef>,
    tickers: Option<ArrayRef>,
    texts: Option<ArrayRef>,
    labels: Option<ArrayRef>,
    sources: Option<ArrayRef>,
    models: Option<ArrayRef>,
    urls: Option<ArrayRef>,
    titles: Option<ArrayRef>,
    scores: Option<ArrayRef>,
    times: Option<Vec<Option<DateTime<Utc>>>>,
}

impl<'a> Rows<'a> {
    /// The rows of `batch`, rows `first_row..` of their file.
    pub fn new(batch: &RecordBatch, layout: &'a Layout, defaults: &'a FileDefaults, first_row: u64) -> Self {
        let text_column = |i: Option<usize>| i.and_then(|i| strings(batch.column(i)));
        Self {
            layout,
            defaults,
            first_row,
            len: batch.num_rows(),
            ids: text_column(layout.message_id),
            tickers: text_column(layout.ticker),
            texts: text_column(layout.text),
            labels: text_column(layout.label),
            sources: text_column(layout.source),
            models: text_column(layout.model),
            urls: text_column(layout.url),
            titles: text_column(layout.title),
            scores: layout.score.and_then(|i| arrow_cast::cast(batch.column(i), &DataType::Float64).ok()),
            times: layout.timestamp.map(|i| times(batch.column(i))),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn get(column: &Option<ArrayRef>, row: usize) -> Option<&str> {
        let column = column.as_ref()?.as_string::<i32>();
        (!column.is_null(row)).then(|| column.value(row))
    }

    /// The row's id, or the one generated from the file's content and the row number.
    pub fn message_id(&self, row: usize) -> std::borrow::Cow<'_, str> {
        match Self::get(&self.ids, row) {
            Some(id) => id.into(),
            None => format!("{}-{}", self.defaults.id_prefix, self.first_row + row as u64).into(),
        }
    }

    pub fn event_time(&self, row: usize) -> Option<DateTime<Utc>> {
        self.times.as_ref().and_then(|t| t[row])
    }

    /// The row's ticker, or the file's.
    pub fn ticker(&self, row: usize) -> Option<&str> {
        Self::get(&self.tickers, row).or(self.defaults.ticker.as_deref())
    }

    /// The legacy score (rescaled where the layout says so), or the label's.
    pub fn score(&self, row: usize) -> Option<f64> {
        let score = self.scores.as_ref().and_then(|s| {
            let s = s.as_primitive::<Float64Type>();
            (!s.is_null(row)).then(|| s.value(row))
        });
        // A score that is no number (inf, NaN) is none: enrichment scores the row, as JSON cannot carry it.
        let score = score.filter(|s| s.is_finite()).map(|score| if self.layout.score_rescaled { score / 4.0 } else { score });
        score.or_else(|| Self::get(&self.labels, row).and_then(label_score))
    }

    /// Row `row` as the producer's record (JSON with the seed's field names) that ingestion validates.
    pub fn record(&self, row: usize) -> Value {
        let mut record = Map::new();
        let mut put = |field: &str, value: Option<&str>| {
            if let Some(value) = value {
                record.insert(field.to_string(), Value::String(value.to_string()));
            }
        };
        put("message_id", Some(&self.message_id(row)));
        put("event_timestamp", self.event_time(row).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)).as_deref());
        put("text_content", Self::get(&self.texts, row));
        put("ticker", self.ticker(row));
        put("source_system", Some(Self::get(&self.sources, row).or(self.defaults.source_system.as_deref()).unwrap_or("legacy")));
        let score = self.score(row);
        if score.is_some() {
            put("processing_version", Some(LEGACY_PROCESSING_VERSION));
            put("model_name", Some(Self::get(&self.models, row).unwrap_or("legacy")));
        }
        put("source_url", Self::get(&self.urls, row));
        put("article_title", Self::get(&self.titles, row));
        if let Some(number) = score.and_then(serde_json::Number::from_f64) {
            record.insert("sentiment_score".into(), Value::Number(number));
        }
        Value::Object(record)
    }
}

/// The rows of `batch` (rows `first_row..`) as producer records.
pub fn records(batch: &RecordBatch, layout: &Layout, defaults: &FileDefaults, first_row: u64) -> Vec<Value> {
    let rows = Rows::new(batch, layout, defaults, first_row);
    (0..rows.len()).map(|row| rows.record(row)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn inferred(batch: &RecordBatch) -> Layout {
        let inferred = crate::migrate::infer::infer(&batch.schema(), batch, &Default::default(), &Mapping::default()).unwrap();
        assert!(inferred.is_decided(), "{}", inferred.undecided());
        inferred.layout
    }

    #[test]
    fn detects_the_old_writers_layout_and_converts_its_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
            Field::new("created_at", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("text", DataType::LargeUtf8, true),
            Field::new("compound", DataType::Float64, true),
        ]));
        let symbols: DictionaryArray<arrow_array::types::Int32Type> = vec![Some("AAPL"), None].into_iter().collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(symbols),
                Arc::new(TimestampNanosecondArray::from(vec![Some(1_672_531_200_000_000_000), None])),
                Arc::new(arrow_array::LargeStringArray::from(vec![Some("beats estimates"), Some("x")])),
                Arc::new(Float64Array::from(vec![Some(0.7), None])),
            ],
        )
        .unwrap();
        let layout = inferred(&batch);
        assert_eq!((layout.ticker, layout.timestamp, layout.text, layout.score, layout.message_id), (Some(0), Some(1), Some(2), Some(3), None));
        let defaults = FileDefaults { ticker: Some("MSFT".into()), source_system: None, id_prefix: "legacy-abc".into() };
        let rows = records(&batch, &layout, &defaults, 10);
        assert_eq!(rows[0]["ticker"], "AAPL");
        assert_eq!(rows[0]["event_timestamp"], "2023-01-01T00:00:00.000000Z");
        assert_eq!(rows[0]["sentiment_score"], 0.7);
        assert_eq!(rows[0]["processing_version"], LEGACY_PROCESSING_VERSION);
        assert_eq!(rows[0]["message_id"], "legacy-abc-10");
        // A null ticker falls back to the file's; a null time stays missing (validation dead-letters it).
        assert_eq!(rows[1]["ticker"], "MSFT");
        assert!(rows[1].get("event_timestamp").is_none());
        assert!(rows[1].get("sentiment_score").is_none(), "no score: enrichment computes one");
        assert_eq!(rows[1]["message_id"], "legacy-abc-11");
    }

    #[test]
    fn labels_epochs_and_strings() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("timestamp", DataType::Int64, true),
            Field::new("date", DataType::Utf8, true),
            Field::new("content", DataType::Utf8, true),
            Field::new("sentiment", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![7, 8, 9])),
                Arc::new(Int64Array::from(vec![Some(1_672_531_200), Some(1_672_531_200_000), None])),
                Arc::new(StringArray::from(vec![Some("2023-01-01"), None, Some("2023-01-02 10:30:00")])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(StringArray::from(vec![Some("Bullish"), Some("bearish"), Some("meh")])),
            ],
        )
        .unwrap();
        let layout = inferred(&batch);
        assert_eq!((layout.timestamp, layout.label, layout.score), (Some(1), Some(4), None));
        let rows = records(&batch, &layout, &FileDefaults { id_prefix: "p".into(), ..Default::default() }, 0);
        assert_eq!(rows[0]["message_id"], "7");
        assert_eq!(rows[0]["event_timestamp"], rows[1]["event_timestamp"], "seconds and milliseconds since the epoch");
        assert_eq!((rows[0]["sentiment_score"].as_f64(), rows[1]["sentiment_score"].as_f64()), (Some(0.5), Some(-0.5)));
        assert!(rows[2].get("sentiment_score").is_none() && rows[2].get("ticker").is_none());
        assert_eq!(parse_time("2023-01-02 10:30:00").unwrap().to_rfc3339(), "2023-01-02T10:30:00+00:00");
        assert_eq!(parse_time("2023-01-02T10:30:00+02:00").unwrap().to_rfc3339(), "2023-01-02T08:30:00+00:00");
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn a_mapping_names_what_inference_cannot_decide() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("posted", DataType::Utf8, true),
            Field::new("body", DataType::Utf8, true),
            Field::new("polarity", DataType::Float32, true),
            Field::new("text", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::new_empty(schema.clone());
        let mapping = Mapping::parse(
            r#"{"columns": {"event_timestamp": "posted", "text_content": "body", "sentiment_score": "polarity"}, "defaults": {"source_system": "stocktwits"}}"#,
        )
        .unwrap();
        let inferred = crate::migrate::infer::infer(&schema, &batch, &Default::default(), &mapping).unwrap();
        let layout = inferred.layout;
        assert_eq!((layout.timestamp, layout.text, layout.score), (Some(0), Some(1), Some(2)));
        assert!(Mapping::parse(r#"{"columns": {"tiker": "sym"}}"#).unwrap_err().contains("unknown field"));
    }

    #[test]
    fn tickers_from_names() {
        assert_eq!(ticker_from_path("exports/AAPL.parquet").as_deref(), Some("AAPL"));
        assert_eq!(ticker_from_path("exports/BRK.B_2023-01.parquet").as_deref(), Some("BRK.B"));
        assert_eq!(ticker_from_path("ticker=MSFT/part-0.parquet").as_deref(), Some("MSFT"));
        assert_eq!(ticker_from_path("TSLA/2023/part-0.parquet").as_deref(), Some("TSLA"));
        assert_eq!(ticker_from_path("exports/part-0.parquet"), None);
    }
}
