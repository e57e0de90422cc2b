//! The seed's table: field ids, column names, types and nullability, the partition specs, and the Arrow
//! schema derived from them.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use ::arrow_schema::SchemaRef as ArrowSchemaRef;
use iceberg::spec::{
    ListType, MapType, NestedField, PrimitiveType, Schema, StructType, Transform, Type, UnboundPartitionField, UnboundPartitionSpec,
};

pub const ENTITY_TEXT: &str = "text";
pub const ENTITY_TYPE: &str = "type";

/// Longest ticker accepted, in characters. OCC option symbols (21) and crypto pairs fit; the bound keeps a
/// partition value (and so a path segment) short.
pub const MAX_TICKER_LEN: usize = 32;

/// The canonical form of a ticker: `$` prefix dropped, upper-cased; `None` unless it matches
/// `[A-Z0-9][A-Z0-9./:-]*` and has at most [`MAX_TICKER_LEN`] characters. Partition values and query
/// filters both go through here, so a query for `$aapl` finds rows ingested as `AAPL`. Characters such as
/// `/` and `.` are legitimate in tickers (`BRK/B`, `BTC/USD`); data file paths escape them (see
/// `lake::paths`), so no ticker can place a file outside the table.
pub fn normalize_ticker(value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim_start_matches('$');
    let ok = value.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
        && value.len() <= MAX_TICKER_LEN
        && value.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '/' | ':'));
    // Most tickers arrive in canonical form: copied only when upper-casing changes them.
    let canonical = if value.bytes().any(|b| b.is_ascii_lowercase()) { Cow::Owned(value.to_ascii_uppercase()) } else { Cow::Borrowed(value) };
    ok.then_some(canonical)
}

/// Top-level field ids of the sentiment table, in schema order.
pub mod field_id {
    pub const MESSAGE_ID: i32 = 1;
    pub const EVENT_TIMESTAMP: i32 = 2;
    pub const INGESTION_TIMESTAMP: i32 = 3;
    pub const SOURCE_SYSTEM: i32 = 4;
    pub const TEXT_CONTENT: i32 = 5;
    pub const SENTIMENT_SCORE: i32 = 6;
    pub const SENTIMENT_MAGNITUDE: i32 = 7;
    pub const PRIMARY_EMOTION: i32 = 8;
    pub const EMOTION_INTENSITY_VECTOR: i32 = 9;
    pub const ASPECT_TARGET_IDENTIFICATION: i32 = 10;
    pub const ASPECT_BASED_SENTIMENT: i32 = 11;
    pub const SARCASM_DETECTION: i32 = 12;
    pub const SUBJECTIVITY_SCORE: i32 = 13;
    pub const TOXICITY_SCORE: i32 = 14;
    pub const ENTITY_RECOGNITION: i32 = 15;
    pub const USER_INTENT: i32 = 16;
    pub const INFLUENCE_SCORE: i32 = 17;
    pub const PROCESSING_VERSION: i32 = 18;
    pub const TICKER: i32 = 19;
    pub const ARTICLE_TITLE: i32 = 20;
    pub const SOURCE_URL: i32 = 21;
    pub const MODEL_NAME: i32 = 22;
    // Nested ids, assigned after the top level so that top-level ids stay 1..=22.
    pub const EMOTION_KEY: i32 = 23;
    pub const EMOTION_VALUE: i32 = 24;
    pub const ASPECT_ELEMENT: i32 = 25;
    pub const ASPECT_SENTIMENT_KEY: i32 = 26;
    pub const ASPECT_SENTIMENT_VALUE: i32 = 27;
    pub const ENTITY_ELEMENT: i32 = 28;
    pub const ENTITY_TEXT: i32 = 29;
    pub const ENTITY_TYPE: i32 = 30;
}

/// Column names, shared by the validator, the Arrow builder and the query layer.
pub mod column {
    pub const MESSAGE_ID: &str = "message_id";
    pub const EVENT_TIMESTAMP: &str = "event_timestamp";
    pub const INGESTION_TIMESTAMP: &str = "ingestion_timestamp";
    pub const SOURCE_SYSTEM: &str = "source_system";
    pub const TEXT_CONTENT: &str = "text_content";
    pub const SENTIMENT_SCORE: &str = "sentiment_score";
    pub const SENTIMENT_MAGNITUDE: &str = "sentiment_magnitude";
    pub const PRIMARY_EMOTION: &str = "primary_emotion";
    pub const EMOTION_INTENSITY_VECTOR: &str = "emotion_intensity_vector";
    pub const ASPECT_TARGET_IDENTIFICATION: &str = "aspect_target_identification";
    pub const ASPECT_BASED_SENTIMENT: &str = "aspect_based_sentiment";
    pub const SARCASM_DETECTION: &str = "sarcasm_detection";
    pub const SUBJECTIVITY_SCORE: &str = "subjectivity_score";
    pub const TOXICITY_SCORE: &str = "toxicity_score";
    pub const ENTITY_RECOGNITION: &str = "entity_recognition";
    pub const USER_INTENT: &str = "user_intent";
    pub const INFLUENCE_SCORE: &str = "influence_score";
    pub const PROCESSING_VERSION: &str = "processing_version";
    pub const TICKER: &str = "ticker";
    pub const ARTICLE_TITLE: &str = "article_title";
    pub const SOURCE_URL: &str = "source_url";
    pub const MODEL_NAME: &str = "model_name";

    /// Columns whose values are (nearly) distinct per row: ids and free text. Parquet writers leave them
    /// without a dictionary, which would only cost the hashing and then be abandoned.
    pub const UNIQUE_PER_ROW: &[&str] = &[MESSAGE_ID, TEXT_CONTENT, ARTICLE_TITLE, SOURCE_URL];
}

fn string() -> Type {
    Type::Primitive(PrimitiveType::String)
}
fn float() -> Type {
    Type::Primitive(PrimitiveType::Float)
}
fn timestamptz() -> Type {
    Type::Primitive(PrimitiveType::Timestamptz)
}

/// Map values are required: every value the writer stores is a validated float, and it is what PyIceberg
/// creates for the seed's `MapType.of(StringType(), FloatType())`. Tables whose values are optional accept
/// these rows as well (see `lake::compat`).
fn string_to_float_map(key_id: i32, value_id: i32) -> Type {
    Type::Map(MapType::new(NestedField::map_key_element(key_id, string()).into(), NestedField::map_value_element(value_id, float(), true).into()))
}

/// The Iceberg schema of the sentiment table (schema id 0): the seed's "Advanced Schema Design" exactly
/// (names, ids, types, required flags; see `shared/reference/seed-contract.md`).
pub fn sentiment_schema() -> Schema {
    use column as c;
    use field_id as id;
    let entity = Type::Struct(StructType::new(vec![
        NestedField::required(id::ENTITY_TEXT, ENTITY_TEXT, string()).into(),
        NestedField::required(id::ENTITY_TYPE, ENTITY_TYPE, string()).into(),
    ]));
    let fields = vec![
        NestedField::required(id::MESSAGE_ID, c::MESSAGE_ID, string()),
        NestedField::required(id::EVENT_TIMESTAMP, c::EVENT_TIMESTAMP, timestamptz()),
        NestedField::required(id::INGESTION_TIMESTAMP, c::INGESTION_TIMESTAMP, timestamptz()),
        NestedField::required(id::SOURCE_SYSTEM, c::SOURCE_SYSTEM, string()),
        NestedField::required(id::TEXT_CONTENT, c::TEXT_CONTENT, string()),
        NestedField::required(id::SENTIMENT_SCORE, c::SENTIMENT_SCORE, float()),
        NestedField::required(id::SENTIMENT_MAGNITUDE, c::SENTIMENT_MAGNITUDE, float()),
        NestedField::required(id::PRIMARY_EMOTION, c::PRIMARY_EMOTION, string()),
        NestedField::optional(id::EMOTION_INTENSITY_VECTOR, c::EMOTION_INTENSITY_VECTOR, string_to_float_map(id::EMOTION_KEY, id::EMOTION_VALUE)),
        NestedField::optional(
            id::ASPECT_TARGET_IDENTIFICATION,
            c::ASPECT_TARGET_IDENTIFICATION,
            Type::List(ListType::new(NestedField::list_element(id::ASPECT_ELEMENT, string(), true).into())),
        ),
        NestedField::optional(
            id::ASPECT_BASED_SENTIMENT,
            c::ASPECT_BASED_SENTIMENT,
            string_to_float_map(id::ASPECT_SENTIMENT_KEY, id::ASPECT_SENTIMENT_VALUE),
        ),
        NestedField::required(id::SARCASM_DETECTION, c::SARCASM_DETECTION, Type::Primitive(PrimitiveType::Boolean)),
        NestedField::required(id::SUBJECTIVITY_SCORE, c::SUBJECTIVITY_SCORE, float()),
        NestedField::required(id::TOXICITY_SCORE, c::TOXICITY_SCORE, float()),
        NestedField::optional(
            id::ENTITY_RECOGNITION,
            c::ENTITY_RECOGNITION,
            Type::List(ListType::new(NestedField::list_element(id::ENTITY_ELEMENT, entity, true).into())),
        ),
        NestedField::required(id::USER_INTENT, c::USER_INTENT, string()),
        NestedField::optional(id::INFLUENCE_SCORE, c::INFLUENCE_SCORE, float()),
        NestedField::required(id::PROCESSING_VERSION, c::PROCESSING_VERSION, string()),
        NestedField::optional(id::TICKER, c::TICKER, string()),
        NestedField::optional(id::ARTICLE_TITLE, c::ARTICLE_TITLE, string()),
        NestedField::optional(id::SOURCE_URL, c::SOURCE_URL, string()),
        NestedField::optional(id::MODEL_NAME, c::MODEL_NAME, string()),
    ];
    Schema::builder().with_schema_id(0).with_fields(fields.into_iter().map(Arc::new)).build().expect("the sentiment schema is statically valid")
}

/// How a new records table is partitioned: a choice at creation (`--layout`); writers follow whatever spec a
/// loaded table has. Files are sorted by (ticker, event_timestamp) under every layout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The seed's spec: day(event_timestamp), ticker, source_system. Many small files per commit.
    #[default]
    Seed,
    /// day(event_timestamp) only: one file per day per commit, ticker filters pruned by the sorted files'
    /// column statistics.
    Day,
    /// day(event_timestamp), bucket(8, ticker).
    DayBucket,
}

impl Layout {
    pub fn partition_spec(self) -> UnboundPartitionSpec {
        match self {
            Layout::Seed => default_partition_spec(),
            Layout::Day => partition_spec(&[(field_id::EVENT_TIMESTAMP, "event_timestamp_day", Transform::Day)]),
            Layout::DayBucket => partition_spec(&[
                (field_id::EVENT_TIMESTAMP, "event_timestamp_day", Transform::Day),
                (field_id::TICKER, "ticker_bucket", Transform::Bucket(8)),
            ]),
        }
    }
}

/// The first partition field id (Iceberg numbers partition fields from 1000).
pub const FIRST_PARTITION_FIELD_ID: i32 = 1000;

/// A spec of `(source id, name, transform)` fields with explicit partition field ids from 1000, the ids a
/// catalog would assign anyway: some REST catalogs refuse fields without one (lakana answers 422).
///
/// Panics if the fields are not a valid spec (two with one name or one source and transform): callers pass
/// constants.
pub fn partition_spec(fields: &[(i32, &str, Transform)]) -> UnboundPartitionSpec {
    let fields = fields.iter().zip(FIRST_PARTITION_FIELD_ID..).map(|(&(source_id, name, transform), field_id)| {
        UnboundPartitionField::builder().source_id(source_id).field_id(field_id).name(name.to_string()).transform(transform).build()
    });
    UnboundPartitionSpec::builder().add_partition_fields(fields).expect("partition specs of constant fields are valid").build()
}

/// day(event_timestamp), identity(ticker), identity(source_system): the spec new tables are created with.
///
/// Writers never assume it: they partition by whatever spec the loaded table has as its default.
pub fn default_partition_spec() -> UnboundPartitionSpec {
    partition_spec(&[
        (field_id::EVENT_TIMESTAMP, "event_timestamp_day", Transform::Day),
        (field_id::TICKER, column::TICKER, Transform::Identity),
        (field_id::SOURCE_SYSTEM, column::SOURCE_SYSTEM, Transform::Identity),
    ])
}

/// The Arrow schema matching [`sentiment_schema`], with `PARQUET:field_id` metadata on every field.
pub fn sentiment_arrow_schema() -> ArrowSchemaRef {
    static SCHEMA: LazyLock<ArrowSchemaRef> =
        LazyLock::new(|| Arc::new(iceberg::arrow::schema_to_arrow_schema(&sentiment_schema()).expect("the sentiment schema converts to Arrow")));
    SCHEMA.clone()
}

/// Records for other modules' tests.
#[cfg(test)]
pub(crate) mod tests_support {

    use chrono::TimeZone;

    use crate::schema::record::{Entity, SentimentRecord};

    pub fn full_record() -> SentimentRecord<'static> {
        SentimentRecord {
            message_id: "m-1".into(),
            event_timestamp: chrono::Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
            ingestion_timestamp: chrono::Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 1).unwrap(),
            source_system: "twitter".into(),
            text_content: "$AAPL beats estimates".into(),
            sentiment_score: 0.8,
            sentiment_magnitude: 0.9,
            primary_emotion: "joy".into(),
            emotion_intensity_vector: Some(vec![("fear".into(), 0.1), ("joy".into(), 0.7)]),
            aspect_target_identification: Some(vec!["earnings".into()]),
            aspect_based_sentiment: Some(vec![("earnings".into(), 0.8)]),
            sarcasm_detection: false,
            subjectivity_score: 0.3,
            toxicity_score: 0.0,
            entity_recognition: Some(vec![Entity { text: "AAPL".into(), entity_type: "TICKER".into() }]),
            user_intent: "news".into(),
            influence_score: Some(0.5),
            processing_version: "v1".into(),
            ticker: Some("AAPL".into()),
            article_title: None,
            source_url: None,
            model_name: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_ids_are_one_to_twenty_two_in_order() {
        let schema = sentiment_schema();
        let ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
        assert_eq!(ids, (1..=22).collect::<Vec<_>>());
        assert_eq!(schema.highest_field_id(), field_id::ENTITY_TYPE);
    }

    /// The seed's table, field by field: (id, name, required).
    #[test]
    fn names_ids_and_required_flags_are_the_seeds() {
        let seed = [
            (1, "message_id", true),
            (2, "event_timestamp", true),
            (3, "ingestion_timestamp", true),
            (4, "source_system", true),
            (5, "text_content", true),
            (6, "sentiment_score", true),
            (7, "sentiment_magnitude", true),
            (8, "primary_emotion", true),
            (9, "emotion_intensity_vector", false),
            (10, "aspect_target_identification", false),
            (11, "aspect_based_sentiment", false),
            (12, "sarcasm_detection", true),
            (13, "subjectivity_score", true),
            (14, "toxicity_score", true),
            (15, "entity_recognition", false),
            (16, "user_intent", true),
            (17, "influence_score", false),
            (18, "processing_version", true),
            (19, "ticker", false),
            (20, "article_title", false),
            (21, "source_url", false),
            (22, "model_name", false),
        ];
        let schema = sentiment_schema();
        let actual: Vec<(i32, &str, bool)> = schema.as_struct().fields().iter().map(|f| (f.id, f.name.as_str(), f.required)).collect();
        assert_eq!(actual, seed);
    }

    #[test]
    fn default_spec_binds_to_the_schema() {
        let spec = default_partition_spec().bind(sentiment_schema()).unwrap();
        let ids: Vec<i32> = spec.fields().iter().map(|f| f.field_id).collect();
        assert_eq!(ids, vec![1000, 1001, 1002], "explicit, as REST catalogs want them");
        let transforms: Vec<_> = spec.fields().iter().map(|f| (f.source_id, f.transform)).collect();
        assert_eq!(
            transforms,
            vec![
                (field_id::EVENT_TIMESTAMP, Transform::Day),
                (field_id::TICKER, Transform::Identity),
                (field_id::SOURCE_SYSTEM, Transform::Identity)
            ]
        );
    }

    #[test]
    fn arrow_schema_carries_field_ids() {
        let schema = sentiment_arrow_schema();
        assert_eq!(schema.fields().len(), 22);
        let id = schema.field(18).metadata().get("PARQUET:field_id").cloned();
        assert_eq!(id.as_deref(), Some("19"));
    }
}
