//! The quality panel's answer: quality rows added up per time bucket (rows, duplicates, dead letters by
//! rule, late and future-dated events), dead letters by field and each model version's score histogram
//! over the window, one row at a time so a window is never held whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::profile::{Distribution, LATENESS_EDGES_S};
use super::table::QualityRow;

/// Events enqueued more than this after their event time count as late on the panel.
pub const LATE_AFTER_S: i64 = 300;
/// Model histograms followed over a window; further ones fold into one `(other)` histogram.
const MAX_MODELS: usize = 256;
/// Model histograms an answer lists (those with the most rows).
const MAX_MODELS_REPORTED: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Point {
    pub time_bucket: DateTime<Utc>,
    pub rows: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub dead_letters_by_rule: BTreeMap<String, u64>,
    /// Events enqueued more than [`LATE_AFTER_S`] after their event time.
    pub late: u64,
    pub future_dated: u64,
    /// Dead letters over everything that arrived (rows, dead letters), `None` when nothing did.
    pub dead_letter_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelScores {
    /// `model/version`.
    pub model: String,
    pub source_system: String,
    pub rows: u64,
    /// Counts of scores in twenty bins of width 0.1 over [-1, 1].
    pub score_histogram: Vec<u64>,
}

/// The window's quality, added up.
#[derive(Debug, Clone)]
pub struct Series {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket_s: i64,
    points: BTreeMap<i64, Point>,
    by_field: BTreeMap<String, u64>,
    models: BTreeMap<(String, String), Distribution>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesAnswer {
    pub points: Vec<Point>,
    pub dead_letters_by_field: BTreeMap<String, u64>,
    pub models: Vec<ModelScores>,
}

impl Series {
    /// Rows profiled in `[from, to]`, in buckets of `bucket_s` seconds (at least one).
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, bucket_s: i64) -> Self {
        Self { from, to, bucket_s: bucket_s.max(1), points: BTreeMap::new(), by_field: BTreeMap::new(), models: BTreeMap::new() }
    }

    pub fn add(&mut self, row: &QualityRow) {
        if row.profiled_at < self.from || row.profiled_at > self.to {
            return;
        }
        let p = &row.profile;
        let bucket = row.profiled_at.timestamp().div_euclid(self.bucket_s) * self.bucket_s;
        let point = self
            .points
            .entry(bucket)
            .or_insert_with(|| Point { time_bucket: DateTime::from_timestamp(bucket, 0).unwrap_or(row.profiled_at), ..Point::default() });
        point.rows += p.rows;
        point.duplicates += p.duplicates;
        point.dead_letters += p.dead_letters;
        point.future_dated += p.future_dated;
        let late_from = LATENESS_EDGES_S.partition_point(|edge| *edge <= LATE_AFTER_S);
        point.late += p.lateness.iter().skip(late_from).sum::<u64>();
        for (rule, n) in &p.dead_letters_by_rule {
            *point.dead_letters_by_rule.entry(rule.clone()).or_default() += n;
        }
        let arrived = point.rows + point.dead_letters;
        point.dead_letter_ratio = (arrived > 0).then(|| point.dead_letters as f64 / arrived as f64);
        for (field, n) in &p.dead_letters_by_field {
            *self.by_field.entry(field.clone()).or_default() += n;
        }
        for (key, distribution) in &p.distributions {
            let mut model = (key.model_label(), key.source_system.clone());
            if !self.models.contains_key(&model) && self.models.len() >= MAX_MODELS - 1 {
                let other = super::profile::DistributionKey::other();
                model = (other.model_label(), other.source_system);
            }
            self.models.entry(model).or_default().absorb(distribution);
        }
    }

    pub fn finish(self) -> SeriesAnswer {
        let mut models: Vec<ModelScores> = self
            .models
            .into_iter()
            .map(|((model, source_system), d)| ModelScores { model, source_system, rows: d.rows, score_histogram: d.scores })
            .collect();
        models.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.model.cmp(&b.model)));
        models.truncate(MAX_MODELS_REPORTED);
        SeriesAnswer { points: self.points.into_values().collect(), dead_letters_by_field: self.by_field, models }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::profile::SourceProfile;

    #[test]
    fn rows_add_up_per_bucket_and_late_counts_from_five_minutes() {
        let mut series = Series::new(DateTime::from_timestamp(0, 0).unwrap(), DateTime::from_timestamp(10_000, 0).unwrap(), 3600);
        for (at, rows, dead, late_bin) in [(10, 90, 10, 4), (3000, 10, 0, 5), (3700, 5, 5, 0), (20_000, 1, 1, 9)] {
            let mut profile = SourceProfile { rows, dead_letters: dead, ..SourceProfile::default() };
            profile.lateness[late_bin] = rows;
            profile.dead_letters_by_rule.insert("validation".into(), dead);
            series.add(&QualityRow {
                profiled_at: DateTime::from_timestamp(at, 0).unwrap(),
                commit_id: "c".into(),
                snapshot_id: None,
                source: "s".into(),
                profile,
            });
        }
        let answer = series.finish();
        assert_eq!(answer.points.len(), 2, "the last row is after the window");
        let first = &answer.points[0];
        assert_eq!((first.rows, first.dead_letters, first.dead_letter_ratio), (100, 10, Some(10.0 / 110.0)));
        assert_eq!(first.late, 10, "bin 4 ends at 300 s: on time; bin 5 is late");
        assert_eq!(answer.points[1].dead_letters_by_rule["validation"], 5);
    }
}
