//! Answers from partial aggregates: the same numbers, order and limits as the SQL in [`super::plan`],
//! computed from rollup rows and raw rows merged ([`crate::rollup::Partials`]).
//!
//! Partials come in pieces of any grain (the engine reads whole days, hours and minutes of the rollup and
//! the rest as raw rows); every piece lies inside one bucket of any answer interval, so a row's period
//! start says which bucket it counts in. Means are exact sums (each score taken in exactly) divided once,
//! then presented at 32-bit precision like every other number of the API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::answer::*;
use super::question::{limits, Query};
use crate::engine::{EngineError, Interval};
use crate::rollup::exact::{FixedSum, ScoreSum};
use crate::rollup::{Detail, Dimension, Grain, Measures, Partials};

/// The coarsest rollup grain an answer to `query` can use: its interval for a time series (a week is
/// whole days), days otherwise.
pub fn coarsest(query: &Query) -> Grain {
    match query {
        Query::TimeSeries { interval: Interval::Minute, .. } => Grain::Minute,
        Query::TimeSeries { interval: Interval::Hour, .. } => Grain::Hour,
        _ => Grain::Day,
    }
}

/// Whether answers for `query` can come from partial aggregates (records and toxicity need raw rows).
pub fn foldable(query: &Query) -> bool {
    !matches!(query, Query::Records { .. } | Query::Toxicity { .. })
}

/// What an answer for `query` reads from partials: the dimensions, and the ticker rows must have (none:
/// every ticker).
pub fn needs(query: &Query) -> (Vec<Dimension>, Option<String>) {
    let ticker = |t: &super::params::Ticker| Some(t.as_str().to_string());
    match query {
        Query::TimeSeries { ticker: t, .. } | Query::Summary { ticker: t, .. } => (vec![Dimension::Message], ticker(t)),
        Query::TopTickers { .. } => (vec![Dimension::Message], None),
        Query::Aspects { ticker: t, .. } => (vec![Dimension::Aspect], ticker(t)),
        Query::Entities { ticker: t, .. } => (vec![Dimension::Entity], t.as_ref().and_then(ticker)),
        Query::Intents { ticker: t, .. } => (vec![Dimension::Intent], t.as_ref().and_then(ticker)),
        Query::Records { .. } | Query::Toxicity { .. } => (Vec::new(), None),
    }
}

/// What of a rollup row the answer to `query` reads ([`fold`] uses nothing else).
pub fn detail(query: &Query) -> Detail {
    Detail {
        periods: matches!(query, Query::TimeSeries { .. }),
        tickers: matches!(query, Query::TopTickers { .. }),
        sources: false,
        emotions: matches!(query, Query::Summary { .. }),
    }
}

/// The answer to `query` from `partials`, which must hold exactly the rows of its window (and ticker, for
/// queries of one ticker) in the dimensions [`needs`] names.
pub fn fold(query: &Query, partials: &Partials) -> Result<Value, EngineError> {
    let value = match query {
        Query::TimeSeries { interval, .. } => time_series(*interval, partials).and_then(to_value),
        Query::TopTickers { limit, .. } => to_value(top_tickers(*limit, partials)),
        Query::Summary { ticker, .. } => to_value(summary(ticker.as_str(), partials)),
        Query::Entities { entity_type, limit, .. } => to_value(entities(entity_type.as_ref().map(|t| t.as_str()), *limit, partials)),
        Query::Aspects { limit, .. } => to_value(aspects(*limit, partials)),
        Query::Intents { limit, .. } => to_value(intents(*limit, partials)),
        Query::Records { .. } | Query::Toxicity { .. } => {
            return Err(EngineError::Query("records and toxicity are answered from raw rows only".into()))
        }
    };
    value.map_err(|e| EngineError::Shape(e.to_string()))
}

fn to_value<T: serde::Serialize>(value: T) -> serde_json::Result<Value> {
    serde_json::to_value(value)
}

/// `sum / count` presented as every mean of the API is.
fn mean<const FRAC_BITS: u32>(sum: FixedSum<FRAC_BITS>, count: i64) -> f64 {
    at_float32_precision(sum.mean(count).unwrap_or(0.0))
}

fn messages(partials: &Partials) -> impl Iterator<Item = (&crate::rollup::RowKey, &Measures)> {
    partials.rows.iter().filter(|(k, _)| k.dimension == Dimension::Message)
}

fn bucket_start(interval: Interval, at: i64) -> i64 {
    const MINUTE: i64 = 60_000_000;
    const DAY: i64 = 24 * 60 * MINUTE;
    match interval {
        Interval::Minute => at.div_euclid(MINUTE) * MINUTE,
        Interval::Hour => at.div_euclid(60 * MINUTE) * 60 * MINUTE,
        Interval::Day => at.div_euclid(DAY) * DAY,
        // 1970-01-01 was a Thursday: weeks start on the Monday three days before it.
        Interval::Week => (at + 3 * DAY).div_euclid(7 * DAY) * 7 * DAY - 3 * DAY,
    }
}

fn timestamp(micros: i64) -> Result<DateTime<Utc>, serde_json::Error> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| serde::ser::Error::custom(format!("timestamp {micros} out of range")))
}

fn time_series(interval: Interval, partials: &Partials) -> serde_json::Result<Vec<TimeSeriesPoint>> {
    let mut buckets: BTreeMap<i64, Measures> = BTreeMap::new();
    for (key, measures) in messages(partials) {
        buckets.entry(bucket_start(interval, key.period_start)).or_default().merge(measures);
    }
    buckets
        .into_iter()
        .filter(|(_, m)| m.count > 0)
        .map(|(start, m)| {
            let average_score = mean(m.score_sum, m.count);
            let bucket_start = timestamp(start)?;
            Ok(TimeSeriesPoint {
                bucket_start,
                time_bucket: bucket_start,
                message_count: m.count,
                average_score,
                avg_sentiment: average_score,
                min_score: m.score_min.map_or(0.0, |v| at_float32_precision(f64::from(v.0))),
                max_score: m.score_max.map_or(0.0, |v| at_float32_precision(f64::from(v.0))),
                average_magnitude: (m.magnitude_count > 0).then(|| mean(m.magnitude_sum, m.magnitude_count)),
                positive: m.positive,
                negative: m.negative,
                neutral: m.neutral,
                label: label(average_score),
            })
        })
        .collect()
}

fn top_tickers(limit: u32, partials: &Partials) -> Vec<TickerVolume> {
    let mut tickers: BTreeMap<&str, Measures> = BTreeMap::new();
    for (key, measures) in messages(partials) {
        if let Some(ticker) = key.ticker.as_deref() {
            tickers.entry(ticker).or_default().merge(measures);
        }
    }
    let mut rows: Vec<(&str, Measures)> = tickers.into_iter().filter(|(_, m)| m.count > 0).collect();
    rows.sort_by(|(a, ma), (b, mb)| mb.count.cmp(&ma.count).then(a.cmp(b)));
    rows.truncate(limit as usize);
    rows.into_iter()
        .map(|(ticker, m)| {
            let average_score = mean(m.score_sum, m.count);
            TickerVolume {
                ticker: ticker.to_string(),
                message_count: m.count,
                average_score,
                avg_sentiment: average_score,
                positive: m.positive,
                negative: m.negative,
                neutral: m.neutral,
                bullish_share: m.positive as f64 / m.count as f64,
                bearish_share: m.negative as f64 / m.count as f64,
                label: label(average_score),
            }
        })
        .collect()
}

fn summary(ticker: &str, partials: &Partials) -> SentimentSummary {
    let mut total = Measures::default();
    for (_, measures) in messages(partials) {
        total.merge(measures);
    }
    let mut emotions: Vec<(&String, &(i64, ScoreSum))> = total.emotions.iter().filter(|(_, (count, _))| *count > 0).collect();
    emotions.sort_by(|(a, (ca, sa)), (b, (cb, sb))| sb.cmp_means(*cb, *sa, *ca).then(a.cmp(b)));
    emotions.truncate(limits::MAX_EMOTIONS as usize);
    let mut primary: Vec<(&String, &i64)> = total.primary_emotions.iter().filter(|(_, count)| **count > 0).collect();
    primary.sort_by(|(a, ca), (b, cb)| cb.cmp(ca).then(a.cmp(b)));
    primary.truncate(limits::MAX_EMOTIONS as usize);
    let average_score = (total.count > 0).then(|| mean(total.score_sum, total.count));
    SentimentSummary {
        ticker: ticker.to_string(),
        message_count: total.count,
        average_score,
        average_magnitude: (total.magnitude_count > 0).then(|| mean(total.magnitude_sum, total.magnitude_count)),
        positive: total.positive,
        negative: total.negative,
        neutral: total.neutral,
        label: average_score.map(label),
        emotions: emotions
            .into_iter()
            .map(|(emotion, (count, sum))| EmotionIntensity { emotion: emotion.clone(), average_intensity: mean(*sum, *count), records: *count })
            .collect(),
        primary_emotions: primary.into_iter().map(|(emotion, count)| EmotionCount { emotion: emotion.clone(), count: *count }).collect(),
    }
}

/// The rows of `dimension` merged by name (and kind), busiest first, then by name (and kind).
fn by_name(partials: &Partials, dimension: Dimension, keep: impl Fn(Option<&str>) -> bool, limit: u32) -> Vec<((String, String), Measures)> {
    let mut named: BTreeMap<(&str, &str), Measures> = BTreeMap::new();
    for (key, measures) in partials.rows.iter().filter(|(k, _)| k.dimension == dimension) {
        if let Some(name) = key.name.as_deref().filter(|_| keep(key.kind.as_deref())) {
            named.entry((name, key.kind.as_deref().unwrap_or(""))).or_default().merge(measures);
        }
    }
    let mut rows: Vec<_> = named.into_iter().filter(|(_, m)| m.count > 0).collect();
    rows.sort_by(|(a, ma), (b, mb)| mb.count.cmp(&ma.count).then(a.cmp(b)));
    rows.truncate(limit as usize);
    rows.into_iter().map(|((name, kind), m)| ((name.to_string(), kind.to_string()), m)).collect()
}

fn entities(entity_type: Option<&str>, limit: u32, partials: &Partials) -> Vec<EntitySentiment> {
    by_name(partials, Dimension::Entity, |kind| entity_type.is_none_or(|t| kind == Some(t)), limit)
        .into_iter()
        .map(|((entity, entity_type), m)| EntitySentiment { entity, entity_type, mentions: m.count, average_score: mean(m.score_sum, m.count) })
        .collect()
}

fn aspects(limit: u32, partials: &Partials) -> Vec<AspectSentiment> {
    by_name(partials, Dimension::Aspect, |_| true, limit)
        .into_iter()
        .map(|((aspect, _), m)| AspectSentiment {
            aspect,
            mentions: m.count,
            average_sentiment: mean(m.score_sum, m.count),
            positive: m.positive,
            negative: m.negative,
        })
        .collect()
}

fn intents(limit: u32, partials: &Partials) -> Vec<IntentShare> {
    let total: i64 = partials.rows.iter().filter(|(k, _)| k.dimension == Dimension::Intent && k.name.is_some()).map(|(_, m)| m.count).sum();
    by_name(partials, Dimension::Intent, |_| true, limit)
        .into_iter()
        .map(|((intent, _), m)| IntentShare {
            intent,
            count: m.count,
            share: m.count as f64 / total.max(1) as f64,
            average_score: mean(m.score_sum, m.count),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-07 is a Monday.
        let monday = chrono::DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z").unwrap().timestamp_micros();
        let sunday_night = monday + 7 * 86_400_000_000 - 1;
        assert_eq!(bucket_start(Interval::Week, sunday_night), monday);
        assert_eq!(bucket_start(Interval::Week, monday - 1), monday - 7 * 86_400_000_000);
    }
}
