//! Score drift: for each producer (`source_system`), `model_name` and `processing_version`, the population
//! stability index of the score histogram of the last day against the week before it.
//!
//! PSI = Σ (current_i − baseline_i) · ln(current_i / baseline_i) over the bins' shares, each share floored at
//! [`SHARE_FLOOR`] so an empty bin counts as rare rather than infinite. The usual reading: under 0.1 stable,
//! 0.1 to 0.2 a moderate shift, over 0.2 a significant one ([`DriftPolicy::threshold`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::profile::{DistributionKey, SCORE_BINS};
use super::table::QualityRow;

/// A bin's share is at least this (1 in 10,000) when the index is worked out.
pub const SHARE_FLOOR: f64 = 1e-4;
/// Distributions followed at once: producers inventing names cannot grow an evaluation without bound
/// (keys beyond are not judged).
pub const MAX_TRACKED: usize = 256;
/// Distributions followed per producer, so one inventing model names cannot crowd the others out.
pub const MAX_TRACKED_PER_PRODUCER: usize = 16;
/// Distributions an evaluation reports (the most drifted).
pub const MAX_REPORTED: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftPolicy {
    /// The span compared ("today").
    pub window: Duration,
    /// The span before it it is compared with ("the trailing week").
    pub baseline: Duration,
    /// An index above this fires.
    pub threshold: f64,
    /// Fewer rows than this in either span: not judged (a handful of scores says nothing).
    pub min_rows: u64,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        Self { window: Duration::from_secs(24 * 3600), baseline: Duration::from_secs(7 * 24 * 3600), threshold: 0.2, min_rows: 200 }
    }
}

impl DriftPolicy {
    /// How far back the profiles it reads go.
    pub fn span(&self) -> Duration {
        self.window.saturating_add(self.baseline)
    }
}

/// One distribution's drift.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Drift {
    #[serde(flatten)]
    pub key: DistributionKey,
    /// `None` when either span has fewer than [`DriftPolicy::min_rows`] rows.
    pub psi: Option<f64>,
    pub current_rows: u64,
    pub baseline_rows: u64,
    pub firing: bool,
}

/// The population stability index of `current` against `baseline` (counts over the same bins), or `None`
/// when either is empty.
pub fn psi(baseline: &[u64], current: &[u64]) -> Option<f64> {
    let (b_total, c_total) = (baseline.iter().sum::<u64>(), current.iter().sum::<u64>());
    if b_total == 0 || c_total == 0 || baseline.len() != current.len() {
        return None;
    }
    let share = |n: u64, total: u64| (n as f64 / total as f64).max(SHARE_FLOOR);
    Some(baseline.iter().zip(current).map(|(&b, &c)| (share(c, c_total) - share(b, b_total)) * (share(c, c_total) / share(b, b_total)).ln()).sum())
}

/// The score histograms of the two spans as of a moment, added up one quality row at a time (so a week of
/// rows is never held at once).
pub struct DriftSpans {
    now: DateTime<Utc>,
    current_from: DateTime<Utc>,
    baseline_from: DateTime<Utc>,
    spans: BTreeMap<DistributionKey, [Vec<u64>; 2]>,
    per_producer: BTreeMap<String, usize>,
}

impl DriftSpans {
    pub fn new(now: DateTime<Utc>, policy: &DriftPolicy) -> Self {
        let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let current_from = now.checked_sub_signed(to_chrono(policy.window)).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let baseline_from = current_from.checked_sub_signed(to_chrono(policy.baseline)).unwrap_or(DateTime::<Utc>::MIN_UTC);
        Self { now, current_from, baseline_from, spans: BTreeMap::new(), per_producer: BTreeMap::new() }
    }

    /// The earliest profile time that counts.
    pub fn from(&self) -> DateTime<Utc> {
        self.baseline_from
    }

    /// Counts `row` into its span. Rows profiled after the moment are left out (an answer as of it), and
    /// so are distributions folded into `(other)`.
    pub fn add(&mut self, row: &QualityRow) {
        let span = match row.profiled_at {
            at if at > self.now || at < self.baseline_from => return,
            at if at >= self.current_from => 1,
            _ => 0,
        };
        for (key, distribution) in &row.profile.distributions {
            if key.source_system == super::profile::OTHER {
                continue;
            }
            if !self.spans.contains_key(key) {
                let producer = self.per_producer.get(&key.source_system).copied().unwrap_or(0);
                if self.spans.len() >= MAX_TRACKED || producer >= MAX_TRACKED_PER_PRODUCER {
                    continue;
                }
                self.per_producer.insert(key.source_system.clone(), producer + 1);
                self.spans.insert(key.clone(), [vec![0; SCORE_BINS], vec![0; SCORE_BINS]]);
            }
            if let Some(counts) = self.spans.get_mut(key) {
                counts[span].iter_mut().zip(&distribution.scores).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// The distributions' drift, most drifted first ([`MAX_REPORTED`] of them).
    pub fn finish(self, policy: &DriftPolicy) -> Vec<Drift> {
        let mut drifts: Vec<Drift> = self
            .spans
            .into_iter()
            .map(|(key, [baseline, current])| {
                let (baseline_rows, current_rows) = (baseline.iter().sum::<u64>(), current.iter().sum::<u64>());
                let judged = baseline_rows >= policy.min_rows && current_rows >= policy.min_rows;
                let psi = if judged { psi(&baseline, &current) } else { None };
                Drift { key, psi, current_rows, baseline_rows, firing: psi.is_some_and(|p| p > policy.threshold) }
            })
            .collect();
        drifts.sort_by(|a, b| b.psi.unwrap_or(-1.0).total_cmp(&a.psi.unwrap_or(-1.0)).then_with(|| a.key.cmp(&b.key)));
        drifts.truncate(MAX_REPORTED);
        drifts
    }
}

/// The drift of every distribution seen in `rows` as of `now` ([`DriftSpans`]).
pub fn drift<'a>(rows: impl IntoIterator<Item = &'a QualityRow>, now: DateTime<Utc>, policy: &DriftPolicy) -> Vec<Drift> {
    let mut spans = DriftSpans::new(now, policy);
    rows.into_iter().for_each(|row| spans.add(row));
    spans.finish(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::profile::{Distribution, SourceProfile};

    fn row(at_s: i64, scores: &[(usize, u64)]) -> QualityRow {
        let mut distribution = Distribution::default();
        for &(bin, n) in scores {
            distribution.scores[bin] += n;
            distribution.rows += n;
        }
        let key = DistributionKey { source_system: "feed".into(), model_name: Some("vader".into()), processing_version: "v1".into() };
        let mut profile = SourceProfile::default();
        profile.distributions.insert(key, distribution);
        QualityRow { profiled_at: DateTime::from_timestamp(at_s, 0).unwrap(), commit_id: "c".into(), snapshot_id: None, source: "s".into(), profile }
    }

    #[test]
    fn the_same_shape_is_stable_and_a_moved_one_fires() {
        let policy = DriftPolicy { window: Duration::from_secs(100), baseline: Duration::from_secs(900), threshold: 0.2, min_rows: 50 };
        let base = [row(100, &[(9, 300), (10, 500), (14, 200)])];
        let same = row(900, &[(9, 30), (10, 50), (14, 20)]);
        let now = DateTime::from_timestamp(950, 0).unwrap();
        let rows: Vec<QualityRow> = base.iter().cloned().chain([same]).collect();
        let stable = drift(&rows, now, &policy);
        assert!(stable[0].psi.unwrap() < 0.01 && !stable[0].firing, "{stable:?}");
        let moved: Vec<QualityRow> = base.iter().cloned().chain([row(900, &[(18, 60), (19, 40)])]).collect();
        let fired = drift(&moved, now, &policy);
        assert!(fired[0].psi.unwrap() > 1.0 && fired[0].firing, "{fired:?}");
        // Too few rows to judge.
        let few: Vec<QualityRow> = base.iter().cloned().chain([row(900, &[(19, 10)])]).collect();
        assert_eq!(drift(&few, now, &policy)[0].psi, None);
        // Out of both spans: nothing to compare.
        assert_eq!(drift(&moved, DateTime::from_timestamp(5_000, 0).unwrap(), &policy), Vec::new());
    }

    proptest::proptest! {
        #[test]
        fn psi_is_non_negative_and_zero_on_equal_shapes(
            a in proptest::collection::vec(0u64..1000, SCORE_BINS),
            b in proptest::collection::vec(0u64..1000, SCORE_BINS),
            k in 1u64..5,
        ) {
            if let Some(p) = psi(&a, &b) {
                proptest::prop_assert!(p >= -1e-12);
            }
            let scaled: Vec<u64> = a.iter().map(|n| n * k).collect();
            if let Some(p) = psi(&a, &scaled) {
                proptest::prop_assert!(p.abs() < 1e-9);
            }
        }
    }
}
