//! The questions the API answers, each built from request parameters with every one validated.

use chrono::{DateTime, Utc};

use super::params::{
    parse_as_of, parse_int, parse_interval, parse_score, parse_unit_interval, Cursor, Interval, Label, ParamError, RawParams, Ticker, Window,
};
use crate::engine::AsOf;

/// One question about the table, with every parameter validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Overall sentiment and emotions of one ticker.
    Summary { ticker: Ticker, window: Window },
    /// Sentiment per named entity.
    Entities { ticker: Option<Ticker>, entity_type: Option<Label>, window: Window, limit: u32 },
    /// Sentiment per aspect (earnings, guidance, ...).
    Aspects { ticker: Ticker, window: Window, limit: u32 },
    /// Moderation list: messages at or above a toxicity threshold.
    Toxicity { ticker: Option<Ticker>, min_toxicity: f64, window: Window, limit: u32 },
    /// Distribution of user intents.
    Intents { ticker: Option<Ticker>, window: Window, limit: u32 },
    /// Bucketed sentiment of one ticker.
    TimeSeries { ticker: Ticker, interval: Interval, window: Window },
    /// Tickers by message volume.
    TopTickers { window: Window, limit: u32 },
    /// Stored records, newest first, a page at a time.
    Records {
        ticker: Option<Ticker>,
        source_system: Option<Label>,
        min_score: Option<f64>,
        max_score: Option<f64>,
        window: Window,
        limit: u32,
        cursor: Option<Cursor>,
    },
}

/// The query kinds, each with its endpoint name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    Summary,
    Entities,
    Aspects,
    Toxicity,
    Intents,
    TimeSeries,
    TopTickers,
    Records,
}

impl QueryKind {
    pub const ALL: [QueryKind; 8] = [
        QueryKind::TopTickers,
        QueryKind::TimeSeries,
        QueryKind::Summary,
        QueryKind::Entities,
        QueryKind::Aspects,
        QueryKind::Toxicity,
        QueryKind::Intents,
        QueryKind::Records,
    ];

    /// The last path segment of the endpoint (`/api/sentiment/<name>`), also used in metrics and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::Summary => "summary",
            QueryKind::Entities => "entities",
            QueryKind::Aspects => "aspects",
            QueryKind::Toxicity => "toxicity",
            QueryKind::Intents => "intents",
            QueryKind::TimeSeries => "timeseries",
            QueryKind::TopTickers => "tickers",
            QueryKind::Records => "records",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Upper bounds that keep one answer small enough for a dashboard and one query cheap enough for a function.
pub mod limits {
    pub const MAX_TIMESERIES_BUCKETS: i64 = 5_000;
    pub const DEFAULT_LIST: u32 = 50;
    pub const MAX_LIST: u32 = 500;
    pub const DEFAULT_TOP_TICKERS: u32 = 10;
    pub const MAX_TOP_TICKERS: u32 = 100;
    pub const DEFAULT_RECORDS: u32 = 100;
    pub const MAX_RECORDS: u32 = 1_000;
    pub const DEFAULT_MIN_TOXICITY: f64 = 0.5;
    /// Emotions listed in a summary (each of its two lists): emotion labels come from producers, so their
    /// number is not bounded by the data model.
    pub const MAX_EMOTIONS: u32 = 50;
}

/// Query-string keys the platform adds, which no endpoint reads (the Functions key travels as `code`).
const PLATFORM_PARAMS: &[&str] = &["code"];

fn window(p: &mut RawParams, now: DateTime<Utc>) -> Result<Window, ParamError> {
    let (days, from, to) = (p.take("days")?, p.take("from")?, p.take("to")?);
    Window::resolve(days.as_deref(), from.as_deref(), to.as_deref(), now)
}

fn ticker(p: &mut RawParams) -> Result<Option<Ticker>, ParamError> {
    p.take("ticker")?.map(|t| Ticker::parse("ticker", &t)).transpose()
}

fn limit(p: &mut RawParams, default: u32, max: u32) -> Result<u32, ParamError> {
    Ok(match p.take("limit")? {
        Some(v) => parse_int("limit", &v, 1, i64::from(max))? as u32,
        None => default,
    })
}

/// What state of the table an answer reads: a past snapshot (`as_of`), or the current one with or without
/// what is staged above it (`fresh`; `None`: the server's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub as_of: Option<AsOf>,
    pub fresh: Option<bool>,
}

impl From<Option<AsOf>> for Reading {
    fn from(as_of: Option<AsOf>) -> Self {
        Reading { as_of, fresh: None }
    }
}

impl Query {
    /// Validates an endpoint's query string. `now` anchors relative windows. `as_of` is refused here: see
    /// [`Query::parse_request`].
    pub fn parse(kind: QueryKind, query_string: Option<&str>, now: DateTime<Utc>) -> Result<Self, ParamError> {
        let mut p = RawParams::parse(query_string)?;
        let query = Self::parse_params(kind, &mut p, now)?;
        p.finish(PLATFORM_PARAMS)?;
        Ok(query)
    }

    /// An endpoint's query string with what it reads: `as_of` (a snapshot id, or an instant, RFC 3339 or
    /// `YYYY-MM-DD`, naming the snapshot that was current then) and `fresh` (`true`/`false`: whether what is
    /// staged above the current snapshot is included; a past snapshot never has it).
    pub fn parse_request(kind: QueryKind, query_string: Option<&str>, now: DateTime<Utc>) -> Result<(Self, Reading), ParamError> {
        let mut p = RawParams::parse(query_string)?;
        let as_of = p.take("as_of")?.map(|v| parse_as_of("as_of", &v)).transpose()?;
        let fresh = match p.take("fresh")?.as_deref() {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => return Err(ParamError::new("fresh", "`fresh` is `true` or `false`")),
        };
        if as_of.is_some() && fresh == Some(true) {
            return Err(ParamError::new("fresh", "an `as_of` answer reads a committed snapshot only; `fresh=true` does not apply"));
        }
        let query = Self::parse_params(kind, &mut p, now)?;
        p.finish(PLATFORM_PARAMS)?;
        Ok((query, Reading { as_of, fresh }))
    }

    fn parse_params(kind: QueryKind, p: &mut RawParams, now: DateTime<Utc>) -> Result<Self, ParamError> {
        use limits::*;
        let required_ticker = |p: &mut RawParams| Ticker::parse("ticker", &p.require("ticker")?);
        let query = match kind {
            QueryKind::Summary => Query::Summary { ticker: required_ticker(p)?, window: window(p, now)? },
            QueryKind::Aspects => Query::Aspects { ticker: required_ticker(p)?, window: window(p, now)?, limit: limit(p, DEFAULT_LIST, MAX_LIST)? },
            QueryKind::Intents => Query::Intents { ticker: ticker(p)?, window: window(p, now)?, limit: limit(p, DEFAULT_LIST, MAX_LIST)? },
            QueryKind::Entities => Query::Entities {
                ticker: ticker(p)?,
                entity_type: p.take("entity_type")?.map(|t| Label::parse("entity_type", &t, true)).transpose()?,
                window: window(p, now)?,
                limit: limit(p, DEFAULT_LIST, MAX_LIST)?,
            },
            QueryKind::Toxicity => Query::Toxicity {
                ticker: ticker(p)?,
                min_toxicity: p.take("min_toxicity")?.map(|v| parse_unit_interval("min_toxicity", &v)).transpose()?.unwrap_or(DEFAULT_MIN_TOXICITY),
                window: window(p, now)?,
                limit: limit(p, DEFAULT_LIST, MAX_LIST)?,
            },
            QueryKind::TimeSeries => {
                let ticker = required_ticker(p)?;
                let interval = match p.take("interval")? {
                    Some(v) => parse_interval("interval", &v)?,
                    // The seed's `get_sentiment_time_series(ticker, interval='day', days=30)`.
                    None => Interval::Day,
                };
                let window = window(p, now)?;
                if window.buckets(interval) > MAX_TIMESERIES_BUCKETS {
                    return Err(ParamError::new(
                        "interval",
                        format!(
                            "{} buckets of one {} exceed the limit of {MAX_TIMESERIES_BUCKETS}; use a wider interval or a shorter window",
                            window.buckets(interval),
                            interval.as_str()
                        ),
                    ));
                }
                Query::TimeSeries { ticker, interval, window }
            }
            QueryKind::TopTickers => Query::TopTickers { window: window(p, now)?, limit: limit(p, DEFAULT_TOP_TICKERS, MAX_TOP_TICKERS)? },
            QueryKind::Records => {
                let min_score = p.take("min_score")?.map(|v| parse_score("min_score", &v)).transpose()?;
                let max_score = p.take("max_score")?.map(|v| parse_score("max_score", &v)).transpose()?;
                if let (Some(min), Some(max)) = (min_score, max_score) {
                    if min > max {
                        return Err(ParamError::new("min_score", "must not exceed `max_score`"));
                    }
                }
                Query::Records {
                    ticker: ticker(p)?,
                    source_system: p.take("source_system")?.map(|s| Label::parse("source_system", &s, false)).transpose()?,
                    min_score,
                    max_score,
                    window: window(p, now)?,
                    limit: limit(p, DEFAULT_RECORDS, MAX_RECORDS)?,
                    cursor: p.take("cursor")?.map(|c| Cursor::parse("cursor", &c)).transpose()?,
                }
            }
        };
        Ok(query)
    }

    pub fn kind(&self) -> QueryKind {
        match self {
            Query::Summary { .. } => QueryKind::Summary,
            Query::Entities { .. } => QueryKind::Entities,
            Query::Aspects { .. } => QueryKind::Aspects,
            Query::Toxicity { .. } => QueryKind::Toxicity,
            Query::Intents { .. } => QueryKind::Intents,
            Query::TimeSeries { .. } => QueryKind::TimeSeries,
            Query::TopTickers { .. } => QueryKind::TopTickers,
            Query::Records { .. } => QueryKind::Records,
        }
    }

    pub fn window(&self) -> Window {
        match self {
            Query::Summary { window, .. }
            | Query::Entities { window, .. }
            | Query::Aspects { window, .. }
            | Query::Toxicity { window, .. }
            | Query::Intents { window, .. }
            | Query::TimeSeries { window, .. }
            | Query::TopTickers { window, .. }
            | Query::Records { window, .. } => *window,
        }
    }

    /// Every parameter in a fixed order and spelling: equal queries give equal strings (the cache key's core).
    pub fn canonical(&self) -> String {
        fn opt<T: std::fmt::Debug>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "-".to_string(), |v| format!("{v:?}"))
        }
        let w = self.window();
        let window = format!("{}..{}", w.from.timestamp_micros(), w.to.timestamp_micros());
        let rest = match self {
            Query::Summary { ticker, .. } => format!("{ticker:?}"),
            Query::Aspects { ticker, limit, .. } => format!("{ticker:?}|{limit}"),
            Query::Entities { ticker, entity_type, limit, .. } => format!("{}|{}|{limit}", opt(ticker), opt(entity_type)),
            Query::Toxicity { ticker, min_toxicity, limit, .. } => format!("{}|{min_toxicity}|{limit}", opt(ticker)),
            Query::Intents { ticker, limit, .. } => format!("{}|{limit}", opt(ticker)),
            Query::TimeSeries { ticker, interval, .. } => format!("{ticker:?}|{}", interval.as_str()),
            Query::TopTickers { limit, .. } => limit.to_string(),
            Query::Records { ticker, source_system, min_score, max_score, limit, cursor, .. } => {
                format!("{}|{}|{}|{}|{limit}|{}", opt(ticker), opt(source_system), opt(min_score), opt(max_score), opt(cursor))
            }
        };
        format!("{}|{window}|{rest}", self.kind().name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_endpoint_parses_its_documented_example() {
        let examples = [
            (QueryKind::Summary, "ticker=AAPL&days=7"),
            (QueryKind::Entities, "ticker=AAPL&entity_type=org&days=7&limit=20"),
            (QueryKind::Aspects, "ticker=AAPL&from=2026-11-01&to=2026-11-08"),
            (QueryKind::Toxicity, "min_toxicity=0.7&days=1&limit=10"),
            (QueryKind::Intents, "days=30"),
            (QueryKind::TimeSeries, "ticker=TSLA&interval=hour&days=2"),
            (QueryKind::TopTickers, "days=1&limit=5"),
            (QueryKind::Records, "ticker=AAPL&source_system=twitter&min_score=-0.5&max_score=0.5&limit=100"),
        ];
        for (kind, query) in examples {
            let parsed = Query::parse(kind, Some(query), now()).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(parsed.kind(), kind);
            assert_eq!(QueryKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn invalid_parameters_are_named() {
        let cases = [
            (QueryKind::TimeSeries, "days=7", "ticker"),
            (QueryKind::TimeSeries, "ticker=AAPL&interval=minute&days=30", "interval"),
            (QueryKind::TimeSeries, "ticker=AAPL&interval=fortnight", "interval"),
            (QueryKind::TopTickers, "limit=0", "limit"),
            (QueryKind::TopTickers, "limit=101", "limit"),
            (QueryKind::Toxicity, "min_toxicity=1.5", "min_toxicity"),
            (QueryKind::Records, "min_score=0.5&max_score=0.1", "min_score"),
            (QueryKind::Records, "cursor=bm9wZQ", "cursor"),
            (QueryKind::Summary, "ticker=AAPL&sort=desc", "sort"),
            (QueryKind::Entities, "entity_type=ORGANISATION_OF_MORE_THAN_SIXTY_FOUR_CHARACTERS_IS_NOT_AN_ENTITY_TYPE", "entity_type"),
            (QueryKind::Aspects, "ticker=AAPL&limit=501", "limit"),
            (QueryKind::Intents, "limit=0", "limit"),
        ];
        for (kind, query, parameter) in cases {
            let err = Query::parse(kind, Some(query), now()).unwrap_err();
            assert_eq!(err.parameter, parameter, "{query}: {err}");
        }
    }

    #[test]
    fn canonical_forms_separate_different_queries_and_join_equal_ones() {
        let a = Query::parse(QueryKind::TimeSeries, Some("ticker=aapl&interval=hour&days=1"), now()).unwrap();
        let b = Query::parse(QueryKind::TimeSeries, Some("days=1&interval=1h&ticker=$AAPL&code=k"), now()).unwrap();
        let c = Query::parse(QueryKind::TimeSeries, Some("ticker=AAPL&interval=day&days=1"), now()).unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_ne!(a.canonical(), c.canonical());
    }
}
