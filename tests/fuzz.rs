//! Property tests at volume over everything that parses outside input: the Event Hubs invocation decoder
//! (through to validation), the record validator, the legacy Parquet reader (footer, layout detection,
//! transformation, validation) and the query parameters. Inputs are the kept corpus (`fuzz/corpus/<target>/`:
//! recorded payloads, real legacy files, torn ones) mutated byte by byte and spliced with each other, plus
//! random bytes. The property: no input panics; each is accepted or refused with an error.
//!
//! Size: `FUZZ_INPUTS` per target (default 3,000; `docs/reliability.md` records a 1,000,000 run and its
//! command); `FUZZ_SEED` picks the inputs (default 1, so a CI run is repeatable). A failing input is printed
//! whole (minimised).

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::functions::payload::eventhub::{EventDataType, EventHubBatch};
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::migrate::rules::Rules;
use sentiment_lake::migrate::LegacyFile;
use sentiment_lake::query::{Query, QueryKind};

fn inputs() -> u32 {
    std::env::var("FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{} holds no seeds", dir.display());
    seeds
}

/// One edit of a seed: what coverage-guided fuzzers do most (flip, overwrite with an interesting byte,
/// insert, delete a run, duplicate a run, splice in another seed's bytes).
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: u8 },
    Splice { at: usize, from: usize, seed: usize, len: usize },
    Truncate { at: usize },
}

const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\"\\{}[]:,-.0123456789eE+nultrfas \t\n";

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (at, prop::sample::select(INTERESTING)).prop_map(|(at, byte)| Edit::Set { at, byte }),
        (at, prop::collection::vec(prop_oneof![prop::sample::select(INTERESTING), any::<u8>()], 1..12))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (at, 1..64usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (at, 1..32usize, 2..64u8).prop_map(|(at, len, times)| Edit::Repeat { at, len, times }),
        (at, any::<usize>(), any::<usize>(), 1..256usize).prop_map(|(at, from, seed, len)| Edit::Splice { at, from, seed, len }),
        at.prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit], seeds: &[Vec<u8>]) -> Vec<u8> {
    for edit in edits {
        let point = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
        match edit {
            Edit::Flip { at, bit } if !bytes.is_empty() => {
                let i = at % bytes.len();
                bytes[i] ^= 1 << bit;
            }
            Edit::Set { at, byte } if !bytes.is_empty() => {
                let i = at % bytes.len();
                bytes[i] = *byte;
            }
            Edit::Insert { at, bytes: inserted } => {
                let i = point(*at, bytes.len());
                bytes.splice(i..i, inserted.iter().copied());
            }
            Edit::Delete { at, len } => {
                let i = point(*at, bytes.len());
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Repeat { at, len, times } if bytes.len() < 1 << 20 => {
                let i = point(*at, bytes.len());
                let run: Vec<u8> = bytes[i..(i + len).min(bytes.len())].to_vec();
                let repeated: Vec<u8> = run.iter().copied().cycle().take(run.len() * usize::from(*times)).collect();
                bytes.splice(i..i, repeated);
            }
            Edit::Splice { at, from, seed, len } => {
                let other = &seeds[seed % seeds.len()];
                let start = point(*from, other.len());
                let piece = &other[start..(start + len).min(other.len())];
                let i = point(*at, bytes.len());
                bytes.splice(i..i, piece.iter().copied());
            }
            Edit::Truncate { at } => {
                let i = point(*at, bytes.len());
                bytes.truncate(i);
            }
            _ => {}
        }
    }
    bytes
}

/// A seed with up to 8 edits (most inputs stay close to something real), or random bytes.
fn mutated(seeds: Arc<Vec<Vec<u8>>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    prop_oneof![
        9 => (0..count, prop::collection::vec(edit(), 0..8)).prop_map(move |(i, edits)| apply(seeds[i].clone(), &edits, &seeds)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// Runs `check` on `cases` mutations of `seeds` (the corpus of `target`).
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, cases: u32, check: impl Fn(Vec<u8>)) {
    let seeds = Arc::new(seeds);
    // Seeded: a run is repeatable, and a long run with another `FUZZ_SEED` explores new inputs.
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    if let Err(failure) = runner.run(&mutated(seeds), |input| {
        check(input);
        Ok(())
    }) {
        panic!("{target}: {failure}");
    }
    eprintln!("fuzz {target}: {cases} inputs (seed {seed}), no panic");
}

fn now() -> DateTime<Utc> {
    "2025-03-04T00:00:00Z".parse().unwrap()
}

#[test]
fn the_event_hubs_decoder_and_validator_refuse_or_accept_every_payload() {
    let pipeline = Pipeline::new(IncompletePolicy::Enrich);
    fuzz("eventhub", corpus("eventhub"), inputs(), |input| {
        for data_type in [EventDataType::String, EventDataType::Binary] {
            if let Ok(batch) = EventHubBatch::from_body(Bytes::from(input.clone()), "events", data_type) {
                let batch = batch.into_source_batch("ns", "hub", None);
                let validated = pipeline.validate_batch(&batch, now());
                assert_eq!(validated.records.num_rows() + validated.dead_letters.len(), batch.events.len(), "every event is kept or dead-lettered");
            }
        }
    });
}

#[test]
fn the_validator_keeps_or_dead_letters_every_record() {
    let pipelines = [Pipeline::new(IncompletePolicy::Enrich), Pipeline::new(IncompletePolicy::DeadLetter)];
    fuzz("records", corpus("records"), inputs(), |input| {
        let batch = SourceBatch { source: "fuzz".into(), invocation_id: None, events: vec![SourceEvent::new(1, Bytes::from(input))] };
        for pipeline in &pipelines {
            let validated = pipeline.validate_batch(&batch, now());
            assert_eq!(validated.records.num_rows() + validated.dead_letters.len(), 1);
        }
    });
}

#[test]
fn the_query_parameters_parse_or_refuse_every_query_string() {
    // The corpus holds query strings a line each.
    let lines = corpus("query").iter().flat_map(|file| file.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect::<Vec<_>>()).collect();
    fuzz("query", lines, inputs(), |input| {
        let text = String::from_utf8_lossy(&input);
        for kind in QueryKind::ALL {
            if let Ok((query, _)) = Query::parse_request(kind, Some(&text), now()) {
                let window = query.window();
                assert!(window.from <= window.to, "{kind:?}: {text:?} accepted with an inverted window");
                // Parsing is a function of the text: the same text gives the same query (and cache key).
                let (again, _) = Query::parse_request(kind, Some(&text), now()).unwrap();
                assert_eq!(again.canonical(), query.canonical());
            }
        }
    });
}

#[test]
fn the_legacy_reader_refuses_or_transforms_every_file() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pipeline = Pipeline::new(IncompletePolicy::Enrich);
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let rules = Rules::default();
    fuzz("legacy", corpus("legacy"), inputs(), |input| {
        runtime.block_on(async {
            let path = object_store::path::Path::from("exports/AAPL/fuzz.parquet");
            store.put(&path, Bytes::from(input).into()).await.unwrap();
            let meta = store.head(&path).await.unwrap();
            let Ok(mut file) = LegacyFile::open(store.clone(), "memory:///exports", &meta, rules.for_file(meta.location.as_ref()), false).await
            else {
                return;
            };
            if file.infer_layout().await.is_err() {
                return;
            }
            let Ok(mut stream) = file.opened.stream(0) else {
                return;
            };
            let mut row = 0;
            use futures::TryStreamExt;
            while let Ok(Some(batch)) = stream.try_next().await {
                let records = sentiment_lake::migrate::layout::records(&batch, &file.layout, &file.defaults, row);
                row += records.len() as u64;
                let events =
                    records.iter().enumerate().map(|(i, r)| SourceEvent::new(i as i64, Bytes::from(serde_json::to_vec(r).unwrap()))).collect();
                let validated = pipeline.validate_batch(&SourceBatch { source: file.source.clone(), invocation_id: None, events }, now());
                assert_eq!(validated.records.num_rows() + validated.dead_letters.len(), records.len());
            }
        })
    });
}
