//! The shapes the query service answers with, and the typed reading of engine results into them.
//!
//! Engines return Arrow; each query's SQL casts its outputs to `BIGINT`, `DOUBLE`, strings or UTC timestamps,
//! and [`Columns`] reads those by name, so an engine returning something else is a clear
//! [`EngineError::Shape`] rather than a wrong number.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::EngineError;

/// Scores above this are positive, below its negation negative, otherwise neutral (VADER's convention).
/// Compared in the column's own precision (32-bit float), so a stored 0.05 is neutral.
pub const NEUTRAL_BAND: f64 = 0.05;

pub const SCORE_DEFINITION: &str = "sentiment_score is in [-1, 1] (VADER compound scale, -1 most bearish, 1 most bullish). \
A message is positive when its score > 0.05, negative when < -0.05, neutral otherwise. Labels of average scores follow \
Alpha Vantage's bands: <= -0.35 Bearish, (-0.35, -0.15] Somewhat-Bearish, (-0.15, 0.15) Neutral, [0.15, 0.35) Somewhat-Bullish, >= 0.35 Bullish. \
Averages are arithmetic means over messages; magnitude, toxicity and intensities are in [0, 1]. Times are UTC; windows are [from, to).";

/// Alpha Vantage's sentiment bands for an average score.
pub fn label(score: f64) -> &'static str {
    if score <= -0.35 {
        "Bearish"
    } else if score <= -0.15 {
        "Somewhat-Bearish"
    } else if score < 0.15 {
        "Neutral"
    } else if score < 0.35 {
        "Somewhat-Bullish"
    } else {
        "Bullish"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeSeriesPoint {
    /// Start of the bucket (UTC).
    pub bucket_start: DateTime<Utc>,
    /// The same instant under the name the seed's dashboards read.
    pub time_bucket: DateTime<Utc>,
    pub message_count: i64,
    pub average_score: f64,
    /// `average_score` under the name the seed's dashboards read.
    pub avg_sentiment: f64,
    pub min_score: f64,
    pub max_score: f64,
    /// Mean of the messages' `sentiment_magnitude` where present.
    pub average_magnitude: Option<f64>,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    pub label: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TickerVolume {
    pub ticker: String,
    pub message_count: i64,
    pub average_score: f64,
    /// `average_score` under the name the seed's dashboards read.
    pub avg_sentiment: f64,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    /// `positive / message_count`.
    pub bullish_share: f64,
    /// `negative / message_count`.
    pub bearish_share: f64,
    pub label: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EmotionIntensity {
    pub emotion: String,
    /// Mean intensity over the messages whose emotion vector has this emotion.
    pub average_intensity: f64,
    /// Messages whose emotion vector has this emotion.
    pub records: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EmotionCount {
    pub emotion: String,
    pub count: i64,
}

/// Overall sentiment of one ticker with its emotions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SentimentSummary {
    pub ticker: String,
    pub message_count: i64,
    pub average_score: Option<f64>,
    pub average_magnitude: Option<f64>,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    pub label: Option<&'static str>,
    /// From `emotion_intensity_vector`, strongest first.
    pub emotions: Vec<EmotionIntensity>,
    /// From `primary_emotion`, most frequent first.
    pub primary_emotions: Vec<EmotionCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EntitySentiment {
    pub entity: String,
    pub entity_type: String,
    /// Occurrences in `entity_recognition` lists.
    pub mentions: i64,
    /// Mean `sentiment_score` of the messages, once per mention.
    pub average_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AspectSentiment {
    pub aspect: String,
    pub mentions: i64,
    /// Mean of the aspect's own score in `aspect_based_sentiment`.
    pub average_sentiment: f64,
    pub positive: i64,
    pub negative: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlaggedMessage {
    pub message_id: String,
    pub event_timestamp: DateTime<Utc>,
    pub ticker: Option<String>,
    pub source_system: String,
    pub toxicity_score: f64,
    pub text_content: String,
}

/// Moderation view: how many messages reach the threshold, and the worst of them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ToxicityReport {
    pub min_toxicity: f64,
    /// Messages with a toxicity score.
    pub scored: i64,
    /// Messages with `toxicity_score >= min_toxicity`.
    pub flagged: i64,
    pub average_toxicity: Option<f64>,
    /// The most toxic flagged messages, worst first.
    pub messages: Vec<FlaggedMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IntentShare {
    pub intent: String,
    pub count: i64,
    /// `count` over all messages with an intent.
    pub share: f64,
    pub average_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EntityRef {
    pub text: String,
    #[serde(rename = "type")]
    pub entity_type: String,
}

/// One stored record, all 22 fields.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecordRow {
    pub message_id: String,
    pub event_timestamp: DateTime<Utc>,
    pub ingestion_timestamp: DateTime<Utc>,
    pub source_system: String,
    pub text_content: String,
    pub sentiment_score: f64,
    pub sentiment_magnitude: Option<f64>,
    pub primary_emotion: Option<String>,
    pub emotion_intensity_vector: Option<BTreeMap<String, f64>>,
    pub aspect_target_identification: Option<Vec<String>>,
    pub aspect_based_sentiment: Option<BTreeMap<String, f64>>,
    pub sarcasm_detection: Option<bool>,
    pub subjectivity_score: Option<f64>,
    pub toxicity_score: Option<f64>,
    pub entity_recognition: Option<Vec<EntityRef>>,
    pub user_intent: Option<String>,
    pub influence_score: Option<f64>,
    pub processing_version: Option<String>,
    pub ticker: Option<String>,
    pub article_title: Option<String>,
    pub source_url: Option<String>,
    pub model_name: Option<String>,
}

/// Typed, by-name access to the columns of a result.
pub struct Columns {
    batch: RecordBatch,
}

fn shape(column: &str, expected: &str, found: &DataType) -> EngineError {
    EngineError::Shape(format!("column `{column}`: expected {expected}, found {found}"))
}

impl Columns {
    pub fn new(batches: &[RecordBatch]) -> Result<Option<Self>, EngineError> {
        let Some(first) = batches.first() else {
            return Ok(None);
        };
        let batch = arrow_select::concat::concat_batches(&first.schema(), batches).map_err(|e| EngineError::Shape(e.to_string()))?;
        Ok(Some(Columns { batch }))
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    fn column(&self, name: &str) -> Result<&ArrayRef, EngineError> {
        self.batch.column_by_name(name).ok_or_else(|| EngineError::Shape(format!("missing column `{name}`")))
    }

    pub fn opt_str(&self, name: &str, row: usize) -> Result<Option<String>, EngineError> {
        let col = self.column(name)?;
        if col.is_null(row) {
            return Ok(None);
        }
        string_at(col, row).map(Some).ok_or_else(|| shape(name, "a string", col.data_type()))
    }

    pub fn str(&self, name: &str, row: usize) -> Result<String, EngineError> {
        self.opt_str(name, row)?.ok_or_else(|| EngineError::Shape(format!("column `{name}` is null at row {row}")))
    }

    pub fn opt_f64(&self, name: &str, row: usize) -> Result<Option<f64>, EngineError> {
        let col = self.column(name)?;
        if col.is_null(row) {
            return Ok(None);
        }
        float_at(col, row).map(Some).ok_or_else(|| shape(name, "a float", col.data_type()))
    }

    pub fn f64(&self, name: &str, row: usize) -> Result<f64, EngineError> {
        self.opt_f64(name, row)?.ok_or_else(|| EngineError::Shape(format!("column `{name}` is null at row {row}")))
    }

    pub fn i64(&self, name: &str, row: usize) -> Result<i64, EngineError> {
        let col = self.column(name)?;
        match col.data_type() {
            DataType::Int64 if !col.is_null(row) => Ok(col.as_primitive::<Int64Type>().value(row)),
            // SUM over no rows is NULL in SQL; a count of nothing is zero.
            DataType::Int64 => Ok(0),
            other => Err(shape(name, "BIGINT", other)),
        }
    }

    pub fn opt_bool(&self, name: &str, row: usize) -> Result<Option<bool>, EngineError> {
        let col = self.column(name)?;
        match col.data_type() {
            _ if col.is_null(row) => Ok(None),
            DataType::Boolean => Ok(Some(col.as_boolean().value(row))),
            other => Err(shape(name, "BOOLEAN", other)),
        }
    }

    pub fn timestamp(&self, name: &str, row: usize) -> Result<DateTime<Utc>, EngineError> {
        let col = self.column(name)?;
        let micros = match col.data_type() {
            _ if col.is_null(row) => return Err(EngineError::Shape(format!("column `{name}` is null at row {row}"))),
            DataType::Timestamp(TimeUnit::Microsecond, _) => col.as_primitive::<TimestampMicrosecondType>().value(row),
            // Dremio's TIMESTAMP travels as milliseconds without a zone, meaning UTC.
            DataType::Timestamp(TimeUnit::Millisecond, _) => col.as_primitive::<TimestampMillisecondType>().value(row) * 1000,
            other => return Err(shape(name, "a timestamp", other)),
        };
        DateTime::from_timestamp_micros(micros).ok_or_else(|| EngineError::Shape(format!("column `{name}`: timestamp {micros} out of range")))
    }

    /// A `map<string, float>` cell.
    pub fn opt_float_map(&self, name: &str, row: usize) -> Result<Option<BTreeMap<String, f64>>, EngineError> {
        let col = self.column(name)?;
        let DataType::Map(..) = col.data_type() else {
            return Err(shape(name, "a map", col.data_type()));
        };
        if col.is_null(row) {
            return Ok(None);
        }
        let entries = col.as_map().value(row);
        let (keys, values) = (entries.column(0), entries.column(1));
        let mut out = BTreeMap::new();
        for i in 0..entries.len() {
            let key = string_at(keys, i).ok_or_else(|| shape(name, "string keys", keys.data_type()))?;
            let value = float_at(values, i).ok_or_else(|| shape(name, "float values", values.data_type()))?;
            out.insert(key, value);
        }
        Ok(Some(out))
    }

    /// A `list<string>` cell.
    pub fn opt_string_list(&self, name: &str, row: usize) -> Result<Option<Vec<String>>, EngineError> {
        let col = self.column(name)?;
        let DataType::List(_) = col.data_type() else {
            return Err(shape(name, "a list", col.data_type()));
        };
        if col.is_null(row) {
            return Ok(None);
        }
        let items = col.as_list::<i32>().value(row);
        (0..items.len())
            .map(|i| string_at(&items, i).ok_or_else(|| shape(name, "string elements", items.data_type())))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// A `list<struct<text, type>>` cell.
    pub fn opt_entities(&self, name: &str, row: usize) -> Result<Option<Vec<EntityRef>>, EngineError> {
        let col = self.column(name)?;
        let DataType::List(_) = col.data_type() else {
            return Err(shape(name, "a list", col.data_type()));
        };
        if col.is_null(row) {
            return Ok(None);
        }
        let items = col.as_list::<i32>().value(row);
        let DataType::Struct(_) = items.data_type() else {
            return Err(shape(name, "struct elements", items.data_type()));
        };
        let structs = items.as_struct();
        let text = structs.column_by_name(crate::schema::ENTITY_TEXT).ok_or_else(|| shape(name, "a `text` member", items.data_type()))?;
        let kind = structs.column_by_name(crate::schema::ENTITY_TYPE).ok_or_else(|| shape(name, "a `type` member", items.data_type()))?;
        let mut out = Vec::with_capacity(structs.len());
        for i in 0..structs.len() {
            out.push(EntityRef {
                text: string_at(text, i).ok_or_else(|| shape(name, "string `text`", text.data_type()))?,
                entity_type: string_at(kind, i).ok_or_else(|| shape(name, "string `type`", kind.data_type()))?,
            });
        }
        Ok(Some(out))
    }
}

fn string_at(col: &ArrayRef, row: usize) -> Option<String> {
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(col.as_string_view().value(row).to_string()),
        _ => None,
    }
}

/// Every number the API computes derives from the table's 32-bit `float` columns (scores, magnitudes,
/// intensities, and means of them), so it is presented at that precision: the shortest decimal that
/// round-trips through a 32-bit float. A stored 0.61 reads as 0.61, not as its exact binary value
/// 0.6100000143051147; a mean keeps the ~7 significant digits its inputs have.
pub fn at_float32_precision(value: f64) -> f64 {
    let narrowed = value as f32;
    if !narrowed.is_finite() {
        return value;
    }
    narrowed.to_string().parse().unwrap_or(value)
}

fn float_at(col: &ArrayRef, row: usize) -> Option<f64> {
    let value = match col.data_type() {
        DataType::Float64 => col.as_primitive::<Float64Type>().value(row),
        DataType::Float32 => f64::from(col.as_primitive::<Float32Type>().value(row)),
        _ => return None,
    };
    Some(at_float32_precision(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_at_their_stored_precision() {
        assert_eq!(at_float32_precision(f64::from(0.61f32)), 0.61);
        assert_eq!(at_float32_precision(f64::from(-0.55f32)), -0.55);
        assert_eq!(at_float32_precision((f64::from(0.61f32) + f64::from(0.62f32)) / 2.0), 0.615);
        assert_eq!(at_float32_precision(1.0 / 3.0), 0.33333334);
        assert_eq!(at_float32_precision(0.0), 0.0);
    }

    #[test]
    fn labels_follow_alpha_vantage_bands() {
        let cases = [
            (-0.35, "Bearish"),
            (-0.2, "Somewhat-Bearish"),
            (-0.15, "Somewhat-Bearish"),
            (-0.1, "Neutral"),
            (0.149, "Neutral"),
            (0.15, "Somewhat-Bullish"),
            (0.35, "Bullish"),
        ];
        for (score, expected) in cases {
            assert_eq!(label(score), expected, "{score}");
        }
    }
}
