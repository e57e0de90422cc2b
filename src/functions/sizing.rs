//! What one Functions instance holds in memory at worst, from `host.json`'s Event Hubs limits and the
//! deployment's sizes, against the instance's memory: the arithmetic behind the shipped `host.json`, checked
//! by `doctor` in the deployed app and by the deployment pre-flight (`sentiment-lake sizing`).
//!
//! The worst case is one instance holding every partition (the app scaled down to one instance while a
//! backlog waits): the Event Hubs extension prefetches `prefetchCount` events *per partition* it holds, runs
//! one batch per partition at a time, and the host turns each batch into one invocation request.

use serde_json::Value;

const MIB: u64 = 1024 * 1024;

/// The Event Hubs limits of `host.json` (`extensions.eventHubs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHubLimits {
    pub max_event_batch_size: u64,
    pub prefetch_count: u64,
}

impl EventHubLimits {
    /// Reads `host.json`; the extension's own defaults (100 and 300) fill what it leaves out.
    pub fn from_host_json(text: &str) -> Result<Self, String> {
        let host: Value = serde_json::from_str(text).map_err(|e| format!("host.json: {e}"))?;
        let hubs = &host["extensions"]["eventHubs"];
        let number = |key: &str, default: u64| match &hubs[key] {
            Value::Null => Ok(default),
            value => {
                value.as_u64().filter(|n| *n > 0).ok_or_else(|| format!("host.json: extensions.eventHubs.{key} is {value}, not a positive integer"))
            }
        };
        Ok(Self { max_event_batch_size: number("maxEventBatchSize", 100)?, prefetch_count: number("prefetchCount", 300)? })
    }
}

/// What the deployment decides besides `host.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deployment {
    /// Event Hubs partitions: the most one instance can hold.
    pub partitions: u64,
    pub instance_memory_mb: u64,
    /// The largest event producers send (Event Hubs accepts up to 1 MB on Standard).
    pub max_event_kb: u64,
    /// `SENTIMENT_LAKE_COMMIT_PASS_MB`: staged data one commit pass reads.
    pub commit_pass_mb: u64,
    /// `SENTIMENT_LAKE_MAX_INVOCATION_MB`: the largest invocation body the handler reads into memory.
    pub max_invocation_mb: u64,
}

/// The Functions host process and the handler idle, before any work: an allowance, not a measurement of
/// Azure's host (which cannot run here); the handler's own idle footprint is measured in docs/deploy.md.
pub const BASELINE_MB: u64 = 384;
/// A budget above this share of the instance's memory leaves too little for the allocator and page cache.
pub const HEADROOM: f64 = 0.9;

/// One term of the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub what: &'static str,
    pub formula: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub terms: Vec<Term>,
    pub total: u64,
    pub limit: u64,
}

impl Budget {
    pub fn new(hubs: EventHubLimits, d: Deployment) -> Self {
        let event = d.max_event_kb * 1024;
        let batch = hubs.max_event_batch_size * event;
        // The host string-wraps the batch (JSON in a string: quotes escaped), about twice its size; the
        // handler reads at most its limit and quarantines larger invocations.
        let body = (2 * batch).min(d.max_invocation_mb * MIB);
        let terms = vec![
            Term {
                what: "prefetched events",
                formula: format!("{} partitions x prefetchCount {} x {} KB", d.partitions, hubs.prefetch_count, d.max_event_kb),
                bytes: d.partitions * hubs.prefetch_count * event,
            },
            Term {
                what: "batches in the host",
                formula: format!(
                    "{} partitions x (maxEventBatchSize {} x {} KB + its request, about twice that)",
                    d.partitions, hubs.max_event_batch_size, d.max_event_kb
                ),
                bytes: d.partitions * 3 * batch,
            },
            Term {
                what: "invocations in the handler",
                formula: format!("{} partitions x 2 x request ({} MiB; decoding holds about twice the body)", d.partitions, body / MIB),
                bytes: d.partitions * 2 * body,
            },
            Term {
                what: "a commit pass",
                formula: format!("6 x SENTIMENT_LAKE_COMMIT_PASS_MB {}", d.commit_pass_mb),
                bytes: 6 * d.commit_pass_mb * MIB,
            },
            Term { what: "host and handler at rest", formula: format!("{BASELINE_MB} MiB allowance"), bytes: BASELINE_MB * MIB },
        ];
        let total = terms.iter().map(|t| t.bytes).sum();
        Self { terms, total, limit: d.instance_memory_mb * MIB }
    }

    pub fn fits(&self) -> bool {
        (self.total as f64) <= self.limit as f64 * HEADROOM
    }

    /// One line per term, then the total against the instance.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for term in &self.terms {
            out.push_str(&format!("  {:>6} MiB  {}: {}\n", term.bytes / MIB, term.what, term.formula));
        }
        out.push_str(&format!(
            "  {:>6} MiB  in all, {:.0} % of the instance's {} MiB (at most {:.0} % leaves room for the allocator)\n",
            self.total / MIB,
            100.0 * self.total as f64 / self.limit.max(1) as f64,
            self.limit / MIB,
            HEADROOM * 100.0
        ));
        out
    }
}

/// The memory this process may use: the cgroup's limit (what Flex Consumption enforces), if there is one.
pub fn cgroup_memory_limit() -> Option<u64> {
    ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .filter_map(|text| text.trim().parse::<u64>().ok())
        // cgroup v1 reports "no limit" as a huge number.
        .find(|limit| *limit < (1 << 50))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../host.json");

    fn deployment(partitions: u64) -> Deployment {
        Deployment { partitions, instance_memory_mb: 2048, max_event_kb: 64, commit_pass_mb: 64, max_invocation_mb: 128 }
    }

    #[test]
    fn the_shipped_host_json_fits_a_2_gb_instance_holding_eight_partitions_of_64_kb_events() {
        let hubs = EventHubLimits::from_host_json(SHIPPED).unwrap();
        let budget = Budget::new(hubs, deployment(8));
        assert!(budget.fits(), "{}", budget.render());
    }

    #[test]
    fn the_earlier_limits_did_not() {
        // prefetchCount 3000 and batches of 1000: 1.5 GB prefetched alone.
        let hubs = EventHubLimits { max_event_batch_size: 1000, prefetch_count: 3000 };
        let budget = Budget::new(hubs, deployment(8));
        assert!(!budget.fits());
        assert_eq!(budget.terms[0].bytes, 8 * 3000 * 64 * 1024);
        assert!(budget.render().contains("prefetchCount 3000"), "{}", budget.render());
    }

    #[test]
    fn defaults_fill_what_host_json_leaves_out_and_nonsense_is_refused() {
        assert_eq!(EventHubLimits::from_host_json("{}").unwrap(), EventHubLimits { max_event_batch_size: 100, prefetch_count: 300 });
        assert!(EventHubLimits::from_host_json(r#"{"extensions": {"eventHubs": {"prefetchCount": -1}}}"#).is_err());
        assert!(EventHubLimits::from_host_json("not json").is_err());
    }

    #[test]
    fn the_handler_never_holds_more_than_its_invocation_limit() {
        let hubs = EventHubLimits { max_event_batch_size: 10_000, prefetch_count: 1 };
        let budget = Budget::new(hubs, deployment(1));
        assert_eq!(budget.terms[2].bytes, 2 * 128 * MIB);
    }
}
