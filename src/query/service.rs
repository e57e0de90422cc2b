//! Cache-aside around the engine, keyed by the table's current snapshot and the staged entries above it.
//!
//! Every request first asks the engine for the current snapshot id (one catalog read) and, for answers that
//! include what is staged, the tail above it (one listing a second per instance), then looks for an answer
//! computed at exactly that state. A commit or a newly staged batch therefore invalidates every cached
//! answer at once without any explicit purge, and an answer older than the table is never served; the TTL
//! only bounds memory. Identical concurrent misses in one process share one engine query (single-flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::plan;
use super::question::{Query, QueryKind, Reading};
use crate::cache::{CacheError, QueryCache};
use crate::engine::{EngineError, QueryEngine, SnapshotInfo, TableSnapshot};
use crate::observability::{CacheLookup, QueryAnswered};

/// Bumped when the stored answer format changes, so old entries are ignored rather than misread.
const KEY_VERSION: &str = "v2";

/// How long an answer that includes staged rows stays cached.
const TAIL_TTL: Duration = Duration::from_secs(30);

/// How many times an answer is computed again when staged rows it read were committed meanwhile.
const MOVED_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
    /// `as_of` names no snapshot the table has.
    #[error("{0}")]
    UnknownSnapshot(String),
    /// Staged rows the answer read were committed meanwhile, again and again: retry shortly.
    #[error("{0}")]
    Moved(String),
    /// Every engine slot stayed busy for the queue wait: retry shortly.
    #[error("the query engine is at its limit of {limit} concurrent queries; retry shortly")]
    Overloaded { limit: usize },
}

impl From<EngineError> for QueryError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Unavailable(_) => QueryError::Unavailable(e.to_string()),
            EngineError::Query(_) | EngineError::Shape(_) => QueryError::Failed(e.to_string()),
            EngineError::UnknownSnapshot(m) => QueryError::UnknownSnapshot(m),
            EngineError::Moved(m) => QueryError::Moved(m),
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// From the cache.
    Hit,
    /// Computed by this request and stored.
    Miss,
    /// Computed once for several identical concurrent requests; this one waited for it.
    Shared,
    /// Computed without the cache (none configured, or unreachable: degraded mode).
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Shared => "shared",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// A computed answer as stored in the cache: `data` stays serialized, so a hit is served without re-encoding.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredAnswer {
    pub snapshot_id: Option<i64>,
    pub computed_at: DateTime<Utc>,
    pub compute_ms: f64,
    pub next_cursor: Option<String>,
    /// Which path answered (`rollup`, `rollup+delta`, `raw`); empty in answers cached by older versions.
    #[serde(default)]
    pub path: String,
    /// What the answer includes (`meta.freshness`); none from engines that do not say.
    #[serde(default)]
    pub freshness: Option<crate::lake::tail::Receipt>,
    pub data: Box<RawValue>,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub stored: Arc<StoredAnswer>,
    pub cache: CacheStatus,
    pub engine: &'static str,
}

#[derive(Debug, Clone)]
pub struct QueryServiceConfig {
    /// How long an answer stays in the cache (it is only ever served for its own snapshot).
    pub ttl: Duration,
    /// How many of the busiest tickers get their time series and summary precomputed after a commit.
    pub warm_tickers: u32,
    /// How long an answer for a past snapshot (`as_of`) stays cached: it can never change, so only memory
    /// bounds it.
    pub historical_ttl: Duration,
    /// Engine queries computed at once; more wait for a slot. Without a bound every query admitted shares
    /// the cores with all the others and all of them slow down together (docs/reliability.md, "Load").
    pub max_concurrent_queries: usize,
    /// How long a query waits for a slot before it is refused (503 with `Retry-After`), well inside the
    /// request deadline, so an overloaded instance answers quickly instead of timing out.
    pub queue_wait: Duration,
    /// Whether aggregates may come from the rollup table.
    pub rollups: super::plan::RollupUse,
    /// Whether answers include what is staged above the current snapshot unless a request says
    /// (`fresh=`); off, answers are exactly repeatable per snapshot and lag by up to a commit interval.
    pub fresh: bool,
}

impl Default for QueryServiceConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            ttl: Duration::from_secs(300),
            warm_tickers: 10,
            historical_ttl: Duration::from_secs(24 * 3600),
            max_concurrent_queries: 2 * cores,
            queue_wait: Duration::from_secs(5),
            rollups: Default::default(),
            fresh: true,
        }
    }
}

type Flight = Arc<OnceCell<Result<Arc<StoredAnswer>, QueryError>>>;

pub struct QueryService {
    engine: Arc<dyn QueryEngine>,
    cache: Option<Arc<dyn QueryCache>>,
    config: QueryServiceConfig,
    in_flight: Mutex<HashMap<String, Flight>>,
    /// Held while a warming run is under way: commits in quick succession must not stack up warmers.
    warming: tokio::sync::Mutex<()>,
    /// Engine slots ([`QueryServiceConfig::max_concurrent_queries`]).
    engine_slots: tokio::sync::Semaphore,
}

/// Removes a single-flight entry when its leader finishes *or is dropped* (a cancelled request), so no
/// entry outlives the requests that wait on it.
struct FlightGuard<'a> {
    in_flight: &'a Mutex<HashMap<String, Flight>>,
    key: &'a str,
    flight: &'a Flight,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if in_flight.get(self.key).is_some_and(|f| Arc::ptr_eq(f, self.flight)) {
            in_flight.remove(self.key);
        }
    }
}

impl QueryService {
    pub fn new(engine: Arc<dyn QueryEngine>, cache: Option<Arc<dyn QueryCache>>, mut config: QueryServiceConfig) -> Self {
        config.max_concurrent_queries = config.max_concurrent_queries.max(1);
        let engine_slots = tokio::sync::Semaphore::new(config.max_concurrent_queries);
        Self { engine, cache, config, in_flight: Mutex::new(HashMap::new()), warming: tokio::sync::Mutex::new(()), engine_slots }
    }

    /// Single-flight entries currently held (for tests and health).
    pub fn flights_in_progress(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn engine(&self) -> &dyn QueryEngine {
        self.engine.as_ref()
    }

    pub fn cache(&self) -> Option<&dyn QueryCache> {
        self.cache.as_deref()
    }

    fn key(&self, snapshot: &TableSnapshot, query: &Query) -> String {
        let digest = Sha256::digest(query.canonical().as_bytes());
        let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("sentiment-lake:{KEY_VERSION}:{}:{}:{}:{}:{hash}", self.engine.name(), snapshot.table, snapshot.state_key(), query.kind().name())
    }

    pub async fn answer(&self, query: &Query) -> Result<Answer, QueryError> {
        self.answer_at(query, None).await
    }

    /// The answer at the snapshot `as_of` names (time travel), or at the current one with what is staged
    /// above it unless `fresh` (or the server's default) says otherwise. A snapshot and a tail never change,
    /// so an answer is cached under them either way; past ones for `historical_ttl`. When staged rows the
    /// answer read were committed meanwhile, it is computed again from the newer snapshot.
    pub async fn answer_at(&self, query: &Query, reading: impl Into<Reading>) -> Result<Answer, QueryError> {
        let reading = reading.into();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.answer_once(query, reading).await {
                Err(QueryError::Moved(why)) if attempt < MOVED_ATTEMPTS => {
                    tracing::debug!(why, "Staged rows moved while read; answering again.");
                }
                other => return other,
            }
        }
    }

    async fn answer_once(&self, query: &Query, reading: Reading) -> Result<Answer, QueryError> {
        let started = Instant::now();
        let as_of = reading.as_of;
        let snapshot = match (as_of, reading.fresh.unwrap_or(self.config.fresh)) {
            (Some(as_of), _) => self.engine.snapshot_as_of(as_of).await?,
            (None, true) => self.engine.fresh_snapshot().await?,
            (None, false) => self.engine.current_snapshot().await?,
        };
        let ttl = match (as_of, &snapshot.tail) {
            (Some(_), _) => self.config.historical_ttl,
            // Its key changes with the next staged batch (about every second under ingestion): kept briefly.
            (None, Some(_)) => self.config.ttl.min(TAIL_TTL),
            (None, None) => self.config.ttl,
        };
        let key = self.key(&snapshot, query);
        let kind = query.kind();

        let mut cache_usable = false;
        if let Some(cache) = &self.cache {
            let lookup = Instant::now();
            let name = kind.name();
            match cache.get(&key).await {
                Ok(Some(bytes)) => match serde_json::from_slice::<StoredAnswer>(&bytes) {
                    Ok(stored) => {
                        CacheLookup { query: name, outcome: "hit", elapsed: lookup.elapsed(), error: None }.emit();
                        return Ok(self.finish(kind, Arc::new(stored), CacheStatus::Hit, started));
                    }
                    // Written by an incompatible version: recompute and overwrite.
                    Err(e) => {
                        CacheLookup { query: name, outcome: "miss", elapsed: lookup.elapsed(), error: Some(&e) }.emit();
                        cache_usable = true;
                    }
                },
                Ok(None) => {
                    CacheLookup { query: name, outcome: "miss", elapsed: lookup.elapsed(), error: None }.emit();
                    cache_usable = true;
                }
                Err(e) => {
                    let error = (!matches!(e, CacheError::Skipped)).then_some(&e as &dyn std::fmt::Display);
                    CacheLookup { query: name, outcome: "bypass", elapsed: lookup.elapsed(), error }.emit()
                }
            }
        }

        let flight = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.entry(key.clone()).or_default().clone()
        };
        let mut led = false;
        let result = {
            let _guard = FlightGuard { in_flight: &self.in_flight, key: &key, flight: &flight };
            flight
                .get_or_init(|| {
                    led = true;
                    self.compute_and_store(query, &snapshot, &key, cache_usable.then_some(ttl))
                })
                .await
                .clone()
        };
        let stored = result?;
        let status = match (led, cache_usable) {
            (false, _) => CacheStatus::Shared,
            (true, true) => CacheStatus::Miss,
            (true, false) => CacheStatus::Bypass,
        };
        Ok(self.finish(kind, stored, status, started))
    }

    fn finish(&self, kind: QueryKind, stored: Arc<StoredAnswer>, cache: CacheStatus, started: Instant) -> Answer {
        QueryAnswered { query: kind.name(), engine: self.engine.name(), cache: cache.as_str(), elapsed: started.elapsed() }.emit();
        Answer { stored, cache, engine: self.engine.name() }
    }

    /// The table's snapshots, newest first (the engine's view; not cached: it is what says which are new).
    pub async fn history(&self) -> Result<Vec<SnapshotInfo>, QueryError> {
        Ok(self.engine.history().await?)
    }

    async fn compute_and_store(
        &self,
        query: &Query,
        snapshot: &TableSnapshot,
        key: &str,
        store: Option<Duration>,
    ) -> Result<Arc<StoredAnswer>, QueryError> {
        let Ok(Ok(slot)) = tokio::time::timeout(self.config.queue_wait, self.engine_slots.acquire()).await else {
            crate::observability::QueryShed { query: query.kind().name(), engine: self.engine.name() }.emit();
            return Err(QueryError::Overloaded { limit: self.config.max_concurrent_queries });
        };
        let started = Instant::now();
        let computed = plan::compute(query, self.engine.as_ref(), snapshot, self.config.rollups).await;
        // The slot bounds engine work only, not the cache write that follows.
        drop(slot);
        let computed = computed?;
        let data = serde_json::value::to_raw_value(&computed.data).map_err(|e| QueryError::Failed(e.to_string()))?;
        let stored = StoredAnswer {
            snapshot_id: snapshot.snapshot_id,
            computed_at: Utc::now(),
            compute_ms: started.elapsed().as_secs_f64() * 1e3,
            next_cursor: computed.next_cursor,
            path: computed.path,
            freshness: snapshot.receipt.as_deref().cloned(),
            data,
        };
        if let (Some(ttl), Some(cache)) = (store, &self.cache) {
            match serde_json::to_vec(&stored) {
                Ok(bytes) => {
                    let put = Instant::now();
                    if let Err(e) = cache.put(key, &bytes, ttl).await {
                        let error = (!matches!(e, CacheError::Skipped)).then_some(&e as &dyn std::fmt::Display);
                        CacheLookup { query: query.kind().name(), outcome: "store_failed", elapsed: put.elapsed(), error }.emit();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "answer not cacheable"),
            }
        }
        Ok(Arc::new(stored))
    }

    /// Precomputes what dashboards ask first at the current snapshot: the busiest tickers over the last day
    /// and week, and for the busiest `warm_tickers` their hourly time series (1 day) and summary (7 days).
    /// Returns how many answers were computed or already cached; `None` when another warming run was still
    /// going (it will have seen the same or a newer snapshot, so one run at a time is enough).
    pub async fn warm(&self) -> Result<Option<usize>, QueryError> {
        let Ok(_running) = self.warming.try_lock() else {
            return Ok(None);
        };
        self.warm_now().await.map(Some)
    }

    async fn warm_now(&self) -> Result<usize, QueryError> {
        let now = Utc::now();
        let parse = |kind: QueryKind, q: &str| Query::parse(kind, Some(q), now).map_err(|e| QueryError::Failed(e.to_string()));
        let mut warmed = 0;
        let mut top = Vec::new();
        for days in [1, 7] {
            let answer = self.answer(&parse(QueryKind::TopTickers, &format!("days={days}&limit={}", self.config.warm_tickers.max(1)))?).await?;
            warmed += 1;
            if days == 1 {
                let rows: Vec<serde_json::Value> = serde_json::from_str(answer.stored.data.get()).map_err(|e| QueryError::Failed(e.to_string()))?;
                top = rows.iter().filter_map(|r| r.get("ticker").and_then(|t| t.as_str()).map(str::to_string)).collect();
            }
        }
        for ticker in top.iter().take(self.config.warm_tickers as usize) {
            self.answer(&parse(QueryKind::TimeSeries, &format!("ticker={ticker}&interval=hour&days=1"))?).await?;
            self.answer(&parse(QueryKind::Summary, &format!("ticker={ticker}&days=7"))?).await?;
            warmed += 2;
        }
        Ok(warmed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::RecordBatch;
    use async_trait::async_trait;

    use super::*;
    use crate::engine::Interval;
    use crate::engine::{Dialect, SqlQuery};

    /// An engine that counts executions (and the most at once) and answers every query with no rows after
    /// a pause.
    #[derive(Default)]
    struct SlowEmptyEngine {
        executions: AtomicUsize,
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    struct PlainDialect;
    impl Dialect for PlainDialect {
        fn placeholder(&self, index: usize) -> String {
            format!("${index}")
        }
        fn time_bucket(&self, interval: Interval, column: &str) -> String {
            format!("date_trunc('{}', {column})", interval.as_str())
        }
        fn map_entries(&self, column: &str, k: &str, v: &str, table: &str, filter: &str) -> String {
            format!("(SELECT {column} AS {k}, {column} AS {v} FROM {table} WHERE {filter})")
        }
        fn list_elements(&self, column: &str, alias: &str) -> String {
            format!("{column} AS {alias}")
        }
        fn struct_field(&self, expr: &str, field: &str) -> String {
            format!("{expr}.{field}")
        }
    }

    #[async_trait]
    impl QueryEngine for SlowEmptyEngine {
        fn name(&self) -> &'static str {
            "test"
        }
        fn dialect(&self) -> &dyn Dialect {
            &PlainDialect
        }
        fn table_expr(&self, _: &TableSnapshot) -> String {
            "t".into()
        }
        async fn current_snapshot(&self) -> Result<TableSnapshot, EngineError> {
            Ok(TableSnapshot::committed("ns.t", Some(7)))
        }
        async fn snapshot_as_of(&self, _: crate::engine::AsOf) -> Result<TableSnapshot, EngineError> {
            self.current_snapshot().await
        }
        async fn history(&self) -> Result<Vec<crate::engine::SnapshotInfo>, EngineError> {
            Ok(Vec::new())
        }
        async fn execute(&self, _: &TableSnapshot, _: &SqlQuery) -> Result<Vec<RecordBatch>, EngineError> {
            self.executions.fetch_add(1, Ordering::SeqCst);
            let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn identical_concurrent_misses_run_one_query() {
        let engine = Arc::new(SlowEmptyEngine::default());
        let service = Arc::new(QueryService::new(engine.clone(), None, QueryServiceConfig::default()));
        let query = Query::parse(QueryKind::TopTickers, Some("days=1"), Utc::now()).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (service, query) = (service.clone(), query.clone());
                tokio::spawn(async move { service.answer(&query).await.unwrap().cache })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(engine.executions.load(Ordering::SeqCst), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == CacheStatus::Bypass).count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == CacheStatus::Shared).count(), 15);
        // The flight is over: a later request computes again.
        service.answer(&query).await.unwrap();
        assert_eq!(engine.executions.load(Ordering::SeqCst), 2);
        assert_eq!(service.flights_in_progress(), 0);
    }

    /// Six different queries at once against two engine slots: with a short queue wait the four that find
    /// no slot are refused as overloaded; with a long one they queue; never more than two run.
    #[tokio::test]
    async fn engine_queries_beyond_the_limit_queue_then_are_refused() {
        for (queue_wait, refused) in [(Duration::from_millis(20), 4), (Duration::from_secs(5), 0)] {
            let engine = Arc::new(SlowEmptyEngine::default());
            let config = QueryServiceConfig { max_concurrent_queries: 2, queue_wait, ..QueryServiceConfig::default() };
            let service = Arc::new(QueryService::new(engine.clone(), None, config));
            let tasks: Vec<_> = (1..=6)
                .map(|days| {
                    let service = service.clone();
                    let query = Query::parse(QueryKind::TopTickers, Some(&format!("days={days}")), Utc::now()).unwrap();
                    tokio::spawn(async move { service.answer(&query).await.map(|a| a.cache) })
                })
                .collect();
            let mut overloaded = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => {}
                    Err(QueryError::Overloaded { limit: 2 }) => overloaded += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(overloaded, refused, "queue wait {queue_wait:?}");
            assert_eq!(engine.executions.load(Ordering::SeqCst), 6 - refused);
            assert_eq!(engine.peak.load(Ordering::SeqCst), 2);
        }
    }

    #[tokio::test]
    async fn a_cancelled_leader_leaves_no_flight_behind() {
        let engine = Arc::new(SlowEmptyEngine::default());
        let service = Arc::new(QueryService::new(engine.clone(), None, QueryServiceConfig::default()));
        let query = Query::parse(QueryKind::TopTickers, Some("days=1"), Utc::now()).unwrap();
        // The leader is abandoned mid-query, as the request deadline or a client hang-up would.
        let cancelled = tokio::time::timeout(Duration::from_millis(10), service.answer(&query)).await;
        assert!(cancelled.is_err());
        assert_eq!(service.flights_in_progress(), 0);
        service.answer(&query).await.unwrap();
        assert_eq!(service.flights_in_progress(), 0);
    }

    #[tokio::test]
    async fn one_warming_run_at_a_time() {
        let engine = Arc::new(SlowEmptyEngine::default());
        let service = Arc::new(QueryService::new(engine.clone(), None, QueryServiceConfig::default()));
        let (first, second) = tokio::join!(service.warm(), service.warm());
        let outcomes = [first.unwrap(), second.unwrap()];
        assert!(outcomes.contains(&None), "{outcomes:?}");
        assert!(outcomes.iter().any(Option::is_some), "{outcomes:?}");
        assert!(service.warm().await.unwrap().is_some(), "the next commit's run goes ahead");
    }

    #[test]
    fn keys_carry_engine_table_snapshot_and_query() {
        let engine = Arc::new(SlowEmptyEngine::default());
        let service = QueryService::new(engine, None, QueryServiceConfig::default());
        let query = Query::parse(QueryKind::TimeSeries, Some("ticker=AAPL&days=1"), Utc::now()).unwrap();
        let at = |id| service.key(&TableSnapshot::committed("ns.t", id), &query);
        assert!(at(Some(1)).starts_with("sentiment-lake:v2:test:ns.t:1:timeseries:"), "{}", at(Some(1)));
        assert_ne!(at(Some(1)), at(Some(2)));
        assert!(at(None).contains(":empty:"));
    }
}
