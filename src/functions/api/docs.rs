//! The API's description, kept in one table ([`ENDPOINTS`]) from which the OpenAPI document and the HTML docs
//! page are both rendered. Response schemas come from the answer types themselves (utoipa), so they cannot
//! drift from what is served; a test parses every documented example through the real parameter parser.

use serde_json::{json, Map, Value};
use utoipa::openapi::ComponentsBuilder;

use super::error::ErrorEnvelope;
use crate::query::answer::{
    AspectSentiment, EmotionCount, EmotionIntensity, EntityRef, EntitySentiment, FlaggedMessage, IntentShare, RecordRow, SentimentSummary,
    TickerVolume, TimeSeriesPoint, ToxicityReport, SCORE_DEFINITION,
};
use crate::query::params::Window;
use crate::query::{limits, QueryKind};

#[derive(Debug, Clone, Copy)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
}

#[derive(Debug, Clone, Copy)]
pub struct ParamDoc {
    pub name: &'static str,
    pub required: bool,
    pub kind: ParamType,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct EndpointDoc {
    pub kind: QueryKind,
    pub summary: &'static str,
    pub params: &'static [ParamDoc],
    /// A query string that must be accepted as documented.
    pub example: &'static str,
    /// The schema of `data`, and whether `data` is a list of it.
    pub schema: &'static str,
    pub list: bool,
}

const fn param(name: &'static str, required: bool, kind: ParamType, description: &'static str) -> ParamDoc {
    ParamDoc { name, required, kind, description }
}

/// Accepted by every endpoint: the answer is computed at that past snapshot.
pub const AS_OF: ParamDoc = param(
    "as_of",
    false,
    ParamType::String,
    "Time travel: a snapshot id (see /api/sentiment/snapshots), or an instant (RFC 3339 or YYYY-MM-DD) naming the snapshot that was current then. Default: the current snapshot. Unknown or expired snapshots are 404.",
);
/// Accepted by every endpoint: whether the answer includes what is staged but not yet committed.
pub const FRESH: ParamDoc = param(
    "fresh",
    false,
    ParamType::Boolean,
    "true: the current snapshot plus what is staged above it (acknowledged events within about a second); false: the committed snapshot alone (exactly repeatable). Default: the server's (SENTIMENT_LAKE_FRESH_READS, true). Not with as_of.",
);
const DAYS: ParamDoc = param(
    "days",
    false,
    ParamType::Integer,
    "Window of the last N days (1-366), ending at the next whole minute. Default 30 (as the seed's query methods). Not with from/to.",
);
const FROM: ParamDoc = param(
    "from",
    false,
    ParamType::String,
    "Window start, inclusive: RFC 3339 with offset or YYYY-MM-DD (UTC midnight). Default: `to` minus 30 days.",
);
const TO: ParamDoc =
    param("to", false, ParamType::String, "Window end, exclusive: RFC 3339 with offset or YYYY-MM-DD. Default: the next whole minute.");
const TICKER: ParamDoc = param("ticker", true, ParamType::String, "Ticker symbol, case-insensitive, `$` prefix allowed (AAPL, $tsla, BRK.B).");
const TICKER_OPT: ParamDoc = param("ticker", false, ParamType::String, "Only this ticker (case-insensitive).");
const LIMIT_LIST: ParamDoc = param("limit", false, ParamType::Integer, "Rows to return, 1-500, default 50.");

pub const ENDPOINTS: [EndpointDoc; 8] = [
    EndpointDoc {
        kind: QueryKind::TopTickers,
        summary: "Tickers by message volume, with their average sentiment (`avg_sentiment`, as the seed's dashboards read it, and `average_score`) and bullish/bearish shares.",
        params: &[DAYS, FROM, TO, param("limit", false, ParamType::Integer, "Tickers to return, 1-100, default 10.")],
        example: "days=1&limit=10",
        schema: "TickerVolume",
        list: true,
    },
    EndpointDoc {
        kind: QueryKind::TimeSeries,
        summary: "Sentiment of one ticker per time bucket (`time_bucket` and `avg_sentiment`, as the seed's dashboards read them, plus `bucket_start`, `average_score`, min/max score, magnitude, message and polarity counts). Buckets without messages are omitted.",
        params: &[
            TICKER,
            param("interval", false, ParamType::String, "Bucket width: minute, hour, day (default, as the seed's) or week (weeks start on Monday, UTC). At most 5,000 buckets per window."),
            DAYS,
            FROM,
            TO,
        ],
        example: "ticker=AAPL&interval=hour&days=2",
        schema: "TimeSeriesPoint",
        list: true,
    },
    EndpointDoc {
        kind: QueryKind::Summary,
        summary: "Overall sentiment of one ticker with its emotions (average intensities and primary-emotion counts, at most 50 of each).",
        params: &[TICKER, DAYS, FROM, TO],
        example: "ticker=AAPL&days=7",
        schema: "SentimentSummary",
        list: false,
    },
    EndpointDoc {
        kind: QueryKind::Entities,
        summary: "Sentiment per named entity found in messages, most mentioned first.",
        params: &[TICKER_OPT, param("entity_type", false, ParamType::String, "Only entities of this type (ORG, PERSON, TICKER, ...), case-insensitive."), DAYS, FROM, TO, LIMIT_LIST],
        example: "ticker=AAPL&entity_type=ORG&days=7",
        schema: "EntitySentiment",
        list: true,
    },
    EndpointDoc {
        kind: QueryKind::Aspects,
        summary: "Aspect-based sentiment of one ticker (earnings, guidance, legal, ...), most mentioned first.",
        params: &[TICKER, DAYS, FROM, TO, LIMIT_LIST],
        example: "ticker=AAPL&days=30",
        schema: "AspectSentiment",
        list: true,
    },
    EndpointDoc {
        kind: QueryKind::Toxicity,
        summary: "Moderation list: how many messages reach a toxicity threshold, and the most toxic of them.",
        params: &[param("min_toxicity", false, ParamType::Number, "Threshold in [0, 1], inclusive; default 0.5."), TICKER_OPT, DAYS, FROM, TO, LIMIT_LIST],
        example: "min_toxicity=0.7&days=1",
        schema: "ToxicityReport",
        list: false,
    },
    EndpointDoc {
        kind: QueryKind::Intents,
        summary: "Distribution of user intents, with each intent's share and average sentiment.",
        params: &[TICKER_OPT, DAYS, FROM, TO, LIMIT_LIST],
        example: "ticker=TSLA&days=7",
        schema: "IntentShare",
        list: true,
    },
    EndpointDoc {
        kind: QueryKind::Records,
        summary: "Stored records, newest first (event time, then message id), a page at a time; pass `meta.next_cursor` back as `cursor`.",
        params: &[
            TICKER_OPT,
            param("source_system", false, ParamType::String, "Only this source system (case-insensitive, up to 64 characters)."),
            param("min_score", false, ParamType::Number, "Only scores >= this, in [-1, 1]."),
            param("max_score", false, ParamType::Number, "Only scores <= this, in [-1, 1]."),
            DAYS,
            FROM,
            TO,
            param("limit", false, ParamType::Integer, "Records per page, 1-1000, default 100."),
            param("cursor", false, ParamType::String, "`meta.next_cursor` of the previous page (same other parameters)."),
        ],
        example: "ticker=AAPL&days=1&limit=100",
        schema: "RecordRow",
        list: true,
    },
];

pub fn path(kind: QueryKind) -> String {
    format!("/api/sentiment/{}", kind.name())
}

fn type_name(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
    }
}

fn meta_schema() -> Value {
    json!({
        "type": "object",
        "required": ["query", "engine", "window", "computed_at", "cache", "score_definition", "timezone"],
        "properties": {
            "query": {"type": "string", "description": "Endpoint name."},
            "engine": {"type": "string", "description": "Engine that computed the answer (embedded, dremio)."},
            "snapshot_id": {"type": ["integer", "null"], "format": "int64", "description": "Iceberg snapshot the answer was computed at; null for an empty table."},
            "window": {"$ref": "#/components/schemas/Window"},
            "computed_at": {"type": "string", "format": "date-time"},
            "cache": {"type": "string", "enum": ["hit", "miss", "shared", "bypass"], "description": "bypass: no cache configured or the cache is unreachable (degraded mode)."},
            "path": {"type": "string", "enum": ["rollup", "rollup+delta", "rollup+tail", "rollup+delta+tail", "raw"], "description": "How the answer was computed: from the rollup table (whole minutes, hours and days; raw rows for the edges of a window not on minute boundaries), from it plus the files of commits not yet rolled up, plus the summaries of staged segments (+tail), or from raw rows (records, toxicity, rollups off or not covering the snapshot; staged rows included when fresh)."},
            "freshness": {"type": ["object", "null"], "description": "What the answer includes: snapshot_id and committed_at; tail (included, entries, rows, bytes, omitted: why staged rows were left out) when fresh; sources: per ingestion source the last sequence number included, its enqueued time and whether it is staged; newest_enqueued_at."},
            "freshness_s": {"type": ["number", "null"], "description": "Seconds from the newest enqueued time the answer includes to now."},
            "elapsed_ms": {"type": "number"},
            "next_cursor": {"type": ["string", "null"], "description": "Records only: cursor of the next page, null on the last page."},
            "score_definition": {"type": "string"},
            "timezone": {"type": "string", "enum": ["UTC"]}
        }
    })
}

/// The OpenAPI 3.1 document.
pub fn openapi() -> Value {
    let components = ComponentsBuilder::new()
        .schema_from::<TickerVolume>()
        .schema_from::<TimeSeriesPoint>()
        .schema_from::<SentimentSummary>()
        .schema_from::<EmotionIntensity>()
        .schema_from::<EmotionCount>()
        .schema_from::<EntitySentiment>()
        .schema_from::<AspectSentiment>()
        .schema_from::<ToxicityReport>()
        .schema_from::<FlaggedMessage>()
        .schema_from::<IntentShare>()
        .schema_from::<RecordRow>()
        .schema_from::<EntityRef>()
        .schema_from::<Window>()
        .schema_from::<crate::engine::SnapshotInfo>()
        .schema_from::<ErrorEnvelope>()
        .schema_from::<super::error::ErrorBody>()
        .schema_from::<super::error::ErrorCode>()
        .build();
    let mut schemas = serde_json::to_value(&components).unwrap_or_default().get("schemas").cloned().unwrap_or_else(|| json!({}));
    schemas["Meta"] = meta_schema();

    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}});
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let item = json!({"$ref": format!("#/components/schemas/{}", endpoint.schema)});
        let data = if endpoint.list { json!({"type": "array", "items": item}) } else { item };
        let parameters: Vec<Value> = endpoint
            .params
            .iter()
            .chain([&AS_OF, &FRESH])
            .map(|p| json!({"name": p.name, "in": "query", "required": p.required, "description": p.description, "schema": {"type": type_name(p.kind)}}))
            .collect();
        paths.insert(
            path(endpoint.kind),
            json!({"get": {
                "operationId": endpoint.kind.name(),
                "summary": endpoint.summary,
                "parameters": parameters,
                "responses": {
                    "200": {"description": "The answer and how it was computed.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["data", "meta"],
                        "properties": {"data": data, "meta": {"$ref": "#/components/schemas/Meta"}}
                    }}}},
                    "400": error("Invalid parameter (`invalid_parameter`, with `parameter`)."),
                    "404": error("`as_of` names no snapshot the table has (`not_found`)."),
                    "429": error("Rate limited (`rate_limited`); see Retry-After."),
                    "503": error("Engine unavailable or at its concurrency limit (`engine_unavailable`; then with `Retry-After`)."),
                    "504": error("Timed out (`timeout`).")
                }
            }}),
        );
    }
    paths.insert(
        "/api/sentiment/snapshots".into(),
        json!({"get": {
            "operationId": "snapshots",
            "summary": "The table's history, newest first: snapshot id, commit time, operation, rows added, the ingestion sources each commit covered. Any id can be passed as `as_of`.",
            "parameters": [{"name": "limit", "in": "query", "required": false, "description": "Snapshots to return, 1-1000, default 100.", "schema": {"type": "integer"}}],
            "responses": {
                "200": {"description": "The snapshots.", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data", "meta"],
                    "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/SnapshotInfo"}}, "meta": {"type": "object"}}
                }}}},
                "400": error("Invalid parameter (`invalid_parameter`, with `parameter`)."),
                "503": error("Engine unavailable or at its concurrency limit (`engine_unavailable`; then with `Retry-After`).")
            }
        }}),
    );
    paths.insert("/api/quality".into(), json!({"get": {"operationId": "quality", "summary": "The quality table over a window: rows, duplicates, dead letters by rule and field, late and future-dated events per bucket, score histograms per model, and each model version's score drift (docs/quality.md).", "parameters": [
        {"name": "hours", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 168, "default": 24}},
        {"name": "bucket", "in": "query", "required": false, "description": "Bucket width in seconds (default a 48th of the window, at least 60); at most 5,000 buckets.", "schema": {"type": "integer", "minimum": 1, "maximum": 86400}}
    ], "responses": {"200": {"description": "`data` (`points`, `dead_letters_by_field`, `models`), `drift` (`threshold`, `window_s`, `baseline_s`, `min_rows`, `distributions`), `meta`."}, "400": {"description": "A parameter is out of range."}, "503": {"description": "The quality table cannot be read."}}}}));
    paths.insert("/api/health".into(), json!({"get": {"operationId": "health", "summary": "Table snapshot, pending segments, engine and cache status.", "responses": {"200": {"description": "Healthy."}, "503": {"description": "Degraded: a table cannot be read, commits keep failing, or a data signal fires (`signals`: a stalled committer or a dead-letter rate above its threshold; docs/operations.md; quiet sources and score drift are shown but do not degrade it)."}}}}));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sentiment-lake query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Financial sentiment over an Apache Iceberg table. Every answer is `{{data, meta}}`; errors are `{{error: {{code, message, parameter?}}}}`. {SCORE_DEFINITION}"),
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}}},
        "security": [{"functionKey": []}, {}],
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A self-contained docs page (no scripts or CDN: it renders offline and behind strict CSPs).
pub fn html() -> String {
    let mut body = String::new();
    for endpoint in ENDPOINTS {
        let rows: String = endpoint
            .params
            .iter()
            .chain([&AS_OF, &FRESH])
            .map(|p| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    p.name,
                    type_name(p.kind),
                    if p.required { "yes" } else { "" },
                    escape(p.description)
                )
            })
            .collect();
        let path = path(endpoint.kind);
        body.push_str(&format!(
            "<section><h2><code>GET {path}</code></h2><p>{}</p><p>Example: <a href=\"{path}?{ex}\"><code>{path}?{ex}</code></a></p>\
             <table><tr><th>parameter</th><th>type</th><th>required</th><th>meaning</th></tr>{rows}</table>\
             <p><code>data</code>: {} <code>{}</code> (see <a href=\"/api/openapi.json\">OpenAPI</a>).</p></section>",
            escape(endpoint.summary),
            if endpoint.list { "list of" } else { "one" },
            endpoint.schema,
            ex = escape(endpoint.example),
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sentiment-lake API</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}}</style></head>\
         <body><h1>sentiment-lake query API</h1><p>{}</p><p>Answers are <code>{{\"data\": ..., \"meta\": ...}}</code>; <code>meta</code> gives the window, snapshot id, engine and cache status. \
         Errors are <code>{{\"error\": {{\"code\", \"message\", \"parameter\"}}}}</code>. Windows: at most {} days; lists at most {} rows.</p>{body}</body></html>",
        escape(SCORE_DEFINITION),
        Window::MAX_DAYS,
        limits::MAX_LIST,
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::query::Query;

    #[test]
    fn every_endpoint_is_documented_once_and_its_example_parses() {
        for kind in QueryKind::ALL {
            let docs: Vec<_> = ENDPOINTS.iter().filter(|e| e.kind == kind).collect();
            assert_eq!(docs.len(), 1, "{kind:?}");
            Query::parse(kind, Some(docs[0].example), Utc::now()).unwrap_or_else(|e| panic!("{}: {e}", docs[0].example));
        }
    }

    #[test]
    fn documented_parameters_are_the_accepted_ones() {
        for endpoint in ENDPOINTS {
            // Each documented parameter is read by the parser: an invalid value is rejected as that parameter's.
            let needs_ticker = endpoint.params.iter().any(|p| p.name == "ticker" && p.required);
            for p in endpoint.params {
                let base = if needs_ticker && p.name != "ticker" { "ticker=AAPL&" } else { "" };
                let err = Query::parse(endpoint.kind, Some(&format!("{base}{}=%00", p.name)), Utc::now()).unwrap_err();
                assert_eq!(err.parameter, p.name, "{:?}: {err}", endpoint.kind);
            }
            // ...and nothing undocumented is.
            let base = if needs_ticker { "ticker=AAPL&" } else { "" };
            let err = Query::parse(endpoint.kind, Some(&format!("{base}undocumented=1")), Utc::now()).unwrap_err();
            assert_eq!(err.parameter, "undocumented");
        }
    }

    #[test]
    fn the_openapi_document_is_valid_openapi_and_references_only_defined_schemas() {
        let doc = openapi();
        let text = doc.to_string();
        let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).expect("utoipa parses the document");
        // The query endpoints, the snapshot history, quality and health.
        assert_eq!(parsed.paths.paths.len(), ENDPOINTS.len() + 3);
        assert!(doc["paths"]["/api/sentiment/timeseries"]["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "as_of"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (i, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[i + 21..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "undefined schema {name}");
        }
        assert!(html().contains("/api/sentiment/timeseries"));
    }
}
