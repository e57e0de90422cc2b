//! A commit's quality profile: per source, the rows committed, duplicates dropped, dead letters by rule and
//! field, how late events arrived, future-dated events, null counts of the optional fields, and the score
//! and magnitude distributions per producer (`source_system`), `model_name` and `processing_version`.
//!
//! Everything is a count or a histogram over fixed bins, so profiles add up over commits, days and
//! instances in any order. Strings that become keys come from producers: they are cut to
//! [`MAX_KEY_BYTES`], a profile holds at most [`MAX_DISTRIBUTIONS`] distributions per source (the rest
//! fold into one [`OTHER`] distribution), and a dead letter's field path is reduced to the record column
//! it starts with.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch, StringArray};
use chrono::{DateTime, Utc};

use crate::schema::{column as c, dead_letter, sentiment_schema};

/// Score bins: twenty of width 0.1 over [-1, 1] (the last includes 1).
pub const SCORE_BINS: usize = 20;
/// Upper edges of the magnitude bins (a last bin holds everything from 10 up).
pub const MAGNITUDE_EDGES: &[f32] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
/// Upper edges, in seconds, of the lateness bins (a last bin holds a week and more).
pub const LATENESS_EDGES_S: &[i64] = &[1, 5, 30, 60, 300, 900, 3_600, 21_600, 86_400, 604_800];
/// An event time this far past its batch's enqueued time is future-dated (clock skew below it is not).
pub const FUTURE_TOLERANCE_S: i64 = 60;
/// Producer strings kept as keys are cut to this many bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Distributions kept per source and commit; further keys fold into one [`OTHER`] distribution.
pub const MAX_DISTRIBUTIONS: usize = 64;
/// The key standing for everything beyond a bound, and for a dead letter's field outside the record.
pub const OTHER: &str = "(other)";
/// A dead letter that names no field.
pub const NO_FIELD: &str = "(none)";

/// What a table's rows are profiled as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profiled {
    Records,
    DeadLetters,
}

/// Whose scores a distribution counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct DistributionKey {
    pub source_system: String,
    pub model_name: Option<String>,
    pub processing_version: String,
}

impl DistributionKey {
    /// The key everything beyond a bound folds into.
    pub fn other() -> Self {
        Self { source_system: OTHER.into(), model_name: Some(OTHER.into()), processing_version: OTHER.into() }
    }

    /// `model/version` as labels and charts name it.
    pub fn model_label(&self) -> String {
        format!("{}/{}", self.model_name.as_deref().unwrap_or("-"), self.processing_version)
    }
}

/// Counts of scores and magnitudes over the fixed bins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    pub rows: u64,
    pub scores: Vec<u64>,
    pub magnitudes: Vec<u64>,
}

impl Default for Distribution {
    fn default() -> Self {
        Self { rows: 0, scores: vec![0; SCORE_BINS], magnitudes: vec![0; MAGNITUDE_EDGES.len() + 1] }
    }
}

impl Distribution {
    pub fn absorb(&mut self, other: &Distribution) {
        self.rows += other.rows;
        add_counts(&mut self.scores, &other.scores);
        add_counts(&mut self.magnitudes, &other.magnitudes);
    }

    /// The non-empty score bins as `(the bin's middle, count)`, for metrics.
    pub fn score_points(&self) -> Vec<(f64, u64)> {
        let middles = (0..SCORE_BINS).map(|i| -0.95 + 0.1 * i as f64);
        middles.zip(self.scores.iter().copied()).filter(|(_, n)| *n > 0).collect()
    }

    pub fn magnitude_points(&self) -> Vec<(f64, u64)> {
        let edges: Vec<f64> = MAGNITUDE_EDGES.iter().map(|&e| f64::from(e)).collect();
        points(&edges, &self.magnitudes)
    }
}

/// The non-empty bins over upper `edges` (from 0) as `(a value inside the bin, count)`: its middle, and
/// for the open last bin one and a half times its lower edge.
fn points(edges: &[f64], counts: &[u64]) -> Vec<(f64, u64)> {
    let lowers = std::iter::once(0.0).chain(edges.iter().copied());
    let uppers = edges.iter().copied().map(Some).chain(std::iter::once(None));
    let middles = lowers.zip(uppers).map(|(lo, hi)| hi.map_or(lo * 1.5, |hi| (lo + hi) / 2.0));
    middles.zip(counts.iter().copied()).filter(|(_, n)| *n > 0).collect()
}

/// Adds `from` into `into` bin by bin (a shorter or longer list, read from a table, adds what overlaps).
fn add_counts(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// One source's profile over one commit (or, added up, over any span).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceProfile {
    pub rows: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    /// Dead letters by the class of rule that refused them (`decode`, `validation`, `incomplete`).
    pub dead_letters_by_rule: BTreeMap<String, u64>,
    /// Dead letters by the record column their error names.
    pub dead_letters_by_field: BTreeMap<String, u64>,
    /// Events by how long after their event time their batch was enqueued ([`LATENESS_EDGES_S`]).
    pub lateness: Vec<u64>,
    pub future_dated: u64,
    /// Nulls of each optional field among the rows.
    pub nulls: BTreeMap<String, u64>,
    pub distributions: BTreeMap<DistributionKey, Distribution>,
}

impl Default for SourceProfile {
    fn default() -> Self {
        Self {
            rows: 0,
            duplicates: 0,
            dead_letters: 0,
            dead_letters_by_rule: BTreeMap::new(),
            dead_letters_by_field: BTreeMap::new(),
            lateness: vec![0; LATENESS_EDGES_S.len() + 1],
            future_dated: 0,
            nulls: BTreeMap::new(),
            distributions: BTreeMap::new(),
        }
    }
}

impl SourceProfile {
    /// The non-empty lateness bins as `(seconds inside the bin, count)`, for metrics.
    pub fn lateness_points(&self) -> Vec<(f64, u64)> {
        let edges: Vec<f64> = LATENESS_EDGES_S.iter().map(|&e| e as f64).collect();
        points(&edges, &self.lateness)
    }

    pub fn absorb(&mut self, other: &SourceProfile) {
        self.rows += other.rows;
        self.duplicates += other.duplicates;
        self.dead_letters += other.dead_letters;
        for (into, from) in [
            (&mut self.dead_letters_by_rule, &other.dead_letters_by_rule),
            (&mut self.dead_letters_by_field, &other.dead_letters_by_field),
            (&mut self.nulls, &other.nulls),
        ] {
            for (key, n) in from {
                *into.entry(key.clone()).or_default() += n;
            }
        }
        add_counts(&mut self.lateness, &other.lateness);
        self.future_dated += other.future_dated;
        for (key, distribution) in &other.distributions {
            self.distribution(key.clone()).absorb(distribution);
        }
    }

    /// The distribution of `key`, or the [`OTHER`] one once [`MAX_DISTRIBUTIONS`] are kept.
    fn distribution(&mut self, key: DistributionKey) -> &mut Distribution {
        let key =
            if self.distributions.contains_key(&key) || self.distributions.len() < MAX_DISTRIBUTIONS - 1 { key } else { DistributionKey::other() };
        self.distributions.entry(key).or_default()
    }
}

/// The profiles of one commit, by source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    pub by_source: BTreeMap<String, SourceProfile>,
}

/// The optional fields of the records table, whose nulls are counted.
static OPTIONAL_FIELDS: LazyLock<Vec<String>> =
    LazyLock::new(|| sentiment_schema().as_struct().fields().iter().filter(|f| !f.required).map(|f| f.name.clone()).collect());

/// Every top-level record column, which a dead letter's field is reduced to.
static RECORD_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| sentiment_schema().as_struct().fields().iter().map(|f| f.name.clone()).collect());

const RULES: &[dead_letter::ErrorClass] =
    &[dead_letter::ErrorClass::Decode, dead_letter::ErrorClass::Validation, dead_letter::ErrorClass::Incomplete];

/// `value` cut to [`MAX_KEY_BYTES`] on a character boundary.
fn bounded(value: &str) -> String {
    let mut end = value.len().min(MAX_KEY_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_string()
}

/// The record column a dead letter's field path starts with (`emotion_intensity_vector["joy"]` is
/// `emotion_intensity_vector`), or [`OTHER`].
fn field_label(path: Option<&str>) -> &str {
    let Some(path) = path else { return NO_FIELD };
    let head = path.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).next().unwrap_or("");
    RECORD_COLUMNS.iter().find(|name| name.as_str() == head).map_or(OTHER, String::as_str)
}

fn rule_label(class: &str) -> &str {
    RULES.iter().map(|r| r.as_str()).find(|r| *r == class).unwrap_or(OTHER)
}

/// The bin of `value` among upper `edges` (values at an edge go to the bin above it).
fn bin<T: PartialOrd>(edges: &[T], value: T) -> usize {
    edges.partition_point(|edge| *edge <= value)
}

pub fn score_bin(score: f32) -> usize {
    // NaN (never validated in) lands in the first bin rather than failing the commit.
    (((score + 1.0) * 10.0).floor().max(0.0) as usize).min(SCORE_BINS - 1)
}

fn column<'a>(rows: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, String> {
    rows.column_by_name(name).map(|c| c.as_ref()).ok_or_else(|| format!("the rows have no {name} column"))
}

fn strings<'a>(rows: &'a RecordBatch, name: &str) -> Result<&'a StringArray, String> {
    let array = column(rows, name)?;
    array.as_string_opt::<i32>().ok_or_else(|| format!("{name} is {}, not a string column", array.data_type()))
}

impl Profiles {
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// Every source's profile added up.
    pub fn total(&self) -> SourceProfile {
        let mut total = SourceProfile::default();
        self.by_source.values().for_each(|p| total.absorb(p));
        total
    }

    pub fn absorb(&mut self, other: &Profiles) {
        for (source, profile) in &other.by_source {
            self.by_source.entry(source.clone()).or_default().absorb(profile);
        }
    }

    /// Adds `rows` of `source`, committed to a table whose rows are `kind`.
    pub fn add(&mut self, kind: Profiled, source: &str, rows: &RecordBatch, enqueued: Option<DateTime<Utc>>) -> Result<(), String> {
        match kind {
            Profiled::Records => self.add_records(source, rows, enqueued),
            Profiled::DeadLetters => self.add_dead_letters(source, rows),
        }
    }

    pub fn add_duplicates(&mut self, source: &str, duplicates: u64) {
        if duplicates > 0 {
            self.by_source.entry(source.to_string()).or_default().duplicates += duplicates;
        }
    }

    /// Adds committed records. Lateness is counted against `enqueued` (the newest enqueued time of the
    /// rows' batch) when known, else against each row's `ingestion_timestamp`.
    pub fn add_records(&mut self, source: &str, rows: &RecordBatch, enqueued: Option<DateTime<Utc>>) -> Result<(), String> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let times = |name: &str| -> Result<_, String> {
            let array = column(rows, name)?;
            array.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| format!("{name} is {}, not a timestamp", array.data_type()))
        };
        let floats = |name: &str| -> Result<_, String> {
            let array = column(rows, name)?;
            array.as_primitive_opt::<Float32Type>().ok_or_else(|| format!("{name} is {}, not a float", array.data_type()))
        };
        let (events, ingested) = (times(c::EVENT_TIMESTAMP)?, times(c::INGESTION_TIMESTAMP)?);
        let (scores, magnitudes) = (floats(c::SENTIMENT_SCORE)?, floats(c::SENTIMENT_MAGNITUDE)?);
        let (systems, models, versions) = (strings(rows, c::SOURCE_SYSTEM)?, strings(rows, c::MODEL_NAME)?, strings(rows, c::PROCESSING_VERSION)?);
        let profile = self.by_source.entry(source.to_string()).or_default();
        profile.rows += rows.num_rows() as u64;
        for name in OPTIONAL_FIELDS.iter() {
            if let Some(array) = rows.column_by_name(name) {
                *profile.nulls.entry(name.clone()).or_default() += array.null_count() as u64;
            }
        }
        let enqueued = enqueued.map(|at| at.timestamp_micros());
        // Rows of a batch mostly share their key: look it up only when it changes.
        let mut slots: HashMap<DistributionKey, usize> = HashMap::new();
        let mut local: Vec<(DistributionKey, Distribution)> = Vec::new();
        let mut current: Option<(usize, usize)> = None;
        for i in 0..rows.num_rows() {
            let reference = enqueued.unwrap_or_else(|| ingested.value(i));
            let late_s = reference.saturating_sub(events.value(i)).div_euclid(1_000_000);
            if late_s < -FUTURE_TOLERANCE_S {
                profile.future_dated += 1;
            } else {
                profile.lateness[bin(LATENESS_EDGES_S, late_s.max(0))] += 1;
            }
            let same = current.is_some_and(|(previous, _)| {
                systems.value(previous) == systems.value(i)
                    && versions.value(previous) == versions.value(i)
                    && models.is_valid(previous) == models.is_valid(i)
                    && models.value(previous) == models.value(i)
            });
            let slot = match current {
                Some((_, slot)) if same => slot,
                _ => {
                    let key = DistributionKey {
                        source_system: bounded(systems.value(i)),
                        model_name: models.is_valid(i).then(|| bounded(models.value(i))),
                        processing_version: bounded(versions.value(i)),
                    };
                    // Bounded here too: a producer naming a new version per event must not cost a slot each.
                    let key = if slots.contains_key(&key) || slots.len() < MAX_DISTRIBUTIONS - 1 { key } else { DistributionKey::other() };
                    *slots.entry(key.clone()).or_insert_with(|| {
                        local.push((key, Distribution::default()));
                        local.len() - 1
                    })
                }
            };
            current = Some((i, slot));
            let distribution = &mut local[slot].1;
            distribution.rows += 1;
            distribution.scores[score_bin(scores.value(i))] += 1;
            distribution.magnitudes[bin(MAGNITUDE_EDGES, magnitudes.value(i))] += 1;
        }
        for (key, distribution) in local {
            profile.distribution(key).absorb(&distribution);
        }
        Ok(())
    }

    /// Adds committed dead letters, by rule and field.
    pub fn add_dead_letters(&mut self, source: &str, rows: &RecordBatch) -> Result<(), String> {
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let (classes, fields) = (strings(rows, dead_letter::ERROR_CLASS)?, strings(rows, dead_letter::ERROR_FIELD)?);
        let profile = self.by_source.entry(source.to_string()).or_default();
        profile.dead_letters += rows.num_rows() as u64;
        for i in 0..rows.num_rows() {
            *profile.dead_letters_by_rule.entry(rule_label(classes.value(i)).to_string()).or_default() += 1;
            let field = field_label(fields.is_valid(i).then(|| fields.value(i)));
            *profile.dead_letters_by_field.entry(field.to_string()).or_default() += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests_support::full_record;
    use crate::schema::RecordBatchBuilder;

    fn batch(rows: &[(f32, f32, &str, Option<&str>, i64)]) -> RecordBatch {
        let mut builder = RecordBatchBuilder::with_capacity(rows.len());
        for (score, magnitude, system, model, late_s) in rows {
            let mut record = full_record();
            record.sentiment_score = *score;
            record.sentiment_magnitude = *magnitude;
            record.source_system = system.to_string().into();
            record.model_name = model.map(|m| m.to_string().into());
            record.event_timestamp = record.ingestion_timestamp - chrono::Duration::seconds(*late_s);
            builder.append(&record);
        }
        builder.finish().unwrap()
    }

    #[test]
    fn records_are_counted_into_bins_by_producer_and_model() {
        let mut profiles = Profiles::default();
        let rows = batch(&[
            (-1.0, 0.0, "x", Some("vader"), 0),
            (1.0, 0.5, "x", Some("vader"), 3),
            (0.05, 12.0, "x", None, 7200),
            (0.0, 0.1, "y", None, -600),
        ]);
        profiles.add_records("s", &rows, None).unwrap();
        let p = &profiles.by_source["s"];
        assert_eq!(p.rows, 4);
        assert_eq!(p.future_dated, 1, "ten minutes ahead of its ingestion");
        assert_eq!(p.lateness.iter().sum::<u64>(), 3);
        assert_eq!((p.lateness[0], p.lateness[1], p.lateness[7]), (1, 1, 1));
        let vader =
            &p.distributions[&DistributionKey { source_system: "x".into(), model_name: Some("vader".into()), processing_version: "v1".into() }];
        assert_eq!(vader.rows, 2);
        assert_eq!((vader.scores[0], vader.scores[SCORE_BINS - 1]), (1, 1), "both ends of [-1, 1] are inside");
        let unnamed = &p.distributions[&DistributionKey { source_system: "x".into(), model_name: None, processing_version: "v1".into() }];
        assert_eq!((unnamed.scores[10], unnamed.magnitudes[MAGNITUDE_EDGES.len()]), (1, 1));
        assert_eq!(p.nulls[c::MODEL_NAME], 2);
        assert_eq!(p.distributions.len(), 3);
    }

    #[test]
    fn producer_strings_are_bounded_in_length_and_number() {
        let mut profiles = Profiles::default();
        let long = "é".repeat(200);
        let systems: Vec<String> = (0..200).map(|i| format!("{i}{long}")).collect();
        let rows: Vec<_> = systems.iter().map(|s| (0.1, 0.1, s.as_str(), None, 0)).collect();
        profiles.add_records("s", &batch(&rows), None).unwrap();
        let p = &profiles.by_source["s"];
        assert_eq!(p.distributions.len(), MAX_DISTRIBUTIONS);
        assert!(p.distributions.keys().all(|k| k.source_system.len() <= MAX_KEY_BYTES));
        assert_eq!(p.distributions.values().map(|d| d.rows).sum::<u64>(), 200, "nothing dropped, only folded");
    }

    #[test]
    fn dead_letter_fields_reduce_to_record_columns() {
        assert_eq!(field_label(Some("emotion_intensity_vector[\"joy\"]")), c::EMOTION_INTENSITY_VECTOR);
        assert_eq!(field_label(Some("sentiment_score")), c::SENTIMENT_SCORE);
        assert_eq!(field_label(Some("$.attacker's key\u{0}")), OTHER);
        assert_eq!(field_label(None), NO_FIELD);
        assert_eq!(rule_label("validation"), "validation");
        assert_eq!(rule_label("made up"), OTHER);
    }

    #[test]
    fn metric_points_fall_inside_the_buckets_the_exporter_uses() {
        let mut d = Distribution::default();
        d.scores.iter_mut().for_each(|n| *n = 1);
        d.magnitudes.iter_mut().for_each(|n| *n = 1);
        let bucket = |edges: &[f64], v: f64| edges.partition_point(|e| *e < v);
        for (i, (v, _)) in d.score_points().into_iter().enumerate() {
            assert_eq!(score_bin(v as f32), i);
            assert_eq!(bucket(&crate::observability::SCORE_BUCKETS, v), i, "{v}");
        }
        for (i, (v, _)) in d.magnitude_points().into_iter().enumerate() {
            assert_eq!(bin(MAGNITUDE_EDGES, v as f32), i);
            assert_eq!(bucket(&crate::observability::MAGNITUDE_BUCKETS, v), i, "{v}");
        }
        let mut p = SourceProfile::default();
        p.lateness.iter_mut().for_each(|n| *n = 1);
        for (i, (v, _)) in p.lateness_points().into_iter().enumerate() {
            assert_eq!(bin(LATENESS_EDGES_S, v as i64), i);
            assert_eq!(bucket(&crate::observability::LATENESS_BUCKETS, v), i, "{v}");
        }
    }

    proptest::proptest! {
        /// Profiles add up: one profile of all rows equals the sum of profiles of any split of them.
        #[test]
        fn profiles_add_up_over_any_split(
            rows in proptest::collection::vec((-1.0f32..=1.0, 0.0f32..20.0, 0usize..3, -100_000i64..1_000_000), 1..60),
            cut in 0usize..60,
        ) {
            let systems = ["a", "b", "c"];
            let rows: Vec<_> = rows.iter().map(|(s, m, sys, late)| (*s, *m, systems[*sys], Some("vader"), *late)).collect();
            let cut = cut.min(rows.len());
            let mut whole = Profiles::default();
            whole.add_records("s", &batch(&rows), None).unwrap();
            let mut parts = Profiles::default();
            for part in [&rows[..cut], &rows[cut..]] {
                let mut one = Profiles::default();
                one.add_records("s", &batch(part), None).unwrap();
                parts.absorb(&one);
            }
            let p = &whole.by_source["s"];
            proptest::prop_assert_eq!(p.lateness.iter().sum::<u64>() + p.future_dated, rows.len() as u64);
            proptest::prop_assert_eq!(&whole, &parts);
        }
    }
}
