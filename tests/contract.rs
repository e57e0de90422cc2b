//! Ingestion on real input, as a production user meets it on day one: host-shaped invocations of full size,
//! bodies in whatever encoding the binding delivers, staging that holds damaged or foreign files, listings
//! that miss an entry, redeliveries judged the same way, and partition values that look like paths.

mod common;

use std::path::Path;

use base64::Engine as _;
use chrono::{Duration, Utc};
use common::*;
use sentiment_lake::app::QueryOptions;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::functions::api::ApiConfig;
use sentiment_lake::ingest::{Pipeline, SourceBatch, SourceEvent};
use sentiment_lake::lake::{Lake, TableKind};
use serde_json::Value;

fn ids_once(lake_rows: &arrow_array::RecordBatch) -> Vec<String> {
    let ids = sorted(lake_rows, "message_id");
    assert!(counts(&ids).values().all(|&n| n == 1), "a row is in the table twice");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_size_batches_are_accepted_and_committed_once() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    let end = Utc::now();
    // 1,000 events of 8 KB (an ~11 MB invocation as the host double-encodes it) and 10,000 events of ~1 KB.
    let large = padded_events(end, 0, 1_000, 8 * 1024);
    let many: Vec<String> = events(end, 1_000, 10_000).iter().map(Value::to_string).collect();
    let batches = [host_envelope("0", 1, &large, end), host_envelope("1", 1, &many, end)];
    assert!(batches[0].len() > 8_000_000 && batches[1].len() > 10_000_000, "{} and {} bytes", batches[0].len(), batches[1].len());
    for delivery in 0..2 {
        for body in &batches {
            let (status, reply) = post(&server.base, "IngestEvents", body.clone()).await;
            assert_eq!(status, 200, "delivery {delivery}: {}", reply["Logs"]);
            assert_eq!(reply["ReturnValue"]["dead_lettered"], 0, "{}", reply["Logs"]);
        }
        let reports = lake.commit().await.unwrap();
        assert_eq!(reports[0].rows_committed, if delivery == 0 { 11_000 } else { 0 });
    }
    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(ids_once(&rows).len(), 11_000);
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!((state.watermarks.get(&host_source("0")), state.watermarks.get(&host_source("1"))), (Some(1_000), Some(10_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_envelope_over_the_limit_is_stored_whole_and_acknowledged() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve_limited(lake.clone(), IncompletePolicy::Enrich, QueryOptions::default(), ApiConfig::default(), 64 * 1024).await;
    let end = Utc::now();
    let body = host_envelope("4", 1, &padded_events(end, 0, 40, 4 * 1024), end);
    assert!(body.len() > 150 * 1024);
    let (status, reply) = post(&server.base, "IngestEvents", body.clone()).await;
    assert_eq!(status, 200, "never a 413 the host would resend forever: {reply}");
    assert_eq!(reply["ReturnValue"]["bytes"], body.len());
    let stored = reply["ReturnValue"]["quarantined"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join(stored)).unwrap(), body, "stored byte for byte");
    let items = lake.quarantine().list().await.unwrap();
    assert!(items[0].1.reason.contains("larger than the 65536 byte limit"), "{items:?}");
    // A batch under the limit on the same server is ingested as usual.
    let small = host_envelope("4", 41, &events(end, 40, 5).iter().map(Value::to_string).collect::<Vec<_>>(), end);
    assert_eq!(post(&server.base, "IngestEvents", small).await.0, 200);
    lake.commit().await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 5);
}

/// Bodies arrive base64-encoded when a producer or a binding says so; one `null` event is that event's
/// dead letter, not the batch's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn base64_bodies_are_records_whatever_the_binding_and_a_null_event_is_one_dead_letter() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    let end = Utc::now();
    let plain: Vec<String> = events(end, 0, 4).iter().map(Value::to_string).collect();
    let mut bodies: Vec<Value> = plain.iter().map(|b| Value::String(base64::engine::general_purpose::STANDARD.encode(b))).collect();
    bodies.insert(2, Value::Null);
    let mut envelope: Value = serde_json::from_str(&host_envelope("2", 1, &vec![String::new(); 5], end)).unwrap();
    envelope["Data"]["events"] = Value::String(Value::Array(bodies).to_string());
    let (status, reply) = post(&server.base, "IngestEvents", envelope.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!((reply["ReturnValue"]["staged_rows"].as_u64(), reply["ReturnValue"]["dead_lettered"].as_u64()), (Some(4), Some(1)));
    lake.commit().await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 4);
    let letters = scan(&lake, TableKind::DeadLetters).await;
    assert_eq!(strings(&letters, "error_message"), vec![Some("event body is null".to_string())]);
    assert_eq!(strings(&letters, "sequence_number"), vec![Some("3".to_string())]);
}

/// Stages `count` events of source `name` as consecutive batches of `per_batch`, returning each batch's
/// records entry.
async fn stage_batches(lake: &Lake, name: &str, count: u64, per_batch: u64) -> Vec<String> {
    let pipeline = Pipeline::new(IncompletePolicy::DeadLetter);
    let all = events(Utc::now(), 0, count);
    let mut entries = Vec::new();
    for (b, chunk) in all.chunks(per_batch as usize).enumerate() {
        let first = b as i64 * per_batch as i64 + 1;
        let batch = SourceBatch {
            source: name.to_string(),
            invocation_id: None,
            events: chunk.iter().enumerate().map(|(i, e)| SourceEvent::new(first + i as i64, bytes::Bytes::from(e.to_string()))).collect(),
        };
        let report = pipeline.ingest(lake, &batch).await.unwrap();
        entries.push(report.segments.iter().find(|s| s.contains("sentiment_records") && s.ends_with(".arrow")).unwrap().clone());
    }
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damaged_and_foreign_staged_files_are_quarantined_and_hold_nothing_back() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let a = stage_batches(&lake, "source-a", 40, 10).await;
    let b = stage_batches(&lake, "source-b", 10, 10).await;
    // Damage: a zero-byte segment in the middle of a's chain, a truncated one as b's only segment, a
    // Parquet file of another schema and a stray file.
    std::fs::write(dir.path().join(&a[1]), b"").unwrap();
    let whole = std::fs::read(dir.path().join(&b[0])).unwrap();
    std::fs::write(dir.path().join(&b[0]), &whole[..whole.len() / 2]).unwrap();
    let key_dir = Path::new(&a[0]).parent().unwrap().to_path_buf();
    let foreign = dir.path().join(&key_dir).join(format!("41_50_{}.parquet", uuid::Uuid::now_v7()));
    {
        use std::sync::Arc;
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new("x", arrow_schema::DataType::Int64, false)]));
        let batch = arrow_array::RecordBatch::try_new(schema.clone(), vec![Arc::new(arrow_array::Int64Array::from(vec![1, 2]))]).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&foreign).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }
    let area = dir.path().join("_staging").join(&lake.target(TableKind::Records).staging.dir);
    std::fs::write(area.join("stray.txt"), b"hello").unwrap();

    let report = lake.commit().await.unwrap().remove(0);
    assert_eq!(report.quarantined, 4, "{report:?}");
    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(ids_once(&rows).len(), 30, "a's three good batches; the damaged ranges are accounted for, not waited on");
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!((state.watermarks.get("source-a"), state.watermarks.get("source-b")), (Some(50), Some(10)));
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    let reasons: Vec<String> = lake.quarantine().list().await.unwrap().into_iter().map(|(_, r)| r.reason).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("not a readable segment")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("no source in the file's metadata")), "the Parquet file of another writer: {reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("unrecognised name")), "{reasons:?}");
    // New data for both sources keeps flowing.
    let more = SourceBatch {
        source: "source-b".into(),
        invocation_id: None,
        events: vec![SourceEvent::new(11, bytes::Bytes::from(events(Utc::now(), 900, 1)[0].to_string()))],
    };
    Pipeline::new(IncompletePolicy::DeadLetter).ingest(&lake, &more).await.unwrap();
    assert_eq!(lake.commit().await.unwrap()[0].rows_committed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_hidden_from_one_listing_is_committed_later_not_lost() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let entries = stage_batches(&lake, "source-h", 30, 10).await;
    // The second batch's segment is not visible to the first commit (still being written by a slow
    // storage path, or missed by a listing).
    let hidden = dir.path().join(&entries[1]);
    let aside = dir.path().join("aside.parquet");
    std::fs::rename(&hidden, &aside).unwrap();
    let first = lake.commit().await.unwrap().remove(0);
    assert_eq!((first.rows_committed, first.waiting), (10, 1), "only the range before the gap: {first:?}");
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.get("source-h"), Some(10));
    std::fs::rename(&aside, &hidden).unwrap();
    let second = lake.commit().await.unwrap().remove(0);
    assert_eq!(second.rows_committed, 20);
    assert_eq!(ids_once(&scan(&lake, TableKind::Records).await).len(), 30);
}

/// An event more than a day ahead of its enqueued time is refused, and stays refused when it is redelivered
/// later: the verdict never depends on when the batch is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivery_across_the_future_timestamp_boundary_ends_in_exactly_one_table() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let enqueued = Utc::now() - Duration::hours(1);
    let mut event = events(enqueued, 0, 1).remove(0);
    event["event_timestamp"] = Value::String((enqueued + Duration::days(1) + Duration::minutes(10)).to_rfc3339());
    let batch = SourceBatch {
        source: "source-t".into(),
        invocation_id: None,
        events: vec![SourceEvent { enqueued_time: Some(enqueued), ..SourceEvent::new(1, bytes::Bytes::from(event.to_string())) }],
    };
    let pipeline = Pipeline::default();
    // First delivery a minute after enqueueing; redelivery after a crash, 20 minutes later: by the wall
    // clock the timestamp would be within a day by then.
    pipeline.ingest_at(&lake, &batch, enqueued + Duration::minutes(1)).await.unwrap();
    lake.commit().await.unwrap();
    pipeline.ingest_at(&lake, &batch, enqueued + Duration::minutes(20)).await.unwrap();
    lake.commit().await.unwrap();
    let (rows, letters) = (scan(&lake, TableKind::Records).await.num_rows(), scan(&lake, TableKind::DeadLetters).await.num_rows());
    assert_eq!((rows, letters), (0, 1), "one copy, in the dead-letter table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_tickers_and_sources_keep_every_file_under_the_table_location() {
    let root = warehouse();
    let dir = root.path().join("warehouse");
    std::fs::create_dir_all(&dir).unwrap();
    let lake = open(&dir).await;
    // Tickers may hold `/` and `.` (BRK/B, BTC/USD) and sources any printable text: every one is valid.
    let hostile = [("A/../../../../X", "news"), ("B/..", "../../etc"), ("C", "a/b/c"), ("D", "/abs"), ("E.F", "..%2F.."), ("G", "yahoo finance")];
    let mut sent = Vec::new();
    for (i, (ticker, source)) in hostile.iter().enumerate() {
        let mut event = events(Utc::now(), i as u64, 1).remove(0);
        event["ticker"] = Value::String(ticker.to_string());
        event["source_system"] = Value::String(source.to_string());
        sent.push(event);
    }
    let ndjson: Vec<u8> = sent.iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, "hostile", None).unwrap();
    let report = Pipeline::new(IncompletePolicy::DeadLetter).ingest(&lake, &batch).await.unwrap();
    assert_eq!(report.staged_rows, hostile.len());
    lake.commit().await.unwrap();
    assert!(files_outside(root.path(), &dir).is_empty(), "escaped: {:?}", files_outside(root.path(), &dir));
    let table_dir = dir.join("sentiment").join("sentiment_records");
    let data: Vec<_> = files_under(&dir, ".parquet").into_iter().filter(|p| !p.starts_with(dir.join("sentiment"))).collect();
    assert!(data.is_empty(), "data files outside the tables: {data:?}");
    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(rows.num_rows(), report.staged_rows);
    for path in files_under(&table_dir.join("data"), ".parquet") {
        assert!(path.starts_with(&table_dir), "{path:?}");
    }
    // An independent reader finds every row with its values intact.
    let seen = read_with_pyiceberg(&dir, sentiment_lake::lake::LakeConfig::DEFAULT_TABLE);
    let mut tickers: Vec<String> = seen["rows"].as_array().unwrap().iter().map(|r| r["ticker"].as_str().unwrap().to_string()).collect();
    tickers.sort();
    let mut expected: Vec<String> = sorted(&rows, "ticker");
    expected.sort();
    assert_eq!(tickers, expected);
    assert!(tickers.contains(&"A/../../../../X".to_string()), "{tickers:?}");
}
