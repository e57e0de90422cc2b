//! Answers computed straight from the events a test ingested (plain loops over JSON, no SQL, no engine), to
//! check the query API's numbers against, plus a tolerant comparison of JSON documents.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, DurationRound, Utc};
use serde_json::{json, Value};

/// The stored form of a score: the table keeps 32-bit floats.
fn f32_of(v: &Value) -> Option<f32> {
    v.as_f64().map(|x| x as f32)
}

/// How the API presents a number derived from 32-bit float columns: the shortest decimal that round-trips
/// through a 32-bit float (0.61, not 0.6100000143051147).
pub fn present(x: f64) -> f64 {
    (x as f32).to_string().parse().unwrap()
}

fn mean(values: &[f64]) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        json!(present(values.iter().sum::<f64>() / values.len() as f64))
    }
}

fn mean_f64(values: &[f64]) -> f64 {
    present(values.iter().sum::<f64>() / values.len() as f64)
}

/// Polarity in the table's precision: positive above 0.05 (as a 32-bit float), negative below -0.05.
fn polarity(score: f32) -> i8 {
    if score > 0.05f32 {
        1
    } else if score < -0.05f32 {
        -1
    } else {
        0
    }
}

fn label(score: f64) -> &'static str {
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

pub fn at(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["event_timestamp"].as_str().unwrap()).unwrap().with_timezone(&Utc)
}

fn score(event: &Value) -> f32 {
    f32_of(&event["sentiment_score"]).unwrap()
}

/// Events in `[from, to)`, optionally of one ticker.
pub fn select<'a>(events: &'a [Value], from: DateTime<Utc>, to: DateTime<Utc>, ticker: Option<&str>) -> Vec<&'a Value> {
    events.iter().filter(|e| at(e) >= from && at(e) < to && ticker.is_none_or(|t| e["ticker"].as_str() == Some(t))).collect()
}

struct Stats {
    scores: Vec<f64>,
    magnitudes: Vec<f64>,
    polarity: [i64; 3],
}

fn stats(events: &[&Value]) -> Stats {
    let mut s = Stats { scores: Vec::new(), magnitudes: Vec::new(), polarity: [0; 3] };
    for e in events {
        let sc = score(e);
        s.scores.push(f64::from(sc));
        if let Some(m) = f32_of(&e["sentiment_magnitude"]) {
            s.magnitudes.push(f64::from(m));
        }
        s.polarity[(polarity(sc) + 1) as usize] += 1;
    }
    s
}

pub fn bucket(t: DateTime<Utc>, interval: &str) -> DateTime<Utc> {
    match interval {
        "minute" => t.duration_trunc(Duration::minutes(1)).unwrap(),
        "hour" => t.duration_trunc(Duration::hours(1)).unwrap(),
        "day" => t.duration_trunc(Duration::days(1)).unwrap(),
        "week" => {
            let day = t.duration_trunc(Duration::days(1)).unwrap();
            day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
        }
        other => panic!("interval {other}"),
    }
}

pub fn timeseries(events: &[&Value], interval: &str) -> Value {
    let mut buckets: BTreeMap<DateTime<Utc>, Vec<&Value>> = BTreeMap::new();
    for e in events {
        buckets.entry(bucket(at(e), interval)).or_default().push(e);
    }
    let rows: Vec<Value> = buckets
        .into_iter()
        .map(|(start, rows)| {
            let s = stats(&rows);
            let avg = mean_f64(&s.scores);
            let start = start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            json!({
                "bucket_start": start,
                "time_bucket": start,
                "message_count": rows.len(),
                "average_score": avg,
                "avg_sentiment": avg,
                "min_score": present(s.scores.iter().cloned().fold(f64::INFINITY, f64::min)),
                "max_score": present(s.scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max)),
                "average_magnitude": mean(&s.magnitudes),
                "positive": s.polarity[2], "negative": s.polarity[0], "neutral": s.polarity[1],
                "label": label(avg),
            })
        })
        .collect();
    json!(rows)
}

pub fn top_tickers(events: &[&Value], limit: usize) -> Value {
    let mut by: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in events {
        if let Some(t) = e["ticker"].as_str() {
            by.entry(t.to_string()).or_default().push(e);
        }
    }
    let mut rows: Vec<(String, Vec<&Value>)> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    json!(rows
        .into_iter()
        .take(limit)
        .map(|(ticker, rows)| {
            let s = stats(&rows);
            let n = rows.len() as f64;
            let avg = mean_f64(&s.scores);
            json!({
                "ticker": ticker, "message_count": rows.len(), "average_score": avg, "avg_sentiment": avg,
                "positive": s.polarity[2], "negative": s.polarity[0], "neutral": s.polarity[1],
                "bullish_share": s.polarity[2] as f64 / n, "bearish_share": s.polarity[0] as f64 / n,
                "label": label(avg),
            })
        })
        .collect::<Vec<_>>())
}

pub fn summary(events: &[&Value], ticker: &str) -> Value {
    let s = stats(events);
    let mut emotions: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut primary: BTreeMap<String, i64> = BTreeMap::new();
    for e in events {
        for (k, v) in e["emotion_intensity_vector"].as_object().into_iter().flatten() {
            emotions.entry(k.clone()).or_default().push(f64::from(f32_of(v).unwrap()));
        }
        if let Some(p) = e["primary_emotion"].as_str() {
            *primary.entry(p.to_string()).or_default() += 1;
        }
    }
    let mut emotions: Vec<(String, f64, usize)> = emotions.into_iter().map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64, v.len())).collect();
    // Ordered by the engine's exact means, then presented.
    let emotions: Vec<(String, f64, usize)> = {
        emotions.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        emotions.into_iter().map(|(k, a, n)| (k, present(a), n)).collect()
    };
    let mut primary: Vec<(String, i64)> = primary.into_iter().collect();
    primary.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let avg = mean(&s.scores);
    json!({
        "ticker": ticker,
        "message_count": events.len(),
        "average_score": avg,
        "average_magnitude": mean(&s.magnitudes),
        "positive": s.polarity[2], "negative": s.polarity[0], "neutral": s.polarity[1],
        "label": avg.as_f64().map(label),
        "emotions": emotions.into_iter().map(|(e, a, n)| json!({"emotion": e, "average_intensity": a, "records": n})).collect::<Vec<_>>(),
        "primary_emotions": primary.into_iter().map(|(e, n)| json!({"emotion": e, "count": n})).collect::<Vec<_>>(),
    })
}

pub fn entities(events: &[&Value], entity_type: Option<&str>, limit: usize) -> Value {
    let mut by: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for e in events {
        for ent in e["entity_recognition"].as_array().into_iter().flatten() {
            let (text, kind) = (ent["text"].as_str().unwrap().to_string(), ent["type"].as_str().unwrap().to_string());
            if entity_type.is_none_or(|t| t == kind) {
                by.entry((text, kind)).or_default().push(f64::from(score(e)));
            }
        }
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    json!(rows
        .into_iter()
        .take(limit)
        .map(|((text, kind), scores)| json!({"entity": text, "entity_type": kind, "mentions": scores.len(), "average_score": mean_f64(&scores)}))
        .collect::<Vec<_>>())
}

pub fn aspects(events: &[&Value]) -> Value {
    let mut by: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for e in events {
        for (k, v) in e["aspect_based_sentiment"].as_object().into_iter().flatten() {
            by.entry(k.clone()).or_default().push(f32_of(v).unwrap());
        }
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    json!(rows
        .into_iter()
        .map(|(aspect, v)| json!({
            "aspect": aspect, "mentions": v.len(),
            "average_sentiment": mean_f64(&v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>()),
            "positive": v.iter().filter(|x| polarity(**x) == 1).count(),
            "negative": v.iter().filter(|x| polarity(**x) == -1).count(),
        }))
        .collect::<Vec<_>>())
}

pub fn toxicity(events: &[&Value], min_toxicity: f64, limit: usize) -> Value {
    let threshold = min_toxicity as f32;
    let scored: Vec<(&Value, f32)> = events.iter().filter_map(|e| f32_of(&e["toxicity_score"]).map(|t| (*e, t))).collect();
    let mut flagged: Vec<(&Value, f32)> = scored.iter().filter(|(_, t)| *t >= threshold).cloned().collect();
    flagged
        .sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(at(b.0).cmp(&at(a.0))).then(a.0["message_id"].as_str().cmp(&b.0["message_id"].as_str())));
    let values: Vec<f64> = scored.iter().map(|(_, t)| f64::from(*t)).collect();
    json!({
        "min_toxicity": min_toxicity,
        "scored": scored.len(),
        "flagged": flagged.len(),
        "average_toxicity": mean(&values),
        "messages": flagged.iter().take(limit).map(|(e, t)| json!({
            "message_id": e["message_id"], "event_timestamp": at(e).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            "ticker": e["ticker"], "source_system": e["source_system"], "toxicity_score": present(f64::from(*t)), "text_content": e["text_content"],
        })).collect::<Vec<_>>(),
    })
}

pub fn intents(events: &[&Value]) -> Value {
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for e in events {
        if let Some(i) = e["user_intent"].as_str() {
            by.entry(i.to_string()).or_default().push(f64::from(score(e)));
        }
    }
    let total: usize = by.values().map(Vec::len).sum();
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    json!(rows
        .into_iter()
        .map(|(intent, s)| json!({"intent": intent, "count": s.len(), "share": s.len() as f64 / total as f64, "average_score": mean_f64(&s)}))
        .collect::<Vec<_>>())
}

/// Message ids in the records endpoint's order: newest first, then message id descending.
pub fn record_ids(events: &[&Value]) -> Vec<String> {
    let mut rows: Vec<&&Value> = events.iter().collect();
    rows.sort_by(|a, b| at(b).cmp(&at(a)).then(b["message_id"].as_str().cmp(&a["message_id"].as_str())));
    rows.iter().map(|e| e["message_id"].as_str().unwrap().to_string()).collect()
}

/// Asserts two JSON documents are equal, numbers to within 1e-9 (sums in another order differ in the last
/// bits) and timestamps as instants (`…00Z` and `…00.000Z` are the same time).
pub fn assert_close(path: &str, actual: &Value, expected: &Value) {
    compare(path, actual, expected, false, 1e-9)
}

/// Like [`assert_close`], but objects in `actual` may have fields `expected` does not mention (another
/// engine's answer has only the measures, not the API's derived labels and shares), and numbers agree to a
/// 32-bit float's precision (the API presents them at it, another engine at full double precision).
pub fn assert_close_on_shared_fields(path: &str, actual: &Value, expected: &Value) {
    compare(path, actual, expected, true, 2e-7)
}

fn compare(path: &str, actual: &Value, expected: &Value, subset: bool, tolerance: f64) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "{path}: {a} != {b}");
        }
        (Value::String(a), Value::String(b)) if a != b => {
            let (x, y) = (DateTime::parse_from_rfc3339(a), DateTime::parse_from_rfc3339(b));
            assert!(x.is_ok() && x == y, "{path}: {a:?} != {b:?}");
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: {} items, expected {}\nactual {actual}\nexpected {expected}", a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                compare(&format!("{path}[{i}]"), x, y, subset, tolerance);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            if subset {
                assert!(kb.iter().all(|k| a.contains_key(*k)), "{path}: {kb:?} not all in {ka:?}");
            } else {
                assert_eq!(ka, kb, "{path}: keys differ");
            }
            for (k, y) in b {
                compare(&format!("{path}.{k}"), &a[k], y, subset, tolerance);
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}
