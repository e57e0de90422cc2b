//! Partial aggregates of sentiment records: what a rollup row holds, and how raw rows become them.
//!
//! A row of the rollup is the aggregate of the records of one period (a minute, an hour or a day, UTC),
//! one ticker and one source, for one dimension: the messages themselves (`message`, with their emotions),
//! or the aspects, intents or entities they carry. Every measure
//! is a count, an exact sum ([`super::exact`]), a minimum or a maximum, so partial rows of the same key
//! merge into the same numbers in any order: those a commit wrote, those maintenance re-aggregated, and
//! those computed from raw rows at query time.

use std::collections::{BTreeMap, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, ListArray, MapArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, TimeUnit};

use super::exact::{self, MagnitudeSum, ScoreSum};
use crate::schema::column as c;

const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Scores above this are positive, below its negation negative (compared as 32-bit floats, as the SQL
/// path compares them: `crate::query::answer::NEUTRAL_BAND`).
pub const NEUTRAL_BAND: f32 = 0.05;

/// How long a rollup row's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Minute,
    Hour,
    Day,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Minute, Grain::Hour, Grain::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Grain::ALL.into_iter().find(|g| g.as_str() == text)
    }

    pub fn micros(self) -> i64 {
        match self {
            Grain::Minute => MINUTE,
            Grain::Hour => HOUR,
            Grain::Day => DAY,
        }
    }

    /// The start of the period `at` (microseconds since the epoch, UTC) falls in.
    pub fn start(self, at: i64) -> i64 {
        at.div_euclid(self.micros()) * self.micros()
    }

    /// The first period start at or after `at`.
    pub fn ceil(self, at: i64) -> i64 {
        let start = self.start(at);
        if start == at {
            at
        } else {
            start.saturating_add(self.micros())
        }
    }

    /// The rollup table's partition value for a period of this grain: its day for minutes, its month for
    /// hours, its year for days, so a partition holds a bounded number of rows of any grain.
    pub fn bucket(self, period_start: i64) -> String {
        let at = chrono::DateTime::from_timestamp_micros(period_start).unwrap_or_default();
        match self {
            Grain::Minute => at.format("%Y-%m-%d").to_string(),
            Grain::Hour => at.format("%Y-%m").to_string(),
            Grain::Day => at.format("%Y").to_string(),
        }
    }
}

/// What a rollup row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// The messages: count, score, magnitude, polarity, and per emotion the intensities' count and sum
    /// and the messages whose primary emotion it is.
    Message,
    /// One aspect's scores (`name`): entries, sum, polarity.
    Aspect,
    /// Messages whose intent is `name`, and the sum of their scores.
    Intent,
    /// Mentions of the entity `name` of type `kind`, and the sum of the mentioning messages' scores.
    Entity,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [Dimension::Message, Dimension::Aspect, Dimension::Intent, Dimension::Entity];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Message => "message",
            Dimension::Aspect => "aspect",
            Dimension::Intent => "intent",
            Dimension::Entity => "entity",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

/// Which group a rollup row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub grain: Grain,
    pub period_start: i64,
    pub ticker: Option<String>,
    pub source_system: String,
    pub dimension: Dimension,
    /// The aspect, intent or entity text; none for messages.
    pub name: Option<String>,
    /// The entity's type; none for the other dimensions.
    pub kind: Option<String>,
}

/// A rollup row's numbers. Which ones a dimension fills is in [`Dimension`]'s docs; the others stay at
/// their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measures {
    pub count: i64,
    pub score_sum: ScoreSum,
    pub score_min: Option<OrderedF32>,
    pub score_max: Option<OrderedF32>,
    pub positive: i64,
    pub negative: i64,
    pub neutral: i64,
    pub magnitude_sum: MagnitudeSum,
    pub magnitude_count: i64,
    /// Per emotion: how many intensities, and their sum.
    pub emotions: BTreeMap<String, (i64, ScoreSum)>,
    /// Per emotion: how many messages had it as their primary one.
    pub primary_emotions: BTreeMap<String, i64>,
}

/// A 32-bit float compared by value (never NaN here: validation refuses it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderedF32(pub f32);

impl Eq for OrderedF32 {}

impl Measures {
    pub fn merge(&mut self, other: &Measures) {
        self.count += other.count;
        self.score_sum += other.score_sum;
        self.score_min = match (self.score_min, other.score_min) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        self.score_max = match (self.score_max, other.score_max) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        self.positive += other.positive;
        self.negative += other.negative;
        self.neutral += other.neutral;
        self.magnitude_sum += other.magnitude_sum;
        self.magnitude_count += other.magnitude_count;
        for (emotion, (count, sum)) in &other.emotions {
            let entry = self.emotions.entry(emotion.clone()).or_default();
            entry.0 += count;
            entry.1 += *sum;
        }
        for (emotion, count) in &other.primary_emotions {
            *self.primary_emotions.entry(emotion.clone()).or_default() += count;
        }
    }
}

/// Partial aggregates by row key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partials {
    pub rows: BTreeMap<RowKey, Measures>,
}

/// Which rows of a batch to take in: all of them (a commit's rows), or those of a window and ticker (an
/// answer's raw part); and from which minute on they are also rolled up by the minute.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// `[from, to)` in microseconds.
    pub window: Option<(i64, i64)>,
    pub ticker: Option<String>,
    /// Minute rows only for the minutes starting at or after this (the rollup's minute floor); hour and
    /// day rows count every row taken in.
    pub minutes_from: Option<i64>,
}

impl RowFilter {
    fn keeps(&self, at: i64, ticker: Option<&str>) -> bool {
        self.window.is_none_or(|(from, to)| at >= from && at < to) && self.ticker.as_deref().is_none_or(|t| ticker == Some(t))
    }
}

impl Partials {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn merge_row(&mut self, key: RowKey, measures: &Measures) {
        self.rows.entry(key).or_default().merge(measures);
    }

    pub fn merge(&mut self, other: Partials) {
        for (key, measures) in other.rows {
            self.merge_row(key, &measures);
        }
    }

    /// Adds the records of `batch` (in the records table's Arrow schema, any column order, extra columns
    /// ignored) that `filter` keeps, at each grain of `grains`.
    ///
    /// Every commit, staged segment and fresh answer goes through here, so rows are first summed per
    /// minute under keys of interned strings ([`MinuteSums`]: no allocation per row), hours and days are
    /// folded from the minutes under the same keys (the same numbers: every measure merges in any order),
    /// and only then does each sum become a row with its strings.
    pub fn add_batch(&mut self, batch: &RecordBatch, grains: &[Grain], filter: &RowFilter) -> Result<(), String> {
        let records = Columns::of(batch)?;
        let mut minutes = MinuteSums::default();
        for row in 0..batch.num_rows() {
            let at = records.times.value(row);
            let ticker = records.tickers.is_valid(row).then(|| records.tickers.value(row));
            if !filter.keeps(at, ticker) {
                continue;
            }
            // A row before the minute floor gets no minute row: summed by its hour straight away (an hour
            // starts on a minute, and the hours and days fold from it alike), a few keys per hour of sparse
            // history instead of one per row and dimension.
            let period = if filter.minutes_from.is_some_and(|floor| at < floor) { Grain::Hour.start(at) } else { Grain::Minute.start(at) };
            minutes.add(&records, row, period, ticker);
        }
        for (key, measures) in minutes.finish(grains, filter.minutes_from) {
            match self.rows.entry(key) {
                std::collections::btree_map::Entry::Vacant(vacant) => {
                    vacant.insert(measures);
                }
                std::collections::btree_map::Entry::Occupied(occupied) => occupied.into_mut().merge(&measures),
            }
        }
        Ok(())
    }
}

/// No string: a key part that is absent (a row without a ticker, a message's name and kind).
const NONE: u32 = u32::MAX;

/// The maps of one batch's sums: hashed with foldhash (random per process, so crafted strings cannot
/// force collisions), several times faster than SipHash on these small keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Strings of one batch, numbered as they are first seen.
#[derive(Default)]
struct Interned<'a> {
    ids: FastMap<&'a str, u32>,
    texts: Vec<&'a str>,
}

impl<'a> Interned<'a> {
    fn id(&mut self, text: Option<&'a str>) -> u32 {
        let Some(text) = text else { return NONE };
        *self.ids.entry(text).or_insert_with(|| {
            self.texts.push(text);
            (self.texts.len() - 1) as u32
        })
    }

    fn text(&self, id: u32) -> Option<String> {
        (id != NONE).then(|| self.texts[id as usize].to_string())
    }
}

/// A minute's key: the period start and interned ticker, source, name and kind.
type MinuteKey = (i64, u32, u32, Dimension, u32, u32);

/// A minute's measures with interned emotion names: [`Measures`] without a string per row.
#[derive(Default)]
struct MinuteMeasures {
    count: i64,
    score_sum: ScoreSum,
    score_min: Option<f32>,
    score_max: Option<f32>,
    positive: i64,
    negative: i64,
    neutral: i64,
    magnitude_sum: MagnitudeSum,
    magnitude_count: i64,
    emotions: Vec<(u32, i64, ScoreSum)>,
    primary_emotions: Vec<(u32, i64)>,
}

impl MinuteMeasures {
    fn merge(&mut self, other: &MinuteMeasures) {
        self.count += other.count;
        self.score_sum += other.score_sum;
        self.score_min = match (self.score_min, other.score_min) {
            (Some(a), Some(b)) => Some(if b < a { b } else { a }),
            (a, b) => a.or(b),
        };
        self.score_max = match (self.score_max, other.score_max) {
            (Some(a), Some(b)) => Some(if b > a { b } else { a }),
            (a, b) => a.or(b),
        };
        (self.positive, self.negative, self.neutral) = (self.positive + other.positive, self.negative + other.negative, self.neutral + other.neutral);
        self.magnitude_sum += other.magnitude_sum;
        self.magnitude_count += other.magnitude_count;
        for &(id, count, sum) in &other.emotions {
            match self.emotions.iter_mut().find(|(e, _, _)| *e == id) {
                Some((_, c, s)) => {
                    *c += count;
                    *s += sum;
                }
                None => self.emotions.push((id, count, sum)),
            }
        }
        for &(id, count) in &other.primary_emotions {
            match self.primary_emotions.iter_mut().find(|(e, _)| *e == id) {
                Some((_, c)) => *c += count,
                None => self.primary_emotions.push((id, count)),
            }
        }
    }

    fn scored(&mut self, score: f32) {
        self.count += 1;
        self.score_sum += exact::score(score);
    }

    fn polarity(&mut self, value: f32) {
        if value > NEUTRAL_BAND {
            self.positive += 1;
        } else if value < -NEUTRAL_BAND {
            self.negative += 1;
        } else {
            self.neutral += 1;
        }
    }

    fn into_measures(self, names: &Interned<'_>) -> Measures {
        let name = |id: u32| names.text(id).unwrap_or_default();
        Measures {
            count: self.count,
            score_sum: self.score_sum,
            score_min: self.score_min.map(OrderedF32),
            score_max: self.score_max.map(OrderedF32),
            positive: self.positive,
            negative: self.negative,
            neutral: self.neutral,
            magnitude_sum: self.magnitude_sum,
            magnitude_count: self.magnitude_count,
            emotions: self.emotions.into_iter().map(|(id, count, sum)| (name(id), (count, sum))).collect(),
            primary_emotions: self.primary_emotions.into_iter().map(|(id, count)| (name(id), count)).collect(),
        }
    }
}

/// Sums of one batch's rows per minute and dimension.
#[derive(Default)]
struct MinuteSums<'a> {
    strings: Interned<'a>,
    sums: FastMap<MinuteKey, MinuteMeasures>,
}

impl<'a> MinuteSums<'a> {
    fn add(&mut self, records: &'a Columns, row: usize, minute: i64, ticker: Option<&'a str>) {
        let (ticker, source) = (self.strings.id(ticker), self.strings.id(Some(records.sources.value(row))));
        let score = records.scores.value(row);
        let message = self.sums.entry((minute, ticker, source, Dimension::Message, NONE, NONE)).or_default();
        message.scored(score);
        message.score_min = Some(message.score_min.map_or(score, |m| if score < m { score } else { m }));
        message.score_max = Some(message.score_max.map_or(score, |m| if score > m { score } else { m }));
        message.polarity(score);
        if let Some(magnitudes) = records.magnitudes.as_ref().filter(|m| m.is_valid(row)) {
            message.magnitude_sum += exact::magnitude(magnitudes.value(row));
            message.magnitude_count += 1;
        }
        for (emotion, intensity) in map_entries(records.emotions.as_ref(), row) {
            let id = self.strings.id(Some(emotion));
            match message.emotions.iter_mut().find(|(e, _, _)| *e == id) {
                Some((_, count, sum)) => {
                    *count += 1;
                    *sum += exact::score(intensity);
                }
                None => message.emotions.push((id, 1, exact::score(intensity))),
            }
        }
        if let Some(primary) = records.primary.as_ref().filter(|p| p.is_valid(row)) {
            let id = self.strings.id(Some(primary.value(row)));
            match message.primary_emotions.iter_mut().find(|(e, _)| *e == id) {
                Some((_, count)) => *count += 1,
                None => message.primary_emotions.push((id, 1)),
            }
        }
        for (aspect, aspect_score) in map_entries(records.aspects.as_ref(), row) {
            let name = self.strings.id(Some(aspect));
            let measures = self.sums.entry((minute, ticker, source, Dimension::Aspect, name, NONE)).or_default();
            measures.scored(aspect_score);
            measures.polarity(aspect_score);
        }
        if let Some(intent) = records.intents.as_ref().filter(|i| i.is_valid(row)) {
            let name = self.strings.id(Some(intent.value(row)));
            self.sums.entry((minute, ticker, source, Dimension::Intent, name, NONE)).or_default().scored(score);
        }
        if let Some(entities) = &records.entities {
            for (text, kind) in entity_mentions(entities, row) {
                let (name, kind) = (self.strings.id(Some(text)), self.strings.id(Some(kind)));
                self.sums.entry((minute, ticker, source, Dimension::Entity, name, kind)).or_default().scored(score);
            }
        }
    }

    /// The sums as rollup rows of each of `grains`: hours and days folded from the minutes, minute rows
    /// only from `minutes_from` on.
    fn finish(self, grains: &[Grain], minutes_from: Option<i64>) -> Vec<(RowKey, Measures)> {
        let strings = self.strings;
        let row_key = |grain: Grain, (period_start, ticker, source, dimension, name, kind): MinuteKey| RowKey {
            grain,
            period_start,
            ticker: strings.text(ticker),
            source_system: strings.text(source).unwrap_or_default(),
            dimension,
            name: strings.text(name),
            kind: strings.text(kind),
        };
        let mut rows = Vec::new();
        for &grain in grains.iter().filter(|&&g| g != Grain::Minute) {
            let mut folded: FastMap<MinuteKey, MinuteMeasures> = FastMap::default();
            for (&(minute, ticker, source, dimension, name, kind), measures) in &self.sums {
                folded.entry((grain.start(minute), ticker, source, dimension, name, kind)).or_default().merge(measures);
            }
            rows.extend(folded.into_iter().map(|(key, measures)| (row_key(grain, key), measures.into_measures(&strings))));
        }
        if grains.contains(&Grain::Minute) {
            let floor = minutes_from.unwrap_or(i64::MIN);
            rows.extend(
                self.sums
                    .into_iter()
                    .filter(|(key, _)| key.0 >= floor)
                    .map(|(key, measures)| (row_key(Grain::Minute, key), measures.into_measures(&strings))),
            );
        }
        rows
    }
}

/// The columns aggregates read, each normalised to one Arrow type (files written by other tools may use
/// large or dictionary strings, other timestamp units).
struct Columns {
    times: arrow_array::PrimitiveArray<TimestampMicrosecondType>,
    tickers: StringArray,
    sources: StringArray,
    scores: arrow_array::PrimitiveArray<Float32Type>,
    magnitudes: Option<arrow_array::PrimitiveArray<Float32Type>>,
    primary: Option<StringArray>,
    intents: Option<StringArray>,
    emotions: Option<FloatMap>,
    aspects: Option<FloatMap>,
    entities: Option<Entities>,
}

fn cast(batch: &RecordBatch, name: &str, to: &DataType) -> Result<Option<ArrayRef>, String> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(column) if column.data_type() == to => Ok(Some(column.clone())),
        Some(column) => arrow_cast::cast(column, to).map(Some).map_err(|e| format!("column {name}: {e}")),
    }
}

fn required(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    cast(batch, name, to)?.ok_or_else(|| format!("the batch has no {name} column"))
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Self, String> {
        let utf8 = DataType::Utf8;
        let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let float = DataType::Float32;
        let strings = |name: &str| -> Result<Option<StringArray>, String> { Ok(cast(batch, name, &utf8)?.map(|a| a.as_string::<i32>().clone())) };
        let floats = |name: &str| -> Result<Option<_>, String> { Ok(cast(batch, name, &float)?.map(|a| a.as_primitive::<Float32Type>().clone())) };
        let scores = floats(c::SENTIMENT_SCORE)?.ok_or("the batch has no sentiment_score column")?;
        if scores.null_count() > 0 {
            return Err("sentiment_score has nulls".into());
        }
        Ok(Self {
            times: required(batch, c::EVENT_TIMESTAMP, &time)?.as_primitive::<TimestampMicrosecondType>().clone(),
            tickers: required(batch, c::TICKER, &utf8)?.as_string::<i32>().clone(),
            sources: required(batch, c::SOURCE_SYSTEM, &utf8)?.as_string::<i32>().clone(),
            scores,
            magnitudes: floats(c::SENTIMENT_MAGNITUDE)?,
            primary: strings(c::PRIMARY_EMOTION)?,
            intents: strings(c::USER_INTENT)?,
            emotions: batch.column_by_name(c::EMOTION_INTENSITY_VECTOR).map(FloatMap::of).transpose()?,
            aspects: batch.column_by_name(c::ASPECT_BASED_SENTIMENT).map(FloatMap::of).transpose()?,
            entities: batch.column_by_name(c::ENTITY_RECOGNITION).map(Entities::of).transpose()?,
        })
    }
}

/// A `map<string, float>` column with its keys and values normalised.
struct FloatMap {
    map: MapArray,
    keys: StringArray,
    values: arrow_array::PrimitiveArray<Float32Type>,
}

impl FloatMap {
    fn of(column: &ArrayRef) -> Result<Self, String> {
        let map = column.as_map_opt().ok_or_else(|| format!("a map column is {}", column.data_type()))?.clone();
        let keys = arrow_cast::cast(map.keys(), &DataType::Utf8).map_err(|e| e.to_string())?.as_string::<i32>().clone();
        let values = arrow_cast::cast(map.values(), &DataType::Float32).map_err(|e| e.to_string())?.as_primitive::<Float32Type>().clone();
        Ok(Self { map, keys, values })
    }
}

/// The entries of row `row` of a map column (none for a null map); null values are skipped, as SQL's
/// aggregates skip them.
fn map_entries(map: Option<&FloatMap>, row: usize) -> impl Iterator<Item = (&str, f32)> {
    let range = match map {
        Some(m) if m.map.is_valid(row) => {
            let offsets = m.map.value_offsets();
            offsets[row] as usize..offsets[row + 1] as usize
        }
        _ => 0..0,
    };
    range.filter_map(move |i| {
        let m = map?;
        (m.keys.is_valid(i) && m.values.is_valid(i)).then(|| (m.keys.value(i), m.values.value(i)))
    })
}

/// A `list<struct<text, type>>` column with the struct's members normalised.
struct Entities {
    list: ListArray,
    texts: StringArray,
    kinds: StringArray,
}

impl Entities {
    fn of(column: &ArrayRef) -> Result<Self, String> {
        let list = column.as_list_opt::<i32>().ok_or_else(|| format!("entity_recognition is {}", column.data_type()))?.clone();
        let items: &StructArray = list.values().as_struct_opt().ok_or("entity_recognition's elements are not structs")?;
        let member = |name: &str| -> Result<StringArray, String> {
            let column = items.column_by_name(name).ok_or_else(|| format!("an entity has no {name}"))?;
            Ok(arrow_cast::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?.as_string::<i32>().clone())
        };
        Ok(Self { texts: member(crate::schema::ENTITY_TEXT)?, kinds: member(crate::schema::ENTITY_TYPE)?, list })
    }
}

fn entity_mentions(entities: &Entities, row: usize) -> impl Iterator<Item = (&str, &str)> {
    let range = if entities.list.is_valid(row) {
        let offsets = entities.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    } else {
        0..0
    };
    range.filter(|&i| entities.texts.is_valid(i) && entities.kinds.is_valid(i)).map(|i| (entities.texts.value(i), entities.kinds.value(i)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests_support::full_record;
    use crate::schema::RecordBatchBuilder;

    fn batch(records: &[crate::schema::SentimentRecord<'_>]) -> RecordBatch {
        let mut builder = RecordBatchBuilder::with_capacity(records.len());
        for r in records {
            builder.append(r);
        }
        builder.finish().unwrap()
    }

    #[test]
    fn periods_and_buckets() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T13:45:30Z").unwrap().timestamp_micros();
        assert_eq!(Grain::Minute.start(at), at - 30_000_000);
        assert_eq!(Grain::Hour.ceil(at), at + 14 * MINUTE + 30_000_000);
        assert_eq!(Grain::Minute.ceil(Grain::Minute.start(at)), Grain::Minute.start(at));
        assert_eq!(Grain::Minute.bucket(at), "2026-12-06");
        assert_eq!(Grain::Hour.bucket(at), "2026-12");
        assert_eq!(Grain::Day.bucket(at), "2026");
        assert_eq!(Grain::Minute.start(-1), -MINUTE, "before the epoch, periods still start at their floor");
    }

    #[test]
    fn a_record_counts_in_every_dimension_at_every_grain() {
        let record = full_record();
        let mut partials = Partials::default();
        partials.add_batch(&batch(&[record.clone(), record.clone()]), &Grain::ALL, &RowFilter::default()).unwrap();
        let message = partials.rows.iter().find(|(k, _)| k.grain == Grain::Day && k.dimension == Dimension::Message).map(|(_, m)| m.clone()).unwrap();
        assert_eq!(message.count, 2);
        assert_eq!(message.score_sum, exact::score(record.sentiment_score) + exact::score(record.sentiment_score));
        assert_eq!(message.score_min, Some(OrderedF32(record.sentiment_score)));
        assert_eq!(message.magnitude_count, 2);
        let emotions = record.emotion_intensity_vector.as_ref().map_or(0, |v| v.len());
        assert_eq!(message.emotions.len(), emotions);
        assert!(message.emotions.values().all(|(count, _)| *count == 2));
        assert_eq!(message.primary_emotions.values().sum::<i64>(), 2);
        let hour: std::collections::BTreeSet<_> = partials.rows.keys().filter(|k| k.grain == Grain::Minute).map(|k| k.dimension).collect();
        assert!(hour.contains(&Dimension::Intent));
        assert_eq!(hour.contains(&Dimension::Aspect), record.aspect_based_sentiment.as_ref().is_some_and(|v| !v.is_empty()));
        assert_eq!(hour.contains(&Dimension::Entity), record.entity_recognition.as_ref().is_some_and(|v| !v.is_empty()));
    }

    #[test]
    fn minute_rows_start_at_the_floor_and_hours_and_days_count_every_row() {
        let (mut early, mut late) = (full_record(), full_record());
        early.event_timestamp = chrono::DateTime::parse_from_rfc3339("2026-12-06T13:05:00Z").unwrap().to_utc();
        late.event_timestamp = chrono::DateTime::parse_from_rfc3339("2026-12-06T13:45:00Z").unwrap().to_utc();
        let floor = late.event_timestamp.timestamp_micros();
        let (mut all, mut floored) = (Partials::default(), Partials::default());
        all.add_batch(&batch(&[early.clone(), late.clone()]), &Grain::ALL, &RowFilter::default()).unwrap();
        floored.add_batch(&batch(&[early, late]), &Grain::ALL, &RowFilter { minutes_from: Some(floor), ..RowFilter::default() }).unwrap();
        let minutes =
            |p: &Partials| p.rows.keys().filter(|k| k.grain == Grain::Minute).map(|k| k.period_start).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(minutes(&all).len(), 2);
        assert_eq!(minutes(&floored), std::collections::BTreeSet::from([floor]), "only the minute at the floor");
        let coarse = |p: &Partials| p.rows.iter().filter(|(k, _)| k.grain != Grain::Minute).map(|(k, m)| (k.clone(), m.clone())).collect::<Vec<_>>();
        assert_eq!(coarse(&all), coarse(&floored), "hours and days hold both rows either way");
    }

    fn polarity(measures: &mut Measures, value: f32) {
        let mut minute = MinuteMeasures::default();
        minute.polarity(value);
        (measures.positive, measures.negative, measures.neutral) = (minute.positive, minute.negative, minute.neutral);
    }

    /// Each row merged into its own key at every grain: the definition [`Partials::add_batch`] must equal.
    fn row_by_row(batch: &RecordBatch, grains: &[Grain]) -> Partials {
        let records = Columns::of(batch).unwrap();
        let mut partials = Partials::default();
        for row in 0..batch.num_rows() {
            let (at, score) = (records.times.value(row), records.scores.value(row));
            let ticker = records.tickers.is_valid(row).then(|| records.tickers.value(row).to_string());
            let mut message = Measures { count: 1, score_sum: exact::score(score), ..Measures::default() };
            (message.score_min, message.score_max) = (Some(OrderedF32(score)), Some(OrderedF32(score)));
            polarity(&mut message, score);
            if let Some(m) = records.magnitudes.as_ref().filter(|m| m.is_valid(row)) {
                (message.magnitude_sum, message.magnitude_count) = (exact::magnitude(m.value(row)), 1);
            }
            for (emotion, intensity) in map_entries(records.emotions.as_ref(), row) {
                let entry = message.emotions.entry(emotion.to_string()).or_default();
                entry.0 += 1;
                entry.1 += exact::score(intensity);
            }
            if let Some(p) = records.primary.as_ref().filter(|p| p.is_valid(row)) {
                *message.primary_emotions.entry(p.value(row).to_string()).or_default() += 1;
            }
            let score_only = Measures { count: 1, score_sum: exact::score(score), ..Measures::default() };
            for &grain in grains {
                let key = |dimension, name: Option<&str>, kind: Option<&str>| RowKey {
                    grain,
                    period_start: grain.start(at),
                    ticker: ticker.clone(),
                    source_system: records.sources.value(row).to_string(),
                    dimension,
                    name: name.map(str::to_string),
                    kind: kind.map(str::to_string),
                };
                partials.merge_row(key(Dimension::Message, None, None), &message);
                for (aspect, value) in map_entries(records.aspects.as_ref(), row) {
                    let mut measures = Measures { count: 1, score_sum: exact::score(value), ..Measures::default() };
                    polarity(&mut measures, value);
                    partials.merge_row(key(Dimension::Aspect, Some(aspect), None), &measures);
                }
                if let Some(intent) = records.intents.as_ref().filter(|i| i.is_valid(row)) {
                    partials.merge_row(key(Dimension::Intent, Some(intent.value(row)), None), &score_only);
                }
                for (text, kind) in records.entities.as_ref().into_iter().flat_map(|e| entity_mentions(e, row)) {
                    partials.merge_row(key(Dimension::Entity, Some(text), Some(kind)), &score_only);
                }
            }
        }
        partials
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Summing per minute first, with interned keys, gives exactly the row-by-row partials.
        #[test]
        fn minute_sums_equal_row_by_row_merges(rows in proptest::collection::vec((0u8..4, 0i64..200_000, -100i32..=100, 0u8..4, 0u8..3, proptest::bool::ANY), 0..120)) {
            let base = full_record();
            let records: Vec<_> = rows
                .iter()
                .map(|&(ticker, seconds, score, emotion, aspect, entity)| {
                    let mut r = base.clone();
                    r.ticker = ["AAPL", "MSFT", "TSLA"].get(ticker as usize).map(|t| (*t).into());
                    r.source_system = if seconds % 2 == 0 { "twitter".into() } else { "reddit".into() };
                    r.event_timestamp += chrono::Duration::seconds(seconds);
                    r.sentiment_score = score as f32 / 100.0;
                    r.primary_emotion = ["joy", "fear", "anger", "neutral"][emotion as usize].into();
                    r.emotion_intensity_vector = Some(vec![("joy".into(), score as f32 / 200.0), (["fear", "joy"][emotion as usize % 2].into(), 0.25)]);
                    r.aspect_based_sentiment = Some(vec![(["eps", "guidance", "capex"][aspect as usize].into(), score as f32 / 300.0)]);
                    r.entity_recognition = entity.then(|| vec![crate::schema::Entity { text: "Apple".into(), entity_type: "ORG".into() }]);
                    r.user_intent = ["news", "opinion"][aspect as usize % 2].into();
                    r
                })
                .collect();
            let batch = batch(&records);
            let mut partials = Partials::default();
            partials.add_batch(&batch, &Grain::ALL, &RowFilter::default()).unwrap();
            proptest::prop_assert_eq!(partials, row_by_row(&batch, &Grain::ALL));
        }
    }

    #[test]
    fn a_filter_keeps_the_window_and_the_ticker() {
        let record = full_record();
        let at = record.event_timestamp.timestamp_micros();
        let mut partials = Partials::default();
        let filter = RowFilter { window: Some((at + 1, at + 10)), ..RowFilter::default() };
        partials.add_batch(&batch(std::slice::from_ref(&record)), &[Grain::Minute], &filter).unwrap();
        assert!(partials.is_empty());
        let filter = RowFilter { window: Some((at, at + 1)), ticker: Some("NOPE".into()), ..RowFilter::default() };
        partials.add_batch(&batch(&[record]), &[Grain::Minute], &filter).unwrap();
        assert!(partials.is_empty());
    }
}
