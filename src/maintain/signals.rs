//! What an on-call engineer is paged for about the data (issue #36), each with a documented threshold: a
//! committer that leaves staged rows uncommitted for two intervals (or the gap grace and one interval, when
//! longer), an Event Hubs source with no events for three, a dead-letter rate of Event Hubs traffic above
//! 5 % over the last fifteen minutes, and a producer's model version whose score distribution of the last
//! day moved from the week before (population stability index above 0.2, [`crate::quality::drift`]).
//! Worked out from table metadata, the staging listing and the quality table (no record is read), shown
//! in `health` and `doctor`; `serve` evaluates them every interval and [`Signals::export`]s
//! them as gauges and log lines, which the Prometheus rules in `deploy/prometheus/` and the Azure Monitor
//! alerts in `terraform/alerts.tf` read (docs/operations.md).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::gauge;

use super::error::MaintainError;
use crate::lake::stage::{ADDED_BY_SOURCE_SUMMARY, REPLAYED_ADDED_SUMMARY};
use crate::lake::{summary_watermarks, CommittedState, EntryKind, Lake, TableKind};
use crate::quality::{Drift, DriftPolicy, DriftSpans};

/// When each signal fires.
#[derive(Debug, Clone, Copy)]
pub struct SignalPolicy {
    /// The commit interval the thresholds are counted in.
    pub interval: Duration,
    /// Staged rows older than this many intervals mean the committer is stalled.
    pub stall_intervals: u32,
    /// An Event Hubs source with no event for this many intervals is quiet.
    pub quiet_intervals: u32,
    /// A source silent for longer is no longer watched (a consumer group or hub that changed names).
    pub quiet_forgotten_after: Duration,
    /// Entries behind a sequence gap wait this long before it is bridged (the commit policy's): not a stall.
    pub gap_grace: Duration,
    /// Dead letters over all events in [`SignalPolicy::dead_letter_window`] above which the rate fires.
    pub dead_letter_ratio: f64,
    pub dead_letter_window: Duration,
    /// Fewer events than this in the window never fire the rate (one bad event of three is not a trend).
    pub dead_letter_min_events: u64,
    pub drift: DriftPolicy,
}

impl Default for SignalPolicy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            stall_intervals: 2,
            quiet_intervals: 3,
            quiet_forgotten_after: Duration::from_secs(7 * 24 * 3600),
            gap_grace: Duration::from_secs(300),
            dead_letter_ratio: 0.05,
            dead_letter_window: Duration::from_secs(15 * 60),
            dead_letter_min_events: 20,
            drift: DriftPolicy::default(),
        }
    }
}

/// Every signal, and which fire.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Signals {
    /// Names of the signals that fire now (empty: all clear).
    pub firing: Vec<&'static str>,
    pub stalled_committer: Stall,
    pub quiet_sources: Quiet,
    pub dead_letter_rate: DeadLetterRate,
    pub score_drift: ScoreDrift,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ScoreDrift {
    pub firing: bool,
    /// Why drift could not be judged this time (the quality table unreadable or slow); the other signals
    /// are judged all the same.
    pub unknown: Option<String>,
    pub threshold: f64,
    pub window_s: i64,
    pub baseline_s: i64,
    /// The producers' model versions seen in the spans, the most drifted first (at most 64).
    pub distributions: Vec<Drift>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stall {
    pub firing: bool,
    /// Staged records segments waiting for a commit (those of sources awaiting a replay after a rollback
    /// are held on purpose and not counted: `health` lists the awaited ranges).
    pub staged_segments: usize,
    pub oldest_staged_age_s: Option<i64>,
    pub threshold_s: i64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Quiet {
    pub firing: bool,
    /// Event Hubs sources watched (those the ledger knows, heard within a week).
    pub watched: usize,
    /// Seconds since each watched source's newest event.
    pub ages: BTreeMap<String, i64>,
    /// Quiet ones: source -> seconds since its newest event.
    pub quiet: BTreeMap<String, i64>,
    pub threshold_s: i64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DeadLetterRate {
    pub firing: bool,
    pub window_s: i64,
    /// Rows and dead letters committed in the window.
    pub records: u64,
    pub dead_letters: u64,
    pub ratio: Option<f64>,
    pub threshold: f64,
}

/// Names of the signals, as metrics and `firing` spell them.
pub const STALLED_COMMITTER: &str = "stalled_committer";
pub const QUIET_SOURCE: &str = "quiet_source";
pub const DEAD_LETTER_RATE: &str = "dead_letter_rate";
pub const SCORE_DRIFT: &str = "score_drift";
/// Logged (as a firing signal) when the score drift could not be judged: the quality table unreadable.
pub const DRIFT_UNKNOWN: &str = "drift_unknown";

/// Every signal's name.
pub const ALL: [&str; 4] = [STALLED_COMMITTER, QUIET_SOURCE, DEAD_LETTER_RATE, SCORE_DRIFT];

/// Only Event Hubs partitions are watched for silence: a migrated file's source ends by design.
fn watched(source: &str) -> bool {
    source.starts_with("eventhubs://")
}

/// The signals as of `now` (see the module).
pub async fn signals(lake: &Lake, policy: &SignalPolicy, now: DateTime<Utc>) -> Result<Signals, MaintainError> {
    let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let listing = lake.pending(TableKind::Records).await?;
    let records = lake.load(TableKind::Records).await?;
    let dead_letters = lake.load(TableKind::DeadLetters).await?;
    let awaiting = CommittedState::read(&lake.target(TableKind::Records).name, records.metadata())?.awaiting;
    let staged: Vec<_> = listing.by_key.values().flatten().filter(|e| e.kind == EntryKind::Rows).collect();
    let held = |key: &str| listing.sources.get(key).is_some_and(|source| awaiting.get(source).is_some());
    let oldest = staged.iter().filter(|e| !held(&e.key)).map(|e| e.staged_at).min();
    // Entries behind a gap wait out its grace before the committer bridges it: only beyond that and one
    // more interval is waiting a stall.
    let stall_threshold = millis(policy.interval)
        .saturating_mul(i64::from(policy.stall_intervals))
        .max(millis(policy.gap_grace).saturating_add(millis(policy.interval)));
    let oldest_age = oldest.map(|at| (now - at).num_milliseconds());
    let stalled_committer = Stall {
        firing: oldest_age.is_some_and(|age| age > stall_threshold),
        staged_segments: staged.iter().filter(|e| !held(&e.key)).count(),
        oldest_staged_age_s: oldest_age.map(|ms| ms / 1000),
        threshold_s: stall_threshold / 1000,
    };

    // A source's newest event: committed to either table, or staged with rows since.
    let mut newest: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut seen = |source: &str, at: DateTime<Utc>| {
        let entry = newest.entry(source.to_string()).or_insert(at);
        *entry = (*entry).max(at);
    };
    for table in [&records, &dead_letters] {
        for (source, at) in crate::lake::stage::Enqueued::of(table.metadata()).iter() {
            seen(source, at);
        }
    }
    for entry in &staged {
        if let Some(source) = listing.sources.get(&entry.key) {
            seen(source, entry.staged_at);
        }
    }
    let quiet_threshold = millis(policy.interval).saturating_mul(i64::from(policy.quiet_intervals));
    let forgotten = millis(policy.quiet_forgotten_after);
    let ages_ms: BTreeMap<String, i64> = newest
        .into_iter()
        .filter(|(source, _)| watched(source))
        .map(|(source, at)| (source, (now - at).num_milliseconds()))
        .filter(|(_, age)| *age <= forgotten)
        .collect();
    let quiet: BTreeMap<String, i64> =
        ages_ms.iter().filter(|(_, age)| **age > quiet_threshold).map(|(source, age)| (source.clone(), age / 1000)).collect();
    let watched_count = ages_ms.len();
    let ages = ages_ms.into_iter().map(|(source, age)| (source, age / 1000)).collect();
    let quiet_sources = Quiet { firing: !quiet.is_empty(), watched: watched_count, ages, quiet, threshold_s: quiet_threshold / 1000 };

    let since = now.timestamp_millis() - i64::try_from(policy.dead_letter_window.as_millis()).unwrap_or(i64::MAX);
    let added = |table: &iceberg::table::Table| -> u64 {
        // Only snapshots of the current lineage (a rolled-back commit's rows are not there any more), and
        // only Event Hubs traffic: a migration's or a replay's commit says nothing of the producers.
        let mut total = 0;
        let mut cursor = table.metadata().current_snapshot();
        while let Some(snapshot) = cursor.filter(|s| s.timestamp_ms() >= since) {
            let summary = &snapshot.summary().additional_properties;
            let appended = matches!(snapshot.summary().operation, iceberg::spec::Operation::Append);
            // Commits that say how many rows each source added count only Event Hubs ones; older commits
            // (and other writers') count whole unless they advanced no Event Hubs source.
            let by_source: Option<BTreeMap<String, u64>> = summary.get(ADDED_BY_SOURCE_SUMMARY).and_then(|s| serde_json::from_str(s).ok());
            let whole = || summary.get("added-records").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            let live = || summary_watermarks(snapshot).is_none_or(|advanced| advanced.iter().any(|(source, _)| watched(source)));
            if appended && !summary.contains_key(REPLAYED_ADDED_SUMMARY) {
                total += match by_source {
                    Some(rows) => rows.iter().filter(|(source, _)| watched(source)).map(|(_, n)| n).sum(),
                    None if live() => whole(),
                    None => 0,
                };
            }
            cursor = snapshot.parent_snapshot_id().and_then(|id| table.metadata().snapshot_by_id(id));
        }
        total
    };
    let (committed, refused) = (added(&records), added(&dead_letters));
    let events = committed + refused;
    let ratio = (events > 0).then(|| refused as f64 / events as f64);
    let dead_letter_rate = DeadLetterRate {
        firing: events >= policy.dead_letter_min_events && ratio.is_some_and(|r| r > policy.dead_letter_ratio),
        window_s: seconds(policy.dead_letter_window),
        records: committed,
        dead_letters: refused,
        ratio,
        threshold: policy.dead_letter_ratio,
    };

    let mut spans = DriftSpans::new(now, &policy.drift);
    let read = tokio::time::timeout(DRIFT_READ_TIMEOUT, lake.quality_rows(spans.from(), |row| spans.add(&row))).await;
    let unknown = match read {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("the quality table did not answer within {DRIFT_READ_TIMEOUT:?}")),
    };
    let distributions = if unknown.is_none() { spans.finish(&policy.drift) } else { Vec::new() };
    let score_drift = ScoreDrift {
        firing: distributions.iter().any(|d| d.firing),
        unknown,
        threshold: policy.drift.threshold,
        window_s: seconds(policy.drift.window),
        baseline_s: seconds(policy.drift.baseline),
        distributions,
    };

    let mut signals = Signals { firing: Vec::new(), stalled_committer, quiet_sources, dead_letter_rate, score_drift };
    signals.firing = ALL.into_iter().filter(|name| signals.is_firing(name)).collect();
    Ok(signals)
}

/// How long the score drift's read of the quality table may take; beyond it drift is unknown this time and
/// the other signals are judged without it.
pub const DRIFT_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one evaluation may take before it counts as failed (a hung catalog call).
pub const EVALUATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Name under which an evaluation that failed is exported and logged: the signals are unknown.
pub const SIGNALS_UNKNOWN: &str = "signals_unknown";

/// Evaluates the signals as `serve`'s loop does and exports the outcome: the signals, or, when they cannot
/// be worked out (storage or catalog down, or no answer within [`EVALUATION_TIMEOUT`]), gauges set to NaN
/// and a `signals_unknown` line, so an alert never rests on a stale clear.
pub async fn evaluate_and_export(lake: &Lake, policy: &SignalPolicy) {
    match tokio::time::timeout(EVALUATION_TIMEOUT, signals(lake, policy, Utc::now())).await {
        Ok(Ok(signals)) => signals.export(),
        failed => {
            let error = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {EVALUATION_TIMEOUT:?}"),
            };
            tracing::warn!(signal = SIGNALS_UNKNOWN, error = %error, "Data signal firing.");
            for name in ALL {
                gauge!("sentiment_lake_signal_firing", "signal" => name).set(f64::NAN);
            }
        }
    }
}

/// Drift gauges set per evaluation.
const MAX_DRIFT_GAUGES: usize = 16;
/// Drift label sets a process ever exports.
const MAX_DRIFT_LABELS: usize = 256;

impl Signals {
    fn is_firing(&self, name: &str) -> bool {
        match name {
            STALLED_COMMITTER => self.stalled_committer.firing,
            QUIET_SOURCE => self.quiet_sources.firing,
            DEAD_LETTER_RATE => self.dead_letter_rate.firing,
            SCORE_DRIFT => self.score_drift.firing,
            _ => false,
        }
    }

    /// Sets the gauges the Prometheus rules read (and when they were last worked out), and logs each firing
    /// signal, one line per evaluation: what the Azure Monitor log alerts in Terraform count.
    pub fn export(&self) {
        for name in &self.firing {
            tracing::warn!(signal = *name, "Data signal firing.");
        }
        gauge!("sentiment_lake_signals_evaluated_timestamp_seconds").set(Utc::now().timestamp() as f64);
        for (source, age) in &self.quiet_sources.ages {
            gauge!("sentiment_lake_source_silence_seconds", "source" => source.clone()).set(*age as f64);
        }
        let drift_unknown = self.score_drift.unknown.as_ref();
        for name in ALL {
            // Drift not judged this time keeps its last value (an alert's `for` is not restarted by a
            // failed read); the unknown gauge and its own alert say so.
            if name == SCORE_DRIFT && drift_unknown.is_some() {
                continue;
            }
            gauge!("sentiment_lake_signal_firing", "signal" => name).set(f64::from(u8::from(self.is_firing(name))));
        }
        gauge!("sentiment_lake_signal_unknown", "signal" => SCORE_DRIFT).set(f64::from(u8::from(drift_unknown.is_some())));
        gauge!("sentiment_lake_staged_oldest_age_seconds").set(self.stalled_committer.oldest_staged_age_s.unwrap_or(0) as f64);
        gauge!("sentiment_lake_quiet_sources").set(self.quiet_sources.quiet.len() as f64);
        gauge!("sentiment_lake_dead_letter_ratio").set(self.dead_letter_rate.ratio.unwrap_or(0.0));
        match drift_unknown {
            Some(reason) => tracing::warn!(signal = DRIFT_UNKNOWN, error = %reason, "Data signal firing."),
            None => self.export_drift(),
        }
    }

    /// The PSI of the most drifted distributions (a bounded set still shows the ones that matter). Those
    /// exported last time and not now are set to 0, so no stale value lingers; a process exports at most
    /// [`MAX_DRIFT_LABELS`] label sets over its life (producers inventing names cannot grow the metrics).
    fn export_drift(&self) {
        type Labels = BTreeSet<(String, String)>;
        static EXPORTED: std::sync::Mutex<(Labels, Labels)> = std::sync::Mutex::new((BTreeSet::new(), BTreeSet::new()));
        let mut exported = EXPORTED.lock().unwrap_or_else(|e| e.into_inner());
        let (current, ever) = &mut *exported;
        let mut now = BTreeSet::new();
        for drift in self.score_drift.distributions.iter().filter(|d| d.psi.is_some()).take(MAX_DRIFT_GAUGES) {
            let labels = (drift.key.source_system.clone(), drift.key.model_label());
            if !ever.contains(&labels) {
                if ever.len() >= MAX_DRIFT_LABELS {
                    continue;
                }
                ever.insert(labels.clone());
            }
            gauge!("sentiment_lake_score_drift_psi", "source_system" => labels.0.clone(), "model" => labels.1.clone()).set(drift.psi.unwrap_or(0.0));
            now.insert(labels);
        }
        for (system, model) in current.difference(&now) {
            gauge!("sentiment_lake_score_drift_psi", "source_system" => system.clone(), "model" => model.clone()).set(0.0);
        }
        *current = now;
    }
}
