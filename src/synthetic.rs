//! Deterministic, realistic sentiment events (~1 KB of JSON each) for `demo`, load tests and benchmarks.
//!
//! Same seed, same events: benchmark runs and the PyIceberg comparison see identical input. The texts are
//! templated finance chatter and headlines; analysis fields are filled as an upstream model would.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

pub const TICKERS: [&str; 50] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK.B", "JPM", "V", "UNH", "XOM", "JNJ", "WMT", "MA", "PG", "AVGO", "HD", "CVX", "MRK",
    "ABBV", "COST", "PEP", "KO", "ADBE", "CRM", "NFLX", "AMD", "TMO", "BAC", "ORCL", "ACN", "LIN", "MCD", "DIS", "CSCO", "ABT", "WFC", "INTC", "VZ",
    "CMCSA", "DHR", "TXN", "PFE", "NKE", "PM", "UPS", "MS", "RTX", "GS",
];
const SOURCES: [&str; 4] = ["twitter", "reddit", "stocktwits", "news"];
const EMOTIONS: [&str; 8] = ["joy", "fear", "anger", "sadness", "surprise", "trust", "anticipation", "disgust"];
const ASPECTS: [&str; 6] = ["earnings", "revenue", "guidance", "management", "product", "valuation"];
const OPENERS: [&str; 8] = [
    "Just read the latest note on",
    "Can't believe what happened with",
    "Analysts are split on",
    "Big move today in",
    "Quarterly numbers are out for",
    "Thread on why I'm watching",
    "Breaking: fresh headlines around",
    "Long-term thesis update for",
];
const BODIES: [&str; 8] = [
    "revenue beat consensus by a wide margin and management raised full-year guidance, which the market loved; shares jumped in after-hours trading as volume spiked",
    "guidance was cut for the second quarter in a row and margins compressed more than expected, so the stock slid as several desks downgraded it to underweight",
    "the product launch drew mixed reviews: strong preorders but supply constraints could weigh on deliveries, and valuation already prices in a lot of optimism",
    "management changes at the top raised questions about execution, although the balance sheet remains solid and buybacks continue at the same pace as last year",
    "earnings were roughly in line, but commentary on demand in Europe and Asia was cautious; options activity suggests traders are hedging ahead of the macro data",
    "regulators opened a probe into the pricing practices, and a class action was filed this morning; legal costs could dent margins if this drags into next year",
    "a surprise dividend increase and a new buyback authorisation signal confidence, while free cash flow hit a record and net debt fell for a fifth straight quarter",
    "short interest is climbing again and retail forums are calling for a squeeze, but institutional flows look flat and implied volatility is near a one-year low",
];
const CLOSERS: [&str; 6] = [
    "Not financial advice, do your own research before taking a position.",
    "Curious what everyone here thinks about the risk/reward at these levels.",
    "Adding to my position slowly, but keeping a tight stop just in case.",
    "Staying on the sidelines until the next earnings call clears things up.",
    "This could be the start of a much bigger trend if volumes hold up.",
    "Watching the 200-day moving average closely for confirmation.",
];

/// xorshift64*: tiny, fast and reproducible; statistical quality is irrelevant here.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Produces event `i` of a reproducible stream.
#[derive(Debug, Clone)]
pub struct EventGenerator {
    rng: Rng,
    start: DateTime<Utc>,
    span_seconds: i64,
    tickers: usize,
}

impl EventGenerator {
    /// Events spread uniformly over `days` days before `end`, across the first `tickers` tickers.
    pub fn new(seed: u64, end: DateTime<Utc>, days: u32, tickers: usize) -> Self {
        let span_seconds = i64::from(days.max(1)) * 86_400;
        Self { rng: Rng(seed.max(1)), start: end - Duration::seconds(span_seconds), span_seconds, tickers: tickers.clamp(1, TICKERS.len()) }
    }

    pub fn event(&mut self, i: u64) -> Value {
        let r = &mut self.rng;
        let ticker = TICKERS[r.below(self.tickers)];
        let source = r.pick(&SOURCES);
        let score = (r.unit() * 2.0 - 1.0) * 0.95;
        let at = self.start + Duration::milliseconds((r.unit() * self.span_seconds as f64 * 1000.0) as i64);
        let text = format!("{} ${ticker}: {} {}", r.pick(&OPENERS), r.pick(&BODIES), r.pick(&CLOSERS));
        let mut emotions = serde_json::Map::new();
        for emotion in EMOTIONS {
            emotions.insert(emotion.into(), json!(round(r.unit() * 0.6)));
        }
        let aspect_a = r.pick(&ASPECTS);
        let aspect_b = r.pick(&ASPECTS);
        let mut aspects = vec![aspect_a];
        if aspect_b != aspect_a {
            aspects.push(aspect_b);
        }
        let intent = ["buy", "sell", "hold", "question", "news"][r.below(5)];
        let aspect_scores: serde_json::Map<String, Value> =
            aspects.iter().map(|a| (a.to_string(), json!(round(score * (0.5 + r.unit() * 0.5))))).collect();
        json!({
            "message_id": format!("{source}-{i:012}"),
            "event_timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "source_system": source,
            // A magnitude as Google's Natural Language API reports it: the strength of the emotion, which grows
            // with the amount of emotional content, so long texts pass 1.
            "sentiment_magnitude": round(score.abs() * (0.5 + text.len() as f64 / 300.0)),
            "text_content": text,
            "sentiment_score": round(score),
            "primary_emotion": if score >= 0.0 { "joy" } else { "fear" },
            "emotion_intensity_vector": emotions,
            "aspect_target_identification": aspects,
            "aspect_based_sentiment": aspect_scores,
            "sarcasm_detection": r.below(20) == 0,
            "subjectivity_score": round(r.unit()),
            "toxicity_score": round(r.unit() * 0.2),
            "entity_recognition": [{"text": ticker, "type": "TICKER"}, {"text": format!("{ticker} Inc."), "type": "ORG"}],
            "user_intent": intent,
            "influence_score": round(r.unit()),
            "processing_version": "upstream-2.1",
            "ticker": ticker,
            "article_title": (source == "news").then(|| format!("{ticker} shares move as investors weigh latest results")),
            "source_url": format!("https://example.com/{source}/{i}"),
            "model_name": "finbert-upstream-1.3",
        })
    }

    /// NDJSON bytes of events `first..first+count`.
    pub fn ndjson(&mut self, first: u64, count: u64) -> Vec<u8> {
        self.write_ndjson(first, count, |event| event)
    }

    /// The same events as raw messages: only what a producer without a model sends (no analysis fields).
    pub fn ndjson_unanalysed(&mut self, first: u64, count: u64) -> Vec<u8> {
        self.write_ndjson(first, count, |mut event| {
            if let Value::Object(fields) = &mut event {
                fields.retain(|key, _| RAW_FIELDS.contains(&key.as_str()));
            }
            event
        })
    }

    fn write_ndjson(&mut self, first: u64, count: u64, shape: impl Fn(Value) -> Value) -> Vec<u8> {
        let mut out = Vec::with_capacity(count as usize * 1100);
        for i in first..first + count {
            serde_json::to_writer(&mut out, &shape(self.event(i))).expect("a JSON value always serialises");
            out.push(b'\n');
        }
        out
    }
}

/// Fields a producer sends when it has no sentiment model of its own.
const RAW_FIELDS: [&str; 7] = ["message_id", "event_timestamp", "source_system", "text_content", "ticker", "article_title", "source_url"];

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{decode, validate};

    #[test]
    fn events_are_deterministic_valid_and_about_one_kilobyte() {
        let end = "2025-03-31T00:00:00Z".parse().unwrap();
        let a = EventGenerator::new(7, end, 30, 50).ndjson(0, 200);
        let b = EventGenerator::new(7, end, 30, 50).ndjson(0, 200);
        assert_eq!(a, b);
        let lines: Vec<&[u8]> = a.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        let mean = lines.iter().map(|l| l.len()).sum::<usize>() / lines.len();
        assert!((800..1400).contains(&mean), "mean event size {mean}");
        let mut above_one = 0;
        for line in lines {
            let mut scratch = Vec::new();
            let raw = decode::decode(line, &mut scratch).unwrap();
            let record = validate::validate(raw, end, end).unwrap();
            above_one += usize::from(record.sentiment_magnitude > 1.0);
        }
        assert!(above_one > 0, "realistic magnitudes exceed 1 for strong, long messages");
    }
}
