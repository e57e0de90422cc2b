//! Field rules: [`RawRecord`] -> [`SentimentRecord`], or every rule the record breaks.
//!
//! All rules live here (not in the schema or the writer) so a rejection always names the field and the rule.
//! Beyond the seed's types and required flags, a rule exists only where a producer would accept its reason:
//! scores on a documented scale (`sentiment_score` in [-1, 1] as VADER's compound and the API's labels;
//! probabilities and intensities in [0, 1]), magnitudes and weights non-negative, timestamps that can be
//! partitioned, sizes that bound memory. Normalisation that makes partition values and filters stable also
//! happens here: `ticker` is upper-cased without a leading `$`, `source_system` lower-cased, timestamps
//! converted to UTC microseconds.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::schema::{column as c, normalize_ticker, Entity, FloatMap, RawEntity, RawFloatMap, RawRecord, SentimentRecord, Text, MAX_TICKER_LEN};

pub const MAX_ID_LEN: usize = 256;
/// Event Hubs refuses events over 1 MB, so no event it delivers is refused for its text; migrated rows are
/// held to the same bound.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
pub const MAX_SHORT_LEN: usize = 64;
pub const MAX_TITLE_LEN: usize = 1024;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_LABEL_LEN: usize = 128;
pub const MAX_ITEMS: usize = 128;
/// Producers' clocks drift; beyond a day ahead of when the event was enqueued a timestamp is a bug, not skew.
pub const MAX_FUTURE_SKEW: Duration = Duration::days(1);
/// `processing_version` of records whose producer did not say (the seed's writer filled defaults too).
pub const DEFAULT_PROCESSING_VERSION: &str = "unversioned";

/// The required columns that hold analysis output: a record missing only these is *incomplete* (it can be
/// enriched) rather than invalid.
pub const REQUIRED_ANALYSIS_FIELDS: [&str; 7] =
    [c::SENTIMENT_SCORE, c::SENTIMENT_MAGNITUDE, c::PRIMARY_EMOTION, c::SARCASM_DETECTION, c::SUBJECTIVITY_SCORE, c::TOXICITY_SCORE, c::USER_INTENT];

/// The rule a field broke. The `Display` form is stable and stored in the dead-letter table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Required,
    NotEmpty,
    MaxLength(usize),
    MaxItems(usize),
    Range { min: f32, max: f32 },
    AtLeast(f32),
    Rfc3339,
    TimeWindow,
    Pattern(&'static str),
    HttpUrl,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Required => write!(f, "required"),
            Rule::NotEmpty => write!(f, "not_empty"),
            Rule::MaxLength(n) => write!(f, "max_length({n})"),
            Rule::MaxItems(n) => write!(f, "max_items({n})"),
            Rule::Range { min, max } => write!(f, "range[{min},{max}]"),
            Rule::AtLeast(min) => write!(f, "at_least({min})"),
            Rule::Rfc3339 => write!(f, "rfc3339_with_offset"),
            Rule::TimeWindow => write!(f, "time_window"),
            Rule::Pattern(p) => write!(f, "pattern({p})"),
            Rule::HttpUrl => write!(f, "http_url"),
        }
    }
}

/// One broken rule on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub field: String,
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` breaks rule `{}`: {}", self.field, self.rule, self.detail)
    }
}

/// Every rule a record breaks, in schema order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidationError {
    pub violations: Vec<Violation>,
}

impl ValidationError {
    /// True when the record is only missing analysis output (it could be enriched rather than refused).
    pub fn is_incomplete(&self) -> bool {
        self.violations.iter().all(|v| v.rule == Rule::Required && REQUIRED_ANALYSIS_FIELDS.contains(&v.field.as_str()))
    }
}

struct Checker {
    /// When the event entered the stream: time-window rules are relative to it, so a redelivery is judged
    /// exactly like the first delivery.
    enqueued_at: DateTime<Utc>,
    violations: Vec<Violation>,
}

/// Sorts `entries` by key and keeps, of equal keys, the one that came last.
fn last_per_key<K: Ord, V>(entries: &mut Vec<(K, V)>) {
    entries.reverse();
    // Stable: of equal keys, the last in the body is now first, and `dedup_by` keeps the first.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, kept| later.0 == kept.0);
}

/// Whether trimming could change `value`: its first or last byte is whitespace or not ASCII.
fn may_need_trim(value: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_whitespace() || !b.is_ascii());
    edge(value.as_bytes().first()) || edge(value.as_bytes().last())
}

/// `value` trimmed, still borrowed from the body when it was.
fn trimmed(value: Text<'_>) -> Cow<'_, str> {
    if !may_need_trim(&value) {
        return value.into_cow();
    }
    match value.into_cow() {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// `value` lower-cased, copied only when that changes it.
fn lowercase(value: Cow<'_, str>) -> Cow<'_, str> {
    if !value.is_ascii() {
        Cow::Owned(value.to_lowercase())
    } else if value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        value
    }
}

/// `value` upper-cased (ASCII), copied only when that changes it.
fn ascii_uppercase(value: Cow<'_, str>) -> Cow<'_, str> {
    if value.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(value.to_ascii_uppercase())
    } else {
        value
    }
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, rule: Rule, detail: impl Into<String>) {
        self.violations.push(Violation { field: field.into(), rule, detail: detail.into() });
    }

    fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.fail(field, Rule::Required, "missing or null");
        }
        value
    }

    /// Trims, then checks non-empty and a character limit.
    fn text<'a>(&mut self, field: &str, value: Option<Text<'a>>, max_chars: usize) -> Option<Cow<'a, str>> {
        self.text_at(value?, max_chars, |_| field.to_string())
    }

    /// [`Checker::text`] of an element (a map key, a list item), whose path `path` builds from the value
    /// only when it breaks a rule: valid records format no paths.
    fn text_at<'a>(&mut self, value: Text<'a>, max_chars: usize, path: impl FnOnce(&str) -> String) -> Option<Cow<'a, str>> {
        let content = if may_need_trim(&value) { value.trim() } else { &value };
        if content.is_empty() {
            self.fail(path(&value), Rule::NotEmpty, "empty or only whitespace");
            return None;
        }
        // A string has at most as many characters as bytes: long texts are counted only when they might
        // exceed the bound.
        let chars = if content.len() <= max_chars { 0 } else { content.chars().count() };
        if chars > max_chars {
            self.fail(path(&value), Rule::MaxLength(max_chars), format!("{chars} characters"));
            return None;
        }
        Some(trimmed(value))
    }

    fn score(&mut self, field: &str, value: Option<f64>, min: f32, max: f32) -> Option<f32> {
        self.score_at(value?, min, max, || field.to_string())
    }

    fn score_at(&mut self, value: f64, min: f32, max: f32, path: impl FnOnce() -> String) -> Option<f32> {
        if !value.is_finite() || value < f64::from(min) || value > f64::from(max) {
            self.fail(path(), Rule::Range { min, max }, format!("{value} is outside [{min}, {max}]"));
            return None;
        }
        Some(value as f32)
    }

    /// A non-negative quantity with no upper bound (a magnitude grows with the text's length), which must
    /// still be a finite 32-bit float.
    fn at_least(&mut self, field: &str, value: Option<f64>, min: f32) -> Option<f32> {
        let value = value?;
        let narrowed = value as f32;
        if !narrowed.is_finite() || value < f64::from(min) {
            self.fail(field, Rule::AtLeast(min), format!("{value} is not a finite float >= {min}"));
            return None;
        }
        Some(narrowed)
    }

    fn timestamp(&mut self, field: &str, value: Option<Text<'_>>) -> Option<DateTime<Utc>> {
        let value = value?;
        let parsed = match DateTime::parse_from_rfc3339(value.trim()) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                self.fail(field, Rule::Rfc3339, format!("{:?} is not RFC 3339 with an offset ({e})", &*value));
                return None;
            }
        };
        let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("valid date");
        if parsed < earliest || parsed > self.enqueued_at + MAX_FUTURE_SKEW {
            self.fail(
                field,
                Rule::TimeWindow,
                format!("{parsed} is before 2000 or more than a day after the event was enqueued ({})", self.enqueued_at),
            );
            return None;
        }
        // Iceberg timestamptz is microseconds; truncating here keeps equality checks exact downstream.
        DateTime::from_timestamp_micros(parsed.timestamp_micros())
    }

    /// Entries in key order, each key once with the value the body gave it last (what a JSON object
    /// means); keys trimmed, entries checked.
    fn float_map<'a>(&mut self, field: &str, value: Option<RawFloatMap<'a>>, min: f32) -> Option<FloatMap<'a>> {
        let mut entries = value?.0;
        if entries.len() > MAX_ITEMS {
            self.fail(field, Rule::MaxItems(MAX_ITEMS), format!("{} entries", entries.len()));
            return None;
        }
        last_per_key(&mut entries);
        let mut out: FloatMap<'a> = Vec::with_capacity(entries.len());
        let mut rekeyed = false;
        for (key, v) in entries {
            let sent_len = key.len();
            let Some(key) = self.text_at(key, MAX_LABEL_LEN, |key| format!("{field}[{key:?}]")) else {
                continue;
            };
            rekeyed |= key.len() != sent_len;
            if let Some(v) = self.score_at(v, min, 1.0, || format!("{field}[{key:?}]")) {
                out.push((key, v));
            }
        }
        if rekeyed {
            // Trimming can reorder keys or make two equal: the later one wins, as in the body.
            last_per_key(&mut out);
        }
        Some(out)
    }

    fn labels<'a>(&mut self, field: &str, value: Option<Vec<Text<'a>>>) -> Option<Vec<Cow<'a, str>>> {
        let value = value?;
        if value.len() > MAX_ITEMS {
            self.fail(field, Rule::MaxItems(MAX_ITEMS), format!("{} items", value.len()));
            return None;
        }
        Some(value.into_iter().enumerate().filter_map(|(i, s)| self.text_at(s, MAX_LABEL_LEN, |_| format!("{field}[{i}]"))).collect())
    }

    fn entities<'a>(&mut self, value: Option<Vec<RawEntity<'a>>>) -> Option<Vec<Entity<'a>>> {
        let field = c::ENTITY_RECOGNITION;
        let value = value?;
        if value.len() > MAX_ITEMS {
            self.fail(field, Rule::MaxItems(MAX_ITEMS), format!("{} items", value.len()));
            return None;
        }
        let mut out = Vec::with_capacity(value.len());
        for (i, e) in value.into_iter().enumerate() {
            let text = self.text_at(e.text, MAX_TITLE_LEN, |_| format!("{field}[{i}].text"));
            let kind = self.text_at(e.entity_type, MAX_SHORT_LEN, |_| format!("{field}[{i}].type"));
            if let (Some(text), Some(kind)) = (text, kind) {
                out.push(Entity { text, entity_type: ascii_uppercase(kind) });
            }
        }
        Some(out)
    }

    /// Lower-cased so that `Twitter` and `twitter` are one partition and one filter value. Any printable
    /// text is a source: data file paths escape partition values, so no value is dangerous.
    fn source_system<'a>(&mut self, value: Option<Text<'a>>) -> Option<Cow<'a, str>> {
        let value = lowercase(self.text(c::SOURCE_SYSTEM, value, MAX_SHORT_LEN)?);
        if value.chars().any(char::is_control) {
            self.fail(c::SOURCE_SYSTEM, Rule::Pattern("no control characters"), format!("{value:?}"));
            return None;
        }
        Some(value)
    }

    fn ticker<'a>(&mut self, value: Option<Text<'a>>) -> Option<Cow<'a, str>> {
        let value = self.text(c::TICKER, value, MAX_TICKER_LEN + 1)?;
        let normalized = match &value {
            Cow::Borrowed(borrowed) => normalize_ticker(borrowed),
            Cow::Owned(owned) => normalize_ticker(owned).map(|ticker| Cow::Owned(ticker.into_owned())),
        };
        if normalized.is_none() {
            self.fail(c::TICKER, Rule::Pattern("$?[A-Z0-9][A-Z0-9./:-]*"), format!("{:?}", value.trim_start_matches('$').to_ascii_uppercase()));
        }
        normalized
    }

    fn url<'a>(&mut self, value: Option<Text<'a>>) -> Option<Cow<'a, str>> {
        let value = self.text(c::SOURCE_URL, value, MAX_URL_LEN)?;
        match url::Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(value),
            _ => {
                self.fail(c::SOURCE_URL, Rule::HttpUrl, format!("{:?} is not an absolute http(s) URL", &*value));
                None
            }
        }
    }
}

/// Checks every rule and returns the normalised record, or all the violations.
///
/// `enqueued_at` is when the event entered its stream (Event Hubs' enqueued time): timestamps are judged
/// against it, never against the wall clock, so the same event gets the same verdict on every delivery.
/// `now` only fills a missing `ingestion_timestamp`.
pub fn validate<'a>(raw: RawRecord<'a>, enqueued_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<SentimentRecord<'a>, ValidationError> {
    let mut ck = Checker { enqueued_at, violations: Vec::new() };
    let message_id = ck.required(c::MESSAGE_ID, raw.message_id);
    let message_id = ck.text(c::MESSAGE_ID, message_id, MAX_ID_LEN);
    let event_timestamp = ck.required(c::EVENT_TIMESTAMP, raw.event_timestamp);
    let event_timestamp = ck.timestamp(c::EVENT_TIMESTAMP, event_timestamp);
    let ingestion_timestamp = match raw.ingestion_timestamp {
        Some(t) => ck.timestamp(c::INGESTION_TIMESTAMP, Some(t)),
        None => DateTime::from_timestamp_micros(now.timestamp_micros()),
    };
    let source_system = ck.required(c::SOURCE_SYSTEM, raw.source_system);
    let source_system = ck.source_system(source_system);
    let text_content = ck.required(c::TEXT_CONTENT, raw.text_content);
    let text_content = text_content.and_then(|t| {
        if t.len() > MAX_TEXT_BYTES {
            ck.fail(c::TEXT_CONTENT, Rule::MaxLength(MAX_TEXT_BYTES), format!("{} bytes", t.len()));
            None
        } else {
            ck.text(c::TEXT_CONTENT, Some(t), usize::MAX)
        }
    });
    let sentiment_score = ck.required(c::SENTIMENT_SCORE, raw.sentiment_score);
    let sentiment_score = ck.score(c::SENTIMENT_SCORE, sentiment_score, -1.0, 1.0);
    let sentiment_magnitude = ck.required(c::SENTIMENT_MAGNITUDE, raw.sentiment_magnitude);
    let sentiment_magnitude = ck.at_least(c::SENTIMENT_MAGNITUDE, sentiment_magnitude, 0.0);
    let primary_emotion = ck.required(c::PRIMARY_EMOTION, raw.primary_emotion);
    let primary_emotion = ck.text(c::PRIMARY_EMOTION, primary_emotion, MAX_SHORT_LEN).map(lowercase);
    let emotion_intensity_vector = ck.float_map(c::EMOTION_INTENSITY_VECTOR, raw.emotion_intensity_vector, 0.0);
    let aspect_target_identification = ck.labels(c::ASPECT_TARGET_IDENTIFICATION, raw.aspect_target_identification);
    let aspect_based_sentiment = ck.float_map(c::ASPECT_BASED_SENTIMENT, raw.aspect_based_sentiment, -1.0);
    let sarcasm_detection = ck.required(c::SARCASM_DETECTION, raw.sarcasm_detection);
    let subjectivity_score = ck.required(c::SUBJECTIVITY_SCORE, raw.subjectivity_score);
    let subjectivity_score = ck.score(c::SUBJECTIVITY_SCORE, subjectivity_score, 0.0, 1.0);
    let toxicity_score = ck.required(c::TOXICITY_SCORE, raw.toxicity_score);
    let toxicity_score = ck.score(c::TOXICITY_SCORE, toxicity_score, 0.0, 1.0);
    let entity_recognition = ck.entities(raw.entity_recognition);
    let user_intent = ck.required(c::USER_INTENT, raw.user_intent);
    let user_intent = ck.text(c::USER_INTENT, user_intent, MAX_SHORT_LEN).map(lowercase);
    let influence_score = ck.at_least(c::INFLUENCE_SCORE, raw.influence_score, 0.0);
    let processing_version = match raw.processing_version {
        Some(v) => ck.text(c::PROCESSING_VERSION, Some(v), MAX_LABEL_LEN),
        None => Some(Cow::Borrowed(DEFAULT_PROCESSING_VERSION)),
    };
    let ticker = ck.ticker(raw.ticker);
    let article_title = ck.text(c::ARTICLE_TITLE, raw.article_title, MAX_TITLE_LEN);
    let source_url = ck.url(raw.source_url);
    let model_name = ck.text(c::MODEL_NAME, raw.model_name, MAX_LABEL_LEN);
    let record = (|| {
        Some(SentimentRecord {
            message_id: message_id?,
            event_timestamp: event_timestamp?,
            ingestion_timestamp: ingestion_timestamp?,
            source_system: source_system?,
            text_content: text_content?,
            sentiment_score: sentiment_score?,
            sentiment_magnitude: sentiment_magnitude?,
            primary_emotion: primary_emotion?,
            emotion_intensity_vector,
            aspect_target_identification,
            aspect_based_sentiment,
            sarcasm_detection: sarcasm_detection?,
            subjectivity_score: subjectivity_score?,
            toxicity_score: toxicity_score?,
            entity_recognition,
            user_intent: user_intent?,
            influence_score,
            processing_version: processing_version?,
            ticker,
            article_title,
            source_url,
            model_name,
        })
    })();
    match record {
        Some(record) if ck.violations.is_empty() => Ok(record),
        _ => Err(ValidationError { violations: ck.violations }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ingest::decode::decode;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
    }

    /// Validation as of an event enqueued (and processed) at `now()`.
    fn check(raw: RawRecord<'_>) -> Result<SentimentRecord<'_>, ValidationError> {
        validate(raw, now(), now())
    }

    /// A record with every required field and nothing else.
    fn minimal() -> RawRecord<'static> {
        RawRecord {
            message_id: Some("m1".into()),
            event_timestamp: Some("2025-05-31T23:59:59.123456+02:00".into()),
            source_system: Some("Twitter".into()),
            text_content: Some("$tsla to the moon".into()),
            sentiment_score: Some(0.5),
            sentiment_magnitude: Some(0.7),
            primary_emotion: Some("Joy".into()),
            sarcasm_detection: Some(false),
            subjectivity_score: Some(0.4),
            toxicity_score: Some(0.0),
            user_intent: Some("buy".into()),
            ticker: Some("$tsla".into()),
            ..RawRecord::default()
        }
    }

    #[test]
    fn normalises_and_fills_defaults() {
        let r = check(minimal()).unwrap();
        assert_eq!(r.event_timestamp.to_rfc3339(), "2025-05-31T21:59:59.123456+00:00");
        assert_eq!(r.ingestion_timestamp, now());
        assert_eq!(r.source_system, "twitter");
        assert_eq!(r.ticker.as_deref(), Some("TSLA"));
        assert_eq!(r.primary_emotion, "joy");
        assert_eq!(r.processing_version, DEFAULT_PROCESSING_VERSION);
        assert_eq!(r.influence_score, None);
    }

    #[test]
    fn accepts_nanosecond_fractions_and_z_by_truncating_to_micros() {
        let mut raw = minimal();
        raw.event_timestamp = Some("2025-05-31T10:00:00.123456789Z".into());
        let r = check(raw).unwrap();
        assert_eq!(r.event_timestamp.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn reports_every_violation_with_field_and_rule() {
        let raw = RawRecord {
            event_timestamp: Some("2025-05-31 10:00".into()),
            sentiment_score: Some(1.5),
            sentiment_magnitude: Some(-0.2),
            toxicity_score: Some(-0.1),
            source_url: Some("ftp://x".into()),
            ..RawRecord::default()
        };
        let err = check(raw).unwrap_err();
        let got: Vec<(&str, Rule)> = err.violations.iter().map(|v| (v.field.as_str(), v.rule)).collect();
        assert_eq!(
            got,
            vec![
                (c::MESSAGE_ID, Rule::Required),
                (c::EVENT_TIMESTAMP, Rule::Rfc3339),
                (c::SOURCE_SYSTEM, Rule::Required),
                (c::TEXT_CONTENT, Rule::Required),
                (c::SENTIMENT_SCORE, Rule::Range { min: -1.0, max: 1.0 }),
                (c::SENTIMENT_MAGNITUDE, Rule::AtLeast(0.0)),
                (c::PRIMARY_EMOTION, Rule::Required),
                (c::SARCASM_DETECTION, Rule::Required),
                (c::SUBJECTIVITY_SCORE, Rule::Required),
                (c::TOXICITY_SCORE, Rule::Range { min: 0.0, max: 1.0 }),
                (c::USER_INTENT, Rule::Required),
                (c::SOURCE_URL, Rule::HttpUrl),
            ]
        );
        assert!(err.to_string().contains("field `sentiment_score` breaks rule `range[-1,1]`"));
        assert!(!err.is_incomplete());
    }

    #[test]
    fn a_record_missing_only_analysis_fields_is_incomplete() {
        for field in REQUIRED_ANALYSIS_FIELDS {
            let mut raw = minimal();
            match field {
                c::SENTIMENT_SCORE => raw.sentiment_score = None,
                c::SENTIMENT_MAGNITUDE => raw.sentiment_magnitude = None,
                c::PRIMARY_EMOTION => raw.primary_emotion = None,
                c::SARCASM_DETECTION => raw.sarcasm_detection = None,
                c::SUBJECTIVITY_SCORE => raw.subjectivity_score = None,
                c::TOXICITY_SCORE => raw.toxicity_score = None,
                c::USER_INTENT => raw.user_intent = None,
                other => unreachable!("{other}"),
            }
            let err = check(raw).unwrap_err();
            assert!(err.is_incomplete(), "{field}: {err}");
            assert_eq!(err.violations[0].field, field);
        }
        let mut raw = minimal();
        raw.sentiment_score = None;
        raw.message_id = None;
        assert!(!check(raw).unwrap_err().is_incomplete(), "a missing id is not something enrichment can fill");
    }

    /// A magnitude (Google Natural Language's, say) is >= 0 and grows with the text: no upper cap.
    #[test]
    fn magnitudes_above_one_are_valid_and_negative_or_infinite_ones_are_not() {
        for (magnitude, ok) in [(0.0, true), (1.1, true), (7.5, true), (-0.01, false), (f64::from(f32::MAX) * 2.0, false)] {
            let mut raw = minimal();
            raw.sentiment_magnitude = Some(magnitude);
            assert_eq!(check(raw).is_ok(), ok, "{magnitude}");
        }
    }

    #[test]
    fn time_windows_are_relative_to_the_enqueued_time_not_the_clock() {
        let enqueued = now();
        let mut raw = minimal();
        raw.event_timestamp = Some((enqueued + MAX_FUTURE_SKEW + Duration::minutes(5)).to_rfc3339().into());
        // Processed a minute later or a week later (a redelivery): the same verdict.
        for processed in [enqueued + Duration::minutes(1), enqueued + Duration::days(7)] {
            let err = validate(raw.clone(), enqueued, processed).unwrap_err();
            assert_eq!(err.violations[0].rule, Rule::TimeWindow);
        }
        raw.event_timestamp = Some((enqueued + MAX_FUTURE_SKEW - Duration::minutes(5)).to_rfc3339().into());
        assert!(validate(raw, enqueued, enqueued - Duration::days(3)).is_ok());
    }

    #[test]
    fn rejects_timestamps_without_offset_or_far_in_the_future() {
        for (ts, rule) in
            [("2025-05-31T10:00:00", Rule::Rfc3339), ("2025-06-03T00:00:00Z", Rule::TimeWindow), ("1999-12-31T23:59:59Z", Rule::TimeWindow)]
        {
            let mut raw = minimal();
            raw.event_timestamp = Some(ts.into());
            let err = check(raw).unwrap_err();
            assert_eq!(err.violations[0].rule, rule, "{ts}");
        }
    }

    #[test]
    fn nested_violations_name_the_element() {
        let mut raw = minimal();
        raw.entity_recognition = Some(vec![RawEntity { text: "Apple".into(), entity_type: " ".into() }]);
        raw.emotion_intensity_vector = Some(RawFloatMap(vec![("fear".into(), 2.0)]));
        let err = check(raw).unwrap_err();
        let fields: Vec<&str> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["emotion_intensity_vector[\"fear\"]", "entity_recognition[0].type"]);
    }

    /// What a JSON object means, whatever the body's order: keys in order, each once, with the value the
    /// body gave it last, also when trimming makes two keys one.
    #[test]
    fn map_entries_come_out_ordered_with_each_keys_last_value() {
        let mut raw = minimal();
        let entries = [("joy", 0.1), ("fear", 0.2), ("joy", 0.3), (" anger ", 0.4), ("anger", 0.5)];
        raw.emotion_intensity_vector = Some(entries.into_iter().map(|(k, v)| (Text::from(k), v)).collect());
        let r = check(raw).unwrap();
        assert_eq!(r.emotion_intensity_vector.unwrap(), vec![("anger".into(), 0.5), ("fear".into(), 0.2), ("joy".into(), 0.3)]);
    }

    #[test]
    fn limits_are_enforced() {
        let mut raw = minimal();
        raw.message_id = Some("x".repeat(MAX_ID_LEN + 1).into());
        raw.text_content = Some("y".repeat(MAX_TEXT_BYTES + 1).into());
        raw.ticker = Some("AAPL; DROP".into());
        let err = check(raw).unwrap_err();
        let rules: Vec<Rule> = err.violations.iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec![Rule::MaxLength(MAX_ID_LEN), Rule::MaxLength(MAX_TEXT_BYTES), Rule::Pattern("$?[A-Z0-9][A-Z0-9./:-]*")]);
    }

    /// Partition values are escaped in paths, so tickers and sources with path characters are data, not a
    /// threat: they are accepted as the producer wrote them (normalised).
    #[test]
    fn path_like_tickers_and_sources_are_accepted() {
        let mut raw = minimal();
        raw.ticker = Some("A/../../../../X".into());
        raw.source_system = Some("Yahoo Finance/../..".into());
        let r = check(raw).unwrap();
        assert_eq!(r.ticker.as_deref(), Some("A/../../../../X"));
        assert_eq!(r.source_system, "yahoo finance/../..");
        let mut raw = minimal();
        raw.source_system = Some("bad\u{7}bell".into());
        assert_eq!(check(raw).unwrap_err().violations[0].field, c::SOURCE_SYSTEM);
    }

    fn arb_json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("2025-05-31T10:00:00Z")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const FIELDS: [&str; 22] = [
        c::MESSAGE_ID,
        c::EVENT_TIMESTAMP,
        c::INGESTION_TIMESTAMP,
        c::SOURCE_SYSTEM,
        c::TEXT_CONTENT,
        c::SENTIMENT_SCORE,
        c::SENTIMENT_MAGNITUDE,
        c::PRIMARY_EMOTION,
        c::EMOTION_INTENSITY_VECTOR,
        c::ASPECT_TARGET_IDENTIFICATION,
        c::ASPECT_BASED_SENTIMENT,
        c::SARCASM_DETECTION,
        c::SUBJECTIVITY_SCORE,
        c::TOXICITY_SCORE,
        c::ENTITY_RECOGNITION,
        c::USER_INTENT,
        c::INFLUENCE_SCORE,
        c::PROCESSING_VERSION,
        c::TICKER,
        c::ARTICLE_TITLE,
        c::SOURCE_URL,
        c::MODEL_NAME,
    ];

    proptest! {
        /// Any JSON object with any values under the real field names, on top of a valid record or alone:
        /// decode+validate never panics, and whatever passes satisfies the invariants the writer relies on.
        #[test]
        fn never_panics_and_accepted_records_hold_invariants(
            values in prop::collection::vec((0usize..22, arb_json_value()), 0..22),
            on_valid_base in any::<bool>(),
        ) {
            let mut object = serde_json::Map::new();
            if on_valid_base {
                for (key, value) in [
                    (c::MESSAGE_ID, serde_json::json!("m")), (c::EVENT_TIMESTAMP, serde_json::json!("2025-05-31T10:00:00Z")),
                    (c::SOURCE_SYSTEM, serde_json::json!("x")), (c::TEXT_CONTENT, serde_json::json!("t")),
                    (c::SENTIMENT_SCORE, serde_json::json!(0.1)), (c::SENTIMENT_MAGNITUDE, serde_json::json!(0.1)),
                    (c::PRIMARY_EMOTION, serde_json::json!("joy")), (c::SARCASM_DETECTION, serde_json::json!(false)),
                    (c::SUBJECTIVITY_SCORE, serde_json::json!(0.1)), (c::TOXICITY_SCORE, serde_json::json!(0.1)),
                    (c::USER_INTENT, serde_json::json!("buy")),
                ] {
                    object.insert(key.to_string(), value);
                }
            }
            object.extend(values.into_iter().map(|(i, v)| (FIELDS[i].to_string(), v)));
            let body = serde_json::to_vec(&object).unwrap();
            let mut scratch = Vec::new();
            if let Ok(raw) = decode(&body, &mut scratch) {
                match check(raw) {
                    Ok(r) => {
                        prop_assert!(!r.message_id.trim().is_empty());
                        prop_assert!(!r.text_content.trim().is_empty());
                        prop_assert!((-1.0..=1.0).contains(&r.sentiment_score));
                        for s in [r.subjectivity_score, r.toxicity_score] {
                            prop_assert!((0.0..=1.0).contains(&s));
                        }
                        for s in [Some(r.sentiment_magnitude), r.influence_score].into_iter().flatten() {
                            prop_assert!(s.is_finite() && s >= 0.0);
                        }
                        prop_assert!(r.event_timestamp <= now() + MAX_FUTURE_SKEW);
                    }
                    Err(e) => prop_assert!(!e.violations.is_empty()),
                }
            }
        }

        /// Scores: accepted exactly when finite and inside the range.
        #[test]
        fn score_range_is_exact(score in -3.0f64..3.0) {
            let mut raw = minimal();
            raw.sentiment_score = Some(score);
            let accepted = check(raw).is_ok();
            prop_assert_eq!(accepted, (-1.0..=1.0).contains(&score));
        }

        /// Any offset and sub-second precision round-trips to the same instant (to the microsecond).
        #[test]
        fn rfc3339_offsets_round_trip(secs in 946_684_800i64..1_748_000_000, micros in 0u32..1_000_000, offset_min in -720i32..=840) {
            let instant = DateTime::from_timestamp(secs, micros * 1000).unwrap();
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let mut raw = minimal();
            raw.event_timestamp = Some(instant.with_timezone(&offset).to_rfc3339_opts(chrono::SecondsFormat::Micros, false).into());
            let r = check(raw).unwrap();
            prop_assert_eq!(r.event_timestamp, instant);
        }
    }
}
