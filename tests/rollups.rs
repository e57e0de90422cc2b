//! Rollups against raw rows: whatever happens to the records table (new batches, redeliveries, late
//! events, a commit whose rollup never followed, rollbacks, compaction of either table), every aggregate
//! endpoint answered from the rollup equals the same endpoint answered from raw rows by SQL, to the last
//! digit; `rollup verify` finds nothing; and answers say which path they took.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use sentiment_lake::engine::{EmbeddedEngine, QueryEngine, DEFAULT_MEMORY_LIMIT};
use sentiment_lake::ingest::{file::batch_from_file, Pipeline};
use sentiment_lake::lake::{Lake, LakeConfig, TableKind};
use sentiment_lake::query::{Query, QueryKind, QueryService, QueryServiceConfig, RollupUse};
use sentiment_lake::synthetic::EventGenerator;

const END: &str = "2026-11-20T00:00:00Z";

/// Small deterministic generator for the scenario's choices (the events have their own).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn service(lake: &Lake, rollups: RollupUse) -> QueryService {
    let engine = EmbeddedEngine::new(lake.catalog(), lake.target(TableKind::Records).ident.clone(), DEFAULT_MEMORY_LIMIT)
        .unwrap()
        .with_pointer(lake.metadata_pointer())
        .with_rollups(lake.target(TableKind::Rollup).ident.clone());
    QueryService::new(Arc::new(engine) as Arc<dyn QueryEngine>, None, QueryServiceConfig { rollups, ..Default::default() })
}

/// Every aggregate endpoint over windows on and off minute boundaries, each interval, with and without
/// a ticker.
fn questions() -> Vec<Query> {
    let now = instant(END);
    let aligned = "from=2026-11-16T00:00:00Z&to=2026-11-20T00:00:00Z";
    let ragged = "from=2026-11-17T05:07:13.250Z&to=2026-11-19T17:45:01.5Z";
    let inner = "from=2026-11-18T10:00:30Z&to=2026-11-18T10:01:10Z";
    let mut asked = Vec::new();
    for window in [aligned, ragged, inner] {
        for (kind, params) in [
            (QueryKind::TopTickers, "limit=4".to_string()),
            (QueryKind::TopTickers, String::new()),
            (QueryKind::Summary, "ticker=AAPL".into()),
            (QueryKind::Aspects, "ticker=MSFT".into()),
            (QueryKind::Intents, String::new()),
            (QueryKind::Intents, "ticker=NVDA&limit=2".into()),
            (QueryKind::Entities, String::new()),
            (QueryKind::Entities, "entity_type=ORG&limit=3".into()),
            (QueryKind::Entities, "ticker=AMZN".into()),
            (QueryKind::TimeSeries, "ticker=AAPL&interval=minute".into()),
            (QueryKind::TimeSeries, "ticker=AAPL&interval=hour".into()),
            (QueryKind::TimeSeries, "ticker=MSFT&interval=day".into()),
            (QueryKind::TimeSeries, "ticker=GOOGL&interval=week".into()),
        ] {
            if window == aligned && params.contains("interval=minute") {
                continue; // more minutes than a time series may have buckets
            }
            let query = if params.is_empty() { window.to_string() } else { format!("{window}&{params}") };
            asked.push(Query::parse(kind, Some(&query), now).unwrap());
        }
    }
    asked
}

/// Asks every question of both services; panics on the first difference. Returns the paths taken.
async fn compare(rollups: &QueryService, raw: &QueryService, step: &str) -> BTreeMap<String, usize> {
    let mut paths = BTreeMap::new();
    for query in questions() {
        let (a, b) = (rollups.answer(&query).await.unwrap(), raw.answer(&query).await.unwrap());
        assert_eq!(b.stored.path, "raw");
        let (a_data, b_data) = (answer_data(&a), answer_data(&b));
        if a_data != b_data {
            let (a_rows, b_rows) = (
                a_data.as_array().cloned().unwrap_or_else(|| vec![a_data.clone()]),
                b_data.as_array().cloned().unwrap_or_else(|| vec![b_data.clone()]),
            );
            let first = (0..a_rows.len().max(b_rows.len())).find(|i| a_rows.get(*i) != b_rows.get(*i)).unwrap_or(0);
            panic!(
                "{step}: {} from `{}` differs from raw rows ({} rows against {}); first difference at {first}:\n rollup: {:?}\n raw:    {:?}",
                query.canonical(),
                a.stored.path,
                a_rows.len(),
                b_rows.len(),
                a_rows.get(first),
                b_rows.get(first)
            );
        }
        *paths.entry(a.stored.path.clone()).or_default() += 1;
    }
    paths
}

/// Whole UTC days from `day` (a day's start) to today's start: a rebuild keeping minute rows for that many
/// days has its minute floor at `day`.
fn days_before_today(day: &str) -> u32 {
    let day_micros = 86_400_000_000;
    u32::try_from(chrono::Utc::now().timestamp_micros() / day_micros - instant(day).timestamp_micros() / day_micros).expect("the day is past")
}

async fn ingest_batch(lake: &Lake, generator: &mut EventGenerator, source: &str, first: u64, count: u64) {
    let batch = batch_from_file(&generator.ndjson(first, count), source, None).unwrap();
    Pipeline::default().ingest(lake, &batch).await.unwrap();
    lake.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_rollups_equal_raw_answers_through_a_living_table() {
    let dir = warehouse();
    // Minute rows from 2026-11-18 on: the windows below cross the rollup's minute floor, so its minute
    // rows answer some minutes and raw rows the ones before.
    let mut floored = config(dir.path());
    floored.rollup_minute_days = Some(days_before_today("2026-11-18T00:00:00Z"));
    let lake = Lake::open(&floored).await.unwrap();
    // The same warehouse without rollup following: its commits are the crash between the two commits.
    let mut config = config(dir.path());
    config.follow_rollups = false;
    let crashing = Lake::open(&config).await.unwrap();
    let (rollups, raw) = (service(&lake, RollupUse::Auto), service(&lake, RollupUse::Off));
    let mut generator = EventGenerator::new(5, instant(END), 3, 6);
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut batches: Vec<(String, u64, u64)> = Vec::new();
    let mut next_event = 0u64;
    let mut all_paths: BTreeMap<String, usize> = BTreeMap::new();
    let (mut delta_seen, mut left_behind) = (false, false);
    // Every kind of change at least twice, in an order that puts each after the others; the data, sizes,
    // redelivered batches and rollback targets are drawn.
    let schedule = [0, 0, 1, 2, 3, 0, 4, 1, 5, 2, 3, 1, 4, 5];
    for (step, &op) in schedule.iter().enumerate() {
        let described = match op {
            0 | 1 => {
                let count = 150 + dice.below(250);
                let source = format!("part-{}", batches.len());
                let lake = if op == 0 { &lake } else { &crashing };
                ingest_batch(lake, &mut generator, &source, next_event, count).await;
                batches.push((source.clone(), next_event, count));
                next_event += count;
                if op == 0 {
                    format!("batch {source}")
                } else {
                    format!("batch {source}, rollup not followed")
                }
            }
            2 => {
                let (source, first, count) = batches[dice.below(batches.len() as u64) as usize].clone();
                ingest_batch(&lake, &mut generator, &source, first, count).await;
                format!("redelivery of {source}")
            }
            3 => {
                let table = lake.load(TableKind::Records).await.unwrap();
                let mut lineage = Vec::new();
                let mut at = table.metadata().current_snapshot();
                while let Some(snapshot) = at {
                    lineage.push(snapshot.snapshot_id());
                    at = snapshot.parent_snapshot_id().and_then(|p| table.metadata().snapshot_by_id(p));
                }
                if lineage.len() < 2 {
                    continue;
                }
                let to = lineage[1 + dice.below(lineage.len() as u64 - 1) as usize];
                lake.rollback(TableKind::Records, to).await.unwrap();
                format!("rollback to {to}")
            }
            4 => {
                let policy = sentiment_lake::maintain::compact::CompactionPolicy { min_input_files: 2, candidate_ratio: 1.0, ..Default::default() };
                let report = sentiment_lake::maintain::compact::compact(&lake, TableKind::Records, &policy).await.unwrap();
                format!("records compaction ({} files rewritten)", report.files_rewritten)
            }
            _ => {
                let followed = lake.follow_rollups(lake.follow_options()).await.unwrap();
                let policy = sentiment_lake::lake::rollup::RollupCompaction { min_files: 2, ..Default::default() };
                let compacted = sentiment_lake::lake::rollup::compact(lake.handle(TableKind::Rollup), &policy).await.unwrap();
                format!(
                    "rollup repair ({} appends) and compaction ({} files into {})",
                    followed.appends, compacted.files_read, compacted.files_written
                )
            }
        };
        let paths = compare(&rollups, &raw, &format!("step {step}: {described}")).await;
        left_behind |= op == 1;
        delta_seen |= op == 1 && paths.contains_key("rollup+delta");
        for (path, n) in paths {
            *all_paths.entry(path).or_default() += n;
        }
        let verified = lake.verify_rollups(None).await.unwrap();
        assert!(verified.mismatches.is_empty(), "step {step}: {described}: {:?}", &verified.mismatches[..verified.mismatches.len().min(3)]);
    }
    assert!(all_paths.get("rollup").is_some_and(|n| *n > 0), "answers came from rollups: {all_paths:?}");
    assert!(!all_paths.contains_key("raw"), "the rollup answered every aggregate: {all_paths:?}");
    assert_eq!(delta_seen, left_behind, "a commit the rollup did not follow is answered with its delta");
}

/// A commit whose rollup never followed is answered from the rollup plus its added files, and the next
/// follow (or `rollup repair`) covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_left_behind_is_answered_with_the_delta_and_caught_up() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let mut config = config(dir.path());
    config.follow_rollups = false;
    let crashing = Lake::open(&config).await.unwrap();
    let mut generator = EventGenerator::new(9, instant(END), 2, 4);
    ingest_batch(&lake, &mut generator, "a", 0, 300).await;
    ingest_batch(&crashing, &mut generator, "b", 300, 300).await;
    let (rollups, raw) = (service(&lake, RollupUse::Auto), service(&lake, RollupUse::Off));
    let paths = compare(&rollups, &raw, "behind").await;
    assert!(paths.contains_key("rollup+delta"), "{paths:?}");
    let health = |lake: Lake| async move {
        let policy = sentiment_lake::maintain::compact::CompactionPolicy::default();
        sentiment_lake::maintain::health::health(&lake, TableKind::Records, &policy, chrono::Utc::now()).await.unwrap().rollup.unwrap()
    };
    let behind = health(lake.clone()).await;
    assert_eq!((behind.appends_behind, behind.uncovered), (1, None), "health says the rollup is one commit behind");
    let report = lake.follow_rollups(lake.follow_options()).await.unwrap();
    assert_eq!((report.appends, report.rows), (1, 300), "{report:?}");
    let paths = compare(&rollups, &raw, "caught up").await;
    assert!(!paths.contains_key("rollup+delta"), "{paths:?}");
    assert_eq!(health(lake.clone()).await.appends_behind, 0);
    assert!(lake.verify_rollups(None).await.unwrap().mismatches.is_empty());
}

/// `rollup verify` fails on a wrong rollup row, and `rollup rebuild` makes it right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_wrong_rollup_and_rebuild_repairs_it() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let mut generator = EventGenerator::new(3, instant(END), 1, 3);
    ingest_batch(&lake, &mut generator, "a", 0, 200).await;
    assert!(lake.verify_rollups(None).await.unwrap().mismatches.is_empty());

    // A rollup row no record backs, committed as if it covered the current snapshot.
    let rollup = lake.handle(TableKind::Rollup);
    let table = rollup.load().await.unwrap();
    let at = lake.load(TableKind::Records).await.unwrap().metadata().current_snapshot_id().unwrap();
    let mut bogus = sentiment_lake::rollup::Partials::default();
    let key = sentiment_lake::rollup::RowKey {
        grain: sentiment_lake::rollup::Grain::Day,
        period_start: instant("2026-11-19T00:00:00Z").timestamp_micros(),
        ticker: Some("AAPL".into()),
        source_system: "twitter".into(),
        dimension: sentiment_lake::rollup::Dimension::Message,
        name: None,
        kind: None,
    };
    bogus.merge_row(key.clone(), &sentiment_lake::rollup::Measures { count: 1, ..Default::default() });
    let floor = sentiment_lake::lake::rollup::cover::minute_floor_of(table.metadata().current_snapshot().unwrap());
    assert!(sentiment_lake::lake::rollup::commit_partials(rollup, &table, &bogus, at, floor, Vec::new()).await.unwrap());
    let report = lake.verify_rollups(None).await.unwrap();
    assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
    assert_eq!(report.mismatches[0].key, key);

    let rebuilt = lake.rebuild_rollups().await.unwrap();
    assert!(rebuilt.rebuilt && rebuilt.rows == 200, "{rebuilt:?}");
    assert!(lake.verify_rollups(None).await.unwrap().mismatches.is_empty());
}

/// Commit after commit, the rollup's current partitions stay one file each and its manifests stay few:
/// each follow reads back the small files of the partitions it writes to and replaces them, and a
/// manifest left holding only replaced files is dropped by the next snapshot. Answers stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rollup_keeps_one_file_per_partition_and_few_manifests() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let mut generator = EventGenerator::new(11, instant(END), 2, 3);
    let commits = 12;
    for n in 0..commits {
        ingest_batch(&lake, &mut generator, "live", n * 40, 40).await;
    }
    let rollup = lake.load(TableKind::Rollup).await.unwrap();
    let paths = sentiment_lake::lake::rollup::live_rollup_files(&rollup).await.unwrap();
    let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
    for path in &paths {
        *per_partition.entry(path.rsplit_once('/').unwrap().0.to_string()).or_default() += 1;
    }
    assert!(per_partition.values().all(|n| *n == 1), "one file per rollup partition after {commits} commits: {per_partition:?}");
    let current = rollup.metadata().current_snapshot().unwrap();
    let manifests = rollup.manifest_list_reader(current).load().await.unwrap();
    assert!(manifests.entries().len() <= 3, "{} manifests after {commits} follows", manifests.entries().len());
    let (rollups, raw) = (service(&lake, RollupUse::Auto), service(&lake, RollupUse::Off));
    let answered = compare(&rollups, &raw, "after folded follows").await;
    assert!(!answered.contains_key("raw"), "{answered:?}");
    assert!(lake.verify_rollups(None).await.unwrap().mismatches.is_empty());
}

/// History older than the rollup's minute floor (a migration's, a late replay's) is rolled up by the hour
/// and the day only; its minutes are answered from raw rows, so every answer still equals raw rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_before_the_minute_floor_is_rolled_up_by_the_hour_and_day_only() {
    use sentiment_lake::lake::rollup::{rollup_rows, COVERS_PROPERTY, FLOORED_COVERS_PROPERTY, MINUTE_FLOOR_PROPERTY};
    use sentiment_lake::rollup::{Detail, Dimension, Grain};
    let dir = warehouse();
    // The default: minute rows from the start of the day a week before the rebuild.
    let lake = Lake::open(&LakeConfig::local(dir.path().to_string_lossy().to_string())).await.unwrap();
    let now = chrono::Utc::now();
    let mut history = EventGenerator::new(21, instant(END), 3, 6);
    // Nine days up to a minute ago: across the floor, and into the last window below.
    let mut recent = EventGenerator::new(22, now - chrono::Duration::minutes(1), 9, 6);
    ingest_batch(&lake, &mut history, "history", 0, 400).await;
    ingest_batch(&lake, &mut recent, "recent", 0, 1500).await;

    let rollup = lake.load(TableKind::Rollup).await.unwrap();
    let current = rollup.metadata().current_snapshot().unwrap();
    // Versions from before floors read the old key only: they never take this state for one with minutes.
    assert!(current.summary().additional_properties.contains_key(FLOORED_COVERS_PROPERTY));
    assert!(!current.summary().additional_properties.contains_key(COVERS_PROPERTY));
    let floor: i64 = current.summary().additional_properties[MINUTE_FLOOR_PROPERTY].parse().unwrap();
    let day = Grain::Day.micros();
    let floor_of = |at: chrono::DateTime<chrono::Utc>| Grain::Day.start(at.timestamp_micros()) - 7 * day;
    // (The rebuild ran between `now` and now: either side of a midnight.)
    assert!([floor_of(now), floor_of(chrono::Utc::now())].contains(&floor), "the start of the day a week before the rebuild");
    let rows = rollup_rows(&rollup, current.snapshot_id(), None, &Dimension::ALL, None, &Detail::ALL).await.unwrap();
    let (old, new): (Vec<_>, Vec<_>) = rows.rows.keys().partition(|k| k.period_start < floor);
    assert!(!old.is_empty() && !new.is_empty());
    assert!(old.iter().all(|k| k.grain != Grain::Minute), "no minute row before the floor");
    assert!(old.iter().any(|k| k.grain == Grain::Hour), "history has its hours");
    assert!(new.iter().any(|k| k.grain == Grain::Minute), "recent rows have their minutes");

    // Windows of history, of now, and across the floor, by the minute and coarser: equal to raw rows.
    let (rollups, raw) = (service(&lake, RollupUse::Auto), service(&lake, RollupUse::Off));
    let iso = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at_floor = chrono::DateTime::from_timestamp_micros(floor).unwrap();
    let windows = [
        "from=2026-11-18T10:00:30Z&to=2026-11-18T11:31:10Z".to_string(),
        format!("from={}&to={}", iso(at_floor - chrono::Duration::seconds(3 * 3600 + 7)), iso(at_floor + chrono::Duration::seconds(2 * 3600 + 13))),
        format!("from=2026-11-17T05:07:13.250Z&to={}", iso(now)),
        format!("from={}&to={}", iso(now - chrono::Duration::minutes(97)), iso(now)),
    ];
    let mut asked = 0;
    for window in &windows {
        for params in ["interval=minute", "interval=hour", "interval=day"] {
            let query = match Query::parse(QueryKind::TimeSeries, Some(&format!("{window}&ticker=AAPL&{params}")), now) {
                Ok(query) => query,
                // More minutes than a time series may have buckets are refused.
                Err(e) if params == "interval=minute" && e.to_string().contains("buckets") => continue,
                Err(e) => panic!("{window} {params}: {e}"),
            };
            let (a, b) = (rollups.answer(&query).await.unwrap(), raw.answer(&query).await.unwrap());
            assert_eq!(answer_data(&a), answer_data(&b), "{}", query.canonical());
            assert_ne!(a.stored.path, "raw", "{}", query.canonical());
            asked += 1;
        }
        for (kind, params) in [
            (QueryKind::Summary, "&ticker=AAPL"),
            (QueryKind::TopTickers, ""),
            (QueryKind::Aspects, "&ticker=MSFT"),
            (QueryKind::Entities, ""),
            (QueryKind::Intents, ""),
        ] {
            let query = Query::parse(kind, Some(&format!("{window}{params}")), now).unwrap();
            let (a, b) = (rollups.answer(&query).await.unwrap(), raw.answer(&query).await.unwrap());
            assert_eq!(answer_data(&a), answer_data(&b), "{}", query.canonical());
            asked += 1;
        }
    }
    assert!(asked >= 28, "{asked} questions");
    let verified = lake.verify_rollups(None).await.unwrap();
    assert!(verified.mismatches.is_empty(), "{:?}", &verified.mismatches[..verified.mismatches.len().min(3)]);
    assert!(verified.rows_compared > 0);
}
