//! The rollup table: partial aggregates as an Iceberg table beside the records, readable by any engine
//! (`SELECT ticker, SUM(count), SUM(score_sum) / SUM(count) FROM sentiment_rollup WHERE grain = 'day' AND
//! dimension = 'message' GROUP BY ticker`).
//!
//! Partitioned by `grain` and `bucket` (the period's day for minutes, its month for hours, its year for
//! days), so every partition holds a bounded number of rows whatever the grain, and a window touches a
//! few files of each grain.

use std::sync::Arc;

use arrow_array::builder::{Decimal128Builder, Float32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use iceberg::spec::{MapType, NestedField, PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};

use super::exact::{MagnitudeSum, ScoreSum};
use super::partial::{Dimension, Grain, Measures, OrderedF32, Partials, RowKey};
use crate::schema::arrow::{int_map_row, read_int_map, read_primitives, read_strings, IntMapColumn};

/// Column names of the rollup table.
pub mod column {
    pub const GRAIN: &str = "grain";
    pub const BUCKET: &str = "bucket";
    pub const PERIOD_START: &str = "period_start";
    pub const TICKER: &str = "ticker";
    pub const SOURCE_SYSTEM: &str = "source_system";
    pub const DIMENSION: &str = "dimension";
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const COUNT: &str = "count";
    /// Exact sums, in units of 2^-64 (`decimal(38, 0)`): divide by 2^64.
    pub const SCORE_SUM: &str = "score_sum_q64";
    pub const SCORE_MIN: &str = "score_min";
    pub const SCORE_MAX: &str = "score_max";
    pub const POSITIVE: &str = "positive";
    pub const NEGATIVE: &str = "negative";
    pub const NEUTRAL: &str = "neutral";
    /// In units of 2^-40.
    pub const MAGNITUDE_SUM: &str = "magnitude_sum_q40";
    pub const MAGNITUDE_COUNT: &str = "magnitude_count";
    pub const EMOTION_COUNTS: &str = "emotion_counts";
    /// Values in units of 2^-64.
    pub const EMOTION_SUMS: &str = "emotion_sums_q64";
    pub const PRIMARY_EMOTIONS: &str = "primary_emotions";
}

use column as c;

/// Sums are whole numbers of units ([`super::exact`]).
const SUM_SCALE: u32 = 0;

/// `(id, name, type, required)` of every scalar column, in order; the three map columns follow them.
fn scalar_columns() -> Vec<(i32, &'static str, PrimitiveType, bool)> {
    use PrimitiveType as P;
    vec![
        (1, c::GRAIN, P::String, true),
        (2, c::BUCKET, P::String, true),
        (3, c::PERIOD_START, P::Timestamptz, true),
        (4, c::TICKER, P::String, false),
        (5, c::SOURCE_SYSTEM, P::String, true),
        (6, c::DIMENSION, P::String, true),
        (7, c::NAME, P::String, false),
        (8, c::KIND, P::String, false),
        (9, c::COUNT, P::Long, true),
        (10, c::SCORE_SUM, P::Decimal { precision: 38, scale: SUM_SCALE }, false),
        (11, c::SCORE_MIN, P::Float, false),
        (12, c::SCORE_MAX, P::Float, false),
        (13, c::POSITIVE, P::Long, false),
        (14, c::NEGATIVE, P::Long, false),
        (15, c::NEUTRAL, P::Long, false),
        (16, c::MAGNITUDE_SUM, P::Decimal { precision: 38, scale: SUM_SCALE }, false),
        (17, c::MAGNITUDE_COUNT, P::Long, false),
    ]
}

/// `(id, name, key id, value id, value type)` of the map columns (message rows only).
fn map_columns() -> [(i32, &'static str, i32, i32, PrimitiveType); 3] {
    [
        (18, c::EMOTION_COUNTS, 21, 22, PrimitiveType::Long),
        (19, c::EMOTION_SUMS, 23, 24, PrimitiveType::Decimal { precision: 38, scale: SUM_SCALE }),
        (20, c::PRIMARY_EMOTIONS, 25, 26, PrimitiveType::Long),
    ]
}

pub fn rollup_schema() -> Schema {
    let mut fields: Vec<_> = scalar_columns()
        .into_iter()
        .map(|(id, name, kind, required)| {
            let field = if required {
                NestedField::required(id, name, Type::Primitive(kind))
            } else {
                NestedField::optional(id, name, Type::Primitive(kind))
            };
            Arc::new(field)
        })
        .collect();
    for (id, name, key, value, kind) in map_columns() {
        let map = MapType::new(
            NestedField::map_key_element(key, Type::Primitive(PrimitiveType::String)).into(),
            NestedField::map_value_element(value, Type::Primitive(kind), true).into(),
        );
        fields.push(Arc::new(NestedField::optional(id, name, Type::Map(map))));
    }
    Schema::builder().with_schema_id(0).with_fields(fields).build().expect("the rollup schema is valid")
}

pub fn rollup_partition_spec() -> UnboundPartitionSpec {
    crate::schema::partition_spec(&[(1, c::GRAIN, Transform::Identity), (2, c::BUCKET, Transform::Identity)])
}

/// Rows are sorted by these within a file, so one ticker's rows of a dimension are a few row groups.
pub const SORT_COLUMNS: &[&str] = &[c::DIMENSION, c::TICKER, c::PERIOD_START];

/// The Arrow form of [`rollup_schema`], as iceberg converts it (field ids in the metadata).
pub fn rollup_arrow_schema() -> SchemaRef {
    static SCHEMA: std::sync::LazyLock<SchemaRef> =
        std::sync::LazyLock::new(|| Arc::new(iceberg::arrow::schema_to_arrow_schema(&rollup_schema()).expect("the rollup schema converts to Arrow")));
    SCHEMA.clone()
}

/// The rows of `partials` as a batch of the rollup table.
pub fn to_batch(partials: &Partials) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = partials.len();
    let mut grain = StringBuilder::with_capacity(n, n * 6);
    let mut bucket = StringBuilder::with_capacity(n, n * 10);
    let mut period = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
    let (mut ticker, mut source, mut dimension, mut name, mut kind) =
        (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut count = Int64Builder::with_capacity(n);
    let mut score_sum = Decimal128Builder::with_capacity(n).with_precision_and_scale(38, SUM_SCALE as i8)?;
    let (mut score_min, mut score_max) = (Float32Builder::with_capacity(n), Float32Builder::with_capacity(n));
    let (mut positive, mut negative, mut neutral) = (Int64Builder::with_capacity(n), Int64Builder::with_capacity(n), Int64Builder::with_capacity(n));
    let mut magnitude_sum = Decimal128Builder::with_capacity(n).with_precision_and_scale(38, SUM_SCALE as i8)?;
    let mut magnitude_count = Int64Builder::with_capacity(n);
    let (mut emotion_counts, mut emotion_sums, mut primary) = (IntMapColumn::default(), IntMapColumn::default(), IntMapColumn::default());
    // Rows come in key order, so a period's rows follow each other: its bucket is formatted once.
    let mut last_bucket: Option<((Grain, i64), String)> = None;
    for (key, m) in &partials.rows {
        grain.append_value(key.grain.as_str());
        let this_period = (key.grain, key.period_start);
        if last_bucket.as_ref().is_none_or(|(p, _)| *p != this_period) {
            last_bucket = Some((this_period, key.grain.bucket(key.period_start)));
        }
        bucket.append_value(last_bucket.as_ref().map_or("", |(_, b)| b.as_str()));
        period.append_value(key.period_start);
        ticker.append_option(key.ticker.as_deref());
        source.append_value(&key.source_system);
        dimension.append_value(key.dimension.as_str());
        name.append_option(key.name.as_deref());
        kind.append_option(key.kind.as_deref());
        count.append_value(m.count);
        let fills = Fills::of(key.dimension);
        score_sum.append_option(fills.score_sum.then_some(m.score_sum.units()));
        score_min.append_option(m.score_min.filter(|_| fills.extremes).map(|v| v.0));
        score_max.append_option(m.score_max.filter(|_| fills.extremes).map(|v| v.0));
        for (builder, value) in [(&mut positive, m.positive), (&mut negative, m.negative), (&mut neutral, m.neutral)] {
            builder.append_option(fills.polarity.then_some(value));
        }
        magnitude_sum.append_option(fills.magnitude.then_some(m.magnitude_sum.units()));
        magnitude_count.append_option(fills.magnitude.then_some(m.magnitude_count));
        let message = key.dimension == Dimension::Message;
        emotion_counts.push(message.then(|| m.emotions.iter().map(|(e, (count, _))| (e.as_str(), *count as i128))));
        emotion_sums.push(message.then(|| m.emotions.iter().map(|(e, (_, sum))| (e.as_str(), sum.units()))));
        primary.push(message.then(|| m.primary_emotions.iter().map(|(e, count)| (e.as_str(), *count as i128))));
    }
    let schema = rollup_arrow_schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(grain.finish()),
        Arc::new(bucket.finish()),
        Arc::new(period.finish()),
        Arc::new(ticker.finish()),
        Arc::new(source.finish()),
        Arc::new(dimension.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(count.finish()),
        Arc::new(score_sum.finish()),
        Arc::new(score_min.finish()),
        Arc::new(score_max.finish()),
        Arc::new(positive.finish()),
        Arc::new(negative.finish()),
        Arc::new(neutral.finish()),
        Arc::new(magnitude_sum.finish()),
        Arc::new(magnitude_count.finish()),
        emotion_counts.finish(&schema, c::EMOTION_COUNTS)?,
        emotion_sums.finish(&schema, c::EMOTION_SUMS)?,
        primary.finish(&schema, c::PRIMARY_EMOTIONS)?,
    ];
    RecordBatch::try_new(schema, columns)
}

/// Which measures a dimension's rows carry (the others are null in the table).
struct Fills {
    score_sum: bool,
    extremes: bool,
    polarity: bool,
    magnitude: bool,
}

impl Fills {
    fn of(dimension: Dimension) -> Self {
        match dimension {
            Dimension::Message => Fills { score_sum: true, extremes: true, polarity: true, magnitude: true },
            Dimension::Aspect => Fills { score_sum: true, extremes: false, polarity: true, magnitude: false },
            Dimension::Intent | Dimension::Entity => Fills { score_sum: true, extremes: false, polarity: false, magnitude: false },
        }
    }
}

/// The rows of a batch read from the rollup table (any column order; the columns the scan selected),
/// passed to `each` one by one.
pub fn read_batch(batch: &RecordBatch, mut each: impl FnMut(RowKey, Measures)) -> Result<(), String> {
    let text = |name: &str| read_strings(batch, "rollup", name);
    let (grains, tickers, sources, dimensions, names, kinds) =
        (text(c::GRAIN)?, text(c::TICKER)?, text(c::SOURCE_SYSTEM)?, text(c::DIMENSION)?, text(c::NAME)?, text(c::KIND)?);
    let periods = read_primitives::<TimestampMicrosecondType>(batch, "rollup", c::PERIOD_START)?;
    let longs = |name: &str| read_primitives::<Int64Type>(batch, "rollup", name);
    let (counts, positives, negatives, neutrals, magnitude_counts) =
        (longs(c::COUNT)?, longs(c::POSITIVE)?, longs(c::NEGATIVE)?, longs(c::NEUTRAL)?, longs(c::MAGNITUDE_COUNT)?);
    let decimals = |name: &str, scale: u32| -> Result<arrow_array::PrimitiveArray<Decimal128Type>, String> {
        let column = batch.column_by_name(name).ok_or_else(|| format!("a rollup batch has no {name} column"))?;
        match column.data_type() {
            DataType::Decimal128(_, s) if *s as u32 == scale => Ok(column.as_primitive::<Decimal128Type>().clone()),
            other => Err(format!("rollup column {name} is {other}, not decimal(38, {scale})")),
        }
    };
    let (score_sums, magnitude_sums) = (decimals(c::SCORE_SUM, SUM_SCALE)?, decimals(c::MAGNITUDE_SUM, SUM_SCALE)?);
    let floats = |name: &str| read_primitives::<Float32Type>(batch, "rollup", name);
    let (minima, maxima) = (floats(c::SCORE_MIN)?, floats(c::SCORE_MAX)?);
    let (emotion_counts, emotion_sums, primary) =
        (read_int_map(batch, c::EMOTION_COUNTS)?, read_int_map(batch, c::EMOTION_SUMS)?, read_int_map(batch, c::PRIMARY_EMOTIONS)?);
    let opt_text = |a: &arrow_array::StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    let long_or_zero = |a: &arrow_array::PrimitiveArray<Int64Type>, i: usize| if a.is_valid(i) { a.value(i) } else { 0 };
    for i in 0..batch.num_rows() {
        let grain = Grain::parse(grains.value(i)).ok_or_else(|| format!("unknown grain {:?}", grains.value(i)))?;
        let dimension = Dimension::parse(dimensions.value(i)).ok_or_else(|| format!("unknown dimension {:?}", dimensions.value(i)))?;
        let key = RowKey {
            grain,
            period_start: periods.value(i),
            ticker: opt_text(&tickers, i),
            source_system: sources.value(i).to_string(),
            dimension,
            name: opt_text(&names, i),
            kind: opt_text(&kinds, i),
        };
        let measures = Measures {
            count: counts.value(i),
            score_sum: ScoreSum::from_units(if score_sums.is_valid(i) { score_sums.value(i) } else { 0 }),
            score_min: minima.is_valid(i).then(|| OrderedF32(minima.value(i))),
            score_max: maxima.is_valid(i).then(|| OrderedF32(maxima.value(i))),
            positive: long_or_zero(&positives, i),
            negative: long_or_zero(&negatives, i),
            neutral: long_or_zero(&neutrals, i),
            magnitude_sum: MagnitudeSum::from_units(if magnitude_sums.is_valid(i) { magnitude_sums.value(i) } else { 0 }),
            magnitude_count: long_or_zero(&magnitude_counts, i),
            emotions: Default::default(),
            primary_emotions: Default::default(),
        };
        let mut measures = measures;
        for (emotion, count) in int_map_row(emotion_counts.as_ref(), i)? {
            measures.emotions.entry(emotion).or_default().0 += count as i64;
        }
        for (emotion, sum) in int_map_row(emotion_sums.as_ref(), i)? {
            measures.emotions.entry(emotion).or_default().1 += ScoreSum::from_units(sum);
        }
        for (emotion, count) in int_map_row(primary.as_ref(), i)? {
            *measures.primary_emotions.entry(emotion).or_default() += count as i64;
        }
        each(key, measures);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::partial::RowFilter;
    use crate::schema::tests_support::full_record;
    use crate::schema::RecordBatchBuilder;

    #[test]
    fn partials_round_trip_through_the_table_schema() {
        let mut builder = RecordBatchBuilder::with_capacity(3);
        let mut record = full_record();
        builder.append(&record);
        record.sentiment_score = -0.4;
        record.ticker = None;
        builder.append(&record);
        let mut partials = Partials::default();
        partials.add_batch(&builder.finish().unwrap(), &Grain::ALL, &RowFilter::default()).unwrap();
        let batch = to_batch(&partials).unwrap();
        assert_eq!(batch.num_rows(), partials.len());
        let mut read = Partials::default();
        read_batch(&batch, |key, measures| read.merge_row(key, &measures)).unwrap();
        assert_eq!(read, partials, "every measure a dimension fills reads back as written");
    }
}
