//! Each query's SQL (written once, engine differences through the [`Dialect`]) and the reading of its results
//! into answer types.

use std::fmt::Write as _;

use serde_json::Value;

use super::answer::*;
use super::params::{Ticker, Window};
use super::question::Query;
use crate::engine::{Dialect, EngineError, QueryEngine, SqlParam, SqlQuery, TableSnapshot};
use crate::schema::column as c;

/// What a query computed: the `data` of the response and, for paged queries, where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Computed {
    pub data: Value,
    pub next_cursor: Option<String>,
    /// Which path answered: `rollup`, `rollup+delta` or `raw` (`meta.path`).
    pub path: String,
}

/// Accumulates placeholders and their values while a statement is written.
struct Statement<'a> {
    dialect: &'a dyn Dialect,
    table: String,
    params: Vec<SqlParam>,
}

impl<'a> Statement<'a> {
    fn new(engine: &'a dyn QueryEngine, snapshot: &TableSnapshot) -> Self {
        Self { dialect: engine.dialect(), table: engine.table_expr(snapshot), params: Vec::new() }
    }

    fn bind(&mut self, value: SqlParam) -> String {
        self.params.push(value);
        self.dialect.placeholder(self.params.len())
    }

    /// `event_timestamp` inside the window, and the ticker if one is given.
    fn scope(&mut self, window: &Window, ticker: Option<&Ticker>) -> String {
        let from = self.bind(SqlParam::Timestamp(window.from));
        let to = self.bind(SqlParam::Timestamp(window.to));
        let mut clause = format!("{ts} >= {from} AND {ts} < {to}", ts = c::EVENT_TIMESTAMP);
        if let Some(ticker) = ticker {
            let t = self.bind(SqlParam::Text(ticker.as_str().to_string()));
            let _ = write!(clause, " AND {} = {t}", c::TICKER);
        }
        clause
    }

    fn finish(self, text: String) -> SqlQuery {
        SqlQuery { text, params: self.params }
    }
}

/// Positive/negative/neutral counts of a float column, compared in the column's 32-bit precision.
fn polarity_counts(column: &str) -> String {
    let band = NEUTRAL_BAND;
    format!(
        "CAST(SUM(CASE WHEN {column} > CAST({band} AS FLOAT) THEN 1 ELSE 0 END) AS BIGINT) AS positive, \
         CAST(SUM(CASE WHEN {column} < CAST(-{band} AS FLOAT) THEN 1 ELSE 0 END) AS BIGINT) AS negative, \
         CAST(SUM(CASE WHEN {column} >= CAST(-{band} AS FLOAT) AND {column} <= CAST({band} AS FLOAT) THEN 1 ELSE 0 END) AS BIGINT) AS neutral"
    )
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, EngineError> {
    serde_json::to_value(value).map_err(|e| EngineError::Shape(e.to_string()))
}

async fn rows(engine: &dyn QueryEngine, snapshot: &TableSnapshot, query: SqlQuery) -> Result<Option<Columns>, EngineError> {
    let batches = engine.execute(snapshot, &query).await?;
    Columns::new(&batches)
}

fn each<T>(cols: Option<Columns>, read: impl Fn(&Columns, usize) -> Result<T, EngineError>) -> Result<Vec<T>, EngineError> {
    match cols {
        None => Ok(Vec::new()),
        Some(cols) => (0..cols.rows()).map(|row| read(&cols, row)).collect(),
    }
}

/// Whether answers may come from the rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollupUse {
    /// From rollups where they cover the snapshot asked, from raw rows otherwise.
    #[default]
    Auto,
    /// Always from raw rows (`--rollups off`: comparisons, and the raw path's own benchmark).
    Off,
}

pub async fn compute(query: &Query, engine: &dyn QueryEngine, snapshot: &TableSnapshot, rollups: RollupUse) -> Result<Computed, EngineError> {
    if rollups == RollupUse::Auto && super::fold::foldable(query) {
        let (dimensions, ticker) = super::fold::needs(query);
        let window = query.window();
        let scope = crate::rollup::Scope {
            window: (window.from.timestamp_micros(), window.to.timestamp_micros()),
            coarsest: super::fold::coarsest(query),
            dimensions,
            ticker,
            detail: super::fold::detail(query),
        };
        if let Some(folded) = engine.partials(snapshot, &scope).await? {
            return Ok(Computed { data: super::fold::fold(query, &folded.partials)?, next_cursor: None, path: folded.path });
        }
    }
    raw(query, engine, snapshot).await
}

/// The answer from raw rows, by the engine's SQL.
pub async fn raw(query: &Query, engine: &dyn QueryEngine, snapshot: &TableSnapshot) -> Result<Computed, EngineError> {
    let data = match query {
        Query::TimeSeries { ticker, interval, window } => {
            let mut s = Statement::new(engine, snapshot);
            let scope = s.scope(window, Some(ticker));
            let bucket = s.dialect.time_bucket(*interval, c::EVENT_TIMESTAMP);
            let text = format!(
                "SELECT {bucket} AS bucket_start, CAST(COUNT(*) AS BIGINT) AS message_count, \
                 AVG(CAST({score} AS DOUBLE)) AS average_score, MIN({score}) AS min_score, \
                 MAX({score}) AS max_score, AVG(CAST({magnitude} AS DOUBLE)) AS average_magnitude, {counts} \
                 FROM {table} WHERE {scope} GROUP BY {bucket} ORDER BY bucket_start",
                score = c::SENTIMENT_SCORE,
                magnitude = c::SENTIMENT_MAGNITUDE,
                counts = polarity_counts(c::SENTIMENT_SCORE),
                table = s.table,
            );
            let cols = rows(engine, snapshot, s.finish(text)).await?;
            to_value(each(cols, |r, i| {
                let average_score = r.f64("average_score", i)?;
                let bucket_start = r.timestamp("bucket_start", i)?;
                Ok(TimeSeriesPoint {
                    bucket_start,
                    time_bucket: bucket_start,
                    message_count: r.i64("message_count", i)?,
                    average_score,
                    avg_sentiment: average_score,
                    min_score: r.f64("min_score", i)?,
                    max_score: r.f64("max_score", i)?,
                    average_magnitude: r.opt_f64("average_magnitude", i)?,
                    positive: r.i64("positive", i)?,
                    negative: r.i64("negative", i)?,
                    neutral: r.i64("neutral", i)?,
                    label: label(average_score),
                })
            })?)?
        }
        Query::TopTickers { window, limit } => {
            let mut s = Statement::new(engine, snapshot);
            let scope = s.scope(window, None);
            let text = format!(
                "SELECT {ticker} AS ticker, CAST(COUNT(*) AS BIGINT) AS message_count, AVG(CAST({score} AS DOUBLE)) AS average_score, {counts} \
                 FROM {table} WHERE {scope} AND {ticker} IS NOT NULL GROUP BY {ticker} ORDER BY message_count DESC, ticker ASC LIMIT {limit}",
                ticker = c::TICKER,
                score = c::SENTIMENT_SCORE,
                counts = polarity_counts(c::SENTIMENT_SCORE),
                table = s.table,
            );
            let cols = rows(engine, snapshot, s.finish(text)).await?;
            to_value(each(cols, |r, i| {
                let (count, positive, negative) = (r.i64("message_count", i)?, r.i64("positive", i)?, r.i64("negative", i)?);
                let average_score = r.f64("average_score", i)?;
                Ok(TickerVolume {
                    ticker: r.str("ticker", i)?,
                    message_count: count,
                    average_score,
                    avg_sentiment: average_score,
                    positive,
                    negative,
                    neutral: r.i64("neutral", i)?,
                    bullish_share: positive as f64 / count as f64,
                    bearish_share: negative as f64 / count as f64,
                    label: label(average_score),
                })
            })?)?
        }
        Query::Summary { ticker, window } => to_value(summary(engine, snapshot, ticker, window).await?)?,
        Query::Entities { ticker, entity_type, window, limit } => {
            let mut s = Statement::new(engine, snapshot);
            let scope = s.scope(window, ticker.as_ref());
            let (text_of, type_of) =
                (s.dialect.struct_field("e", crate::schema::ENTITY_TEXT), s.dialect.struct_field("e", crate::schema::ENTITY_TYPE));
            let type_filter = match entity_type {
                Some(t) => format!("WHERE {type_of} = {}", s.bind(SqlParam::Text(t.as_str().to_string()))),
                None => String::new(),
            };
            let text = format!(
                "SELECT {text_of} AS entity, {type_of} AS entity_type, CAST(COUNT(*) AS BIGINT) AS mentions, AVG(CAST(score AS DOUBLE)) AS average_score \
                 FROM (SELECT {elements}, {score} AS score FROM {table} WHERE {scope}) exploded {type_filter} \
                 GROUP BY {text_of}, {type_of} ORDER BY mentions DESC, entity ASC, entity_type ASC LIMIT {limit}",
                elements = s.dialect.list_elements(c::ENTITY_RECOGNITION, "e"),
                score = c::SENTIMENT_SCORE,
                table = s.table,
            );
            let cols = rows(engine, snapshot, s.finish(text)).await?;
            to_value(each(cols, |r, i| {
                Ok(EntitySentiment {
                    entity: r.str("entity", i)?,
                    entity_type: r.str("entity_type", i)?,
                    mentions: r.i64("mentions", i)?,
                    average_score: r.f64("average_score", i)?,
                })
            })?)?
        }
        Query::Aspects { ticker, window, limit } => {
            let mut s = Statement::new(engine, snapshot);
            let scope = s.scope(window, Some(ticker));
            let text = format!(
                "SELECT aspect, CAST(COUNT(*) AS BIGINT) AS mentions, AVG(CAST(aspect_score AS DOUBLE)) AS average_sentiment, {counts} \
                 FROM {entries} exploded GROUP BY aspect ORDER BY mentions DESC, aspect ASC LIMIT {limit}",
                counts = polarity_counts("aspect_score"),
                entries = s.dialect.map_entries(c::ASPECT_BASED_SENTIMENT, "aspect", "aspect_score", &s.table, &scope),
            );
            let cols = rows(engine, snapshot, s.finish(text)).await?;
            to_value(each(cols, |r, i| {
                Ok(AspectSentiment {
                    aspect: r.str("aspect", i)?,
                    mentions: r.i64("mentions", i)?,
                    average_sentiment: r.f64("average_sentiment", i)?,
                    positive: r.i64("positive", i)?,
                    negative: r.i64("negative", i)?,
                })
            })?)?
        }
        Query::Toxicity { ticker, min_toxicity, window, limit } => {
            to_value(toxicity(engine, snapshot, ticker.as_ref(), *min_toxicity, window, *limit).await?)?
        }
        Query::Intents { ticker, window, limit } => {
            let mut s = Statement::new(engine, snapshot);
            let scope = s.scope(window, ticker.as_ref());
            // The total over every intent, not only the returned ones, so shares stay shares under a limit.
            let text = format!(
                "SELECT {intent} AS intent, CAST(COUNT(*) AS BIGINT) AS intent_count, AVG(CAST({score} AS DOUBLE)) AS average_score, \
                 CAST(SUM(COUNT(*)) OVER () AS BIGINT) AS intent_total \
                 FROM {table} WHERE {scope} AND {intent} IS NOT NULL GROUP BY {intent} ORDER BY intent_count DESC, intent ASC LIMIT {limit}",
                intent = c::USER_INTENT,
                score = c::SENTIMENT_SCORE,
                table = s.table,
            );
            let cols = rows(engine, snapshot, s.finish(text)).await?;
            to_value(each(cols, |r, i| {
                let count = r.i64("intent_count", i)?;
                Ok(IntentShare {
                    intent: r.str("intent", i)?,
                    count,
                    share: count as f64 / r.i64("intent_total", i)?.max(1) as f64,
                    average_score: r.f64("average_score", i)?,
                })
            })?)?
        }
        Query::Records { .. } => return records(query, engine, snapshot).await,
    };
    Ok(Computed { data, next_cursor: None, path: RAW.to_string() })
}

const RAW: &str = "raw";

async fn summary(engine: &dyn QueryEngine, snapshot: &TableSnapshot, ticker: &Ticker, window: &Window) -> Result<SentimentSummary, EngineError> {
    let mut s = Statement::new(engine, snapshot);
    let scope = s.scope(window, Some(ticker));
    let text = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS message_count, AVG(CAST({score} AS DOUBLE)) AS average_score, \
         AVG(CAST({magnitude} AS DOUBLE)) AS average_magnitude, {counts} FROM {table} WHERE {scope}",
        score = c::SENTIMENT_SCORE,
        magnitude = c::SENTIMENT_MAGNITUDE,
        counts = polarity_counts(c::SENTIMENT_SCORE),
        table = s.table,
    );
    let totals = rows(engine, snapshot, s.finish(text)).await?.ok_or_else(|| EngineError::Shape("an aggregate returned no row".into()))?;

    let mut s = Statement::new(engine, snapshot);
    let scope = s.scope(window, Some(ticker));
    let text = format!(
        "SELECT emotion, AVG(CAST(intensity AS DOUBLE)) AS average_intensity, CAST(COUNT(*) AS BIGINT) AS records \
         FROM {entries} exploded GROUP BY emotion ORDER BY average_intensity DESC, emotion ASC LIMIT {limit}",
        limit = super::question::limits::MAX_EMOTIONS,
        entries = s.dialect.map_entries(c::EMOTION_INTENSITY_VECTOR, "emotion", "intensity", &s.table, &scope),
    );
    let emotions = each(rows(engine, snapshot, s.finish(text)).await?, |r, i| {
        Ok(EmotionIntensity { emotion: r.str("emotion", i)?, average_intensity: r.f64("average_intensity", i)?, records: r.i64("records", i)? })
    })?;

    let mut s = Statement::new(engine, snapshot);
    let scope = s.scope(window, Some(ticker));
    let text = format!(
        "SELECT {primary} AS emotion, CAST(COUNT(*) AS BIGINT) AS emotion_count FROM {table} WHERE {scope} AND {primary} IS NOT NULL \
         GROUP BY {primary} ORDER BY emotion_count DESC, emotion ASC LIMIT {limit}",
        limit = super::question::limits::MAX_EMOTIONS,
        primary = c::PRIMARY_EMOTION,
        table = s.table,
    );
    let primary_emotions = each(rows(engine, snapshot, s.finish(text)).await?, |r, i| {
        Ok(EmotionCount { emotion: r.str("emotion", i)?, count: r.i64("emotion_count", i)? })
    })?;

    let average_score = totals.opt_f64("average_score", 0)?;
    Ok(SentimentSummary {
        ticker: ticker.as_str().to_string(),
        message_count: totals.i64("message_count", 0)?,
        average_score,
        average_magnitude: totals.opt_f64("average_magnitude", 0)?,
        positive: totals.i64("positive", 0)?,
        negative: totals.i64("negative", 0)?,
        neutral: totals.i64("neutral", 0)?,
        label: average_score.map(label),
        emotions,
        primary_emotions,
    })
}

async fn toxicity(
    engine: &dyn QueryEngine,
    snapshot: &TableSnapshot,
    ticker: Option<&Ticker>,
    min_toxicity: f64,
    window: &Window,
    limit: u32,
) -> Result<ToxicityReport, EngineError> {
    let tox = c::TOXICITY_SCORE;
    let mut s = Statement::new(engine, snapshot);
    let scope = s.scope(window, ticker);
    // The threshold is compared as a 32-bit float, like the column, so `min_toxicity=0.7` includes a stored 0.7.
    let threshold = s.bind(SqlParam::Float(min_toxicity));
    let text = format!(
        "SELECT CAST(COUNT({tox}) AS BIGINT) AS scored, CAST(SUM(CASE WHEN {tox} >= CAST({threshold} AS FLOAT) THEN 1 ELSE 0 END) AS BIGINT) AS flagged, \
         AVG(CAST({tox} AS DOUBLE)) AS average_toxicity FROM {table} WHERE {scope}",
        table = s.table,
    );
    let totals = rows(engine, snapshot, s.finish(text)).await?.ok_or_else(|| EngineError::Shape("an aggregate returned no row".into()))?;

    let mut s = Statement::new(engine, snapshot);
    let scope = s.scope(window, ticker);
    let threshold = s.bind(SqlParam::Float(min_toxicity));
    let text = format!(
        "SELECT {id}, {ts}, {ticker}, {source}, {tox} AS toxicity, {text} FROM {table} \
         WHERE {scope} AND {tox} >= CAST({threshold} AS FLOAT) ORDER BY {tox} DESC, {ts} DESC, {id} ASC LIMIT {limit}",
        id = c::MESSAGE_ID,
        ts = c::EVENT_TIMESTAMP,
        ticker = c::TICKER,
        source = c::SOURCE_SYSTEM,
        text = c::TEXT_CONTENT,
        table = s.table,
    );
    let messages = each(rows(engine, snapshot, s.finish(text)).await?, |r, i| {
        Ok(FlaggedMessage {
            message_id: r.str(c::MESSAGE_ID, i)?,
            event_timestamp: r.timestamp(c::EVENT_TIMESTAMP, i)?,
            ticker: r.opt_str(c::TICKER, i)?,
            source_system: r.str(c::SOURCE_SYSTEM, i)?,
            toxicity_score: r.f64("toxicity", i)?,
            text_content: r.str(c::TEXT_CONTENT, i)?,
        })
    })?;
    Ok(ToxicityReport {
        min_toxicity,
        scored: totals.i64("scored", 0)?,
        flagged: totals.i64("flagged", 0)?,
        average_toxicity: totals.opt_f64("average_toxicity", 0)?,
        messages,
    })
}

async fn records(query: &Query, engine: &dyn QueryEngine, snapshot: &TableSnapshot) -> Result<Computed, EngineError> {
    let Query::Records { ticker, source_system, min_score, max_score, window, limit, cursor } = query else {
        return Err(EngineError::Shape("records() called for another query".into()));
    };
    let mut s = Statement::new(engine, snapshot);
    let mut scope = s.scope(window, ticker.as_ref());
    if let Some(source) = source_system {
        let p = s.bind(SqlParam::Text(source.as_str().to_string()));
        let _ = write!(scope, " AND {} = {p}", c::SOURCE_SYSTEM);
    }
    if let Some(min) = min_score {
        let p = s.bind(SqlParam::Float(*min));
        let _ = write!(scope, " AND {} >= CAST({p} AS FLOAT)", c::SENTIMENT_SCORE);
    }
    if let Some(max) = max_score {
        let p = s.bind(SqlParam::Float(*max));
        let _ = write!(scope, " AND {} <= CAST({p} AS FLOAT)", c::SENTIMENT_SCORE);
    }
    if let Some(cursor) = cursor {
        let at = s.bind(SqlParam::Timestamp(cursor.event_timestamp));
        let id = s.bind(SqlParam::Text(cursor.message_id.clone()));
        let _ = write!(scope, " AND ({ts} < {at} OR ({ts} = {at} AND {mid} < {id}))", ts = c::EVENT_TIMESTAMP, mid = c::MESSAGE_ID);
    }
    // One row beyond the page says whether another page exists.
    let text = format!(
        "SELECT * FROM {table} WHERE {scope} ORDER BY {ts} DESC, {mid} DESC LIMIT {fetch}",
        table = s.table,
        ts = c::EVENT_TIMESTAMP,
        mid = c::MESSAGE_ID,
        fetch = u64::from(*limit) + 1,
    );
    let mut page = each(rows(engine, snapshot, s.finish(text)).await?, record_row)?;
    let next_cursor = if page.len() > *limit as usize {
        page.truncate(*limit as usize);
        page.last().map(|last| super::params::Cursor { event_timestamp: last.event_timestamp, message_id: last.message_id.clone() }.encode())
    } else {
        None
    };
    Ok(Computed { data: to_value(page)?, next_cursor, path: RAW.to_string() })
}

fn record_row(r: &Columns, i: usize) -> Result<RecordRow, EngineError> {
    Ok(RecordRow {
        message_id: r.str(c::MESSAGE_ID, i)?,
        event_timestamp: r.timestamp(c::EVENT_TIMESTAMP, i)?,
        ingestion_timestamp: r.timestamp(c::INGESTION_TIMESTAMP, i)?,
        source_system: r.str(c::SOURCE_SYSTEM, i)?,
        text_content: r.str(c::TEXT_CONTENT, i)?,
        sentiment_score: r.f64(c::SENTIMENT_SCORE, i)?,
        sentiment_magnitude: r.opt_f64(c::SENTIMENT_MAGNITUDE, i)?,
        primary_emotion: r.opt_str(c::PRIMARY_EMOTION, i)?,
        emotion_intensity_vector: r.opt_float_map(c::EMOTION_INTENSITY_VECTOR, i)?,
        aspect_target_identification: r.opt_string_list(c::ASPECT_TARGET_IDENTIFICATION, i)?,
        aspect_based_sentiment: r.opt_float_map(c::ASPECT_BASED_SENTIMENT, i)?,
        sarcasm_detection: r.opt_bool(c::SARCASM_DETECTION, i)?,
        subjectivity_score: r.opt_f64(c::SUBJECTIVITY_SCORE, i)?,
        toxicity_score: r.opt_f64(c::TOXICITY_SCORE, i)?,
        entity_recognition: r.opt_entities(c::ENTITY_RECOGNITION, i)?,
        user_intent: r.opt_str(c::USER_INTENT, i)?,
        influence_score: r.opt_f64(c::INFLUENCE_SCORE, i)?,
        processing_version: r.opt_str(c::PROCESSING_VERSION, i)?,
        ticker: r.opt_str(c::TICKER, i)?,
        article_title: r.opt_str(c::ARTICLE_TITLE, i)?,
        source_url: r.opt_str(c::SOURCE_URL, i)?,
        model_name: r.opt_str(c::MODEL_NAME, i)?,
    })
}
