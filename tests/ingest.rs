//! End-to-end ingestion through the real HTTP server: recorded Event Hubs payloads in, committed Iceberg
//! rows and dead letters out, exactly once under redelivery, concurrent committers and crashes.

mod common;

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, TimestampMicrosecondType};
use common::*;
use sentiment_lake::enrich::IncompletePolicy;
use sentiment_lake::lake::{TableKind, WATERMARKS_PROPERTY};

const SOURCE_P3: &str = "eventhubs://sentiment-ns.servicebus.windows.net/sentiment-events/$Default/3";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_posted_batch_is_staged_then_committed_and_reads_back() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    // Installs the metrics recorder before anything is counted.
    client().get(format!("{}/metrics", server.base)).send().await.unwrap();

    let (status, body) = post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ReturnValue"]["staged_rows"], 3);
    assert!(body["Logs"][0].as_str().unwrap().contains("3 rows staged"));
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 0, "nothing is visible before the commit");

    let (status, body) = post(&server.base, "CommitStaged", fixture("timer.json")).await;
    assert_eq!(status, 200, "{body}");
    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(sorted(&rows, "message_id"), vec!["tw-1001", "tw-1002", "tw-1003"]);

    // Values survive the trip: normalisation, UTC conversion, nested columns.
    let by_id: HashMap<String, usize> = strings(&rows, "message_id").into_iter().enumerate().map(|(i, id)| (id.unwrap(), i)).collect();
    let i = by_id["tw-1002"];
    let ts = rows.column_by_name("event_timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
    // 09:29:58.1234567-05:00 -> 14:29:58.123456 UTC (truncated to microseconds).
    assert_eq!(ts.value(i), chrono::DateTime::parse_from_rfc3339("2025-03-03T14:29:58.123456Z").unwrap().timestamp_micros());
    assert_eq!(strings(&rows, "ticker")[i].as_deref(), Some("TSLA"));
    assert_eq!(rows.column_by_name("sentiment_score").unwrap().as_primitive::<Float32Type>().value(i), -0.55);
    assert_eq!(strings(&rows, "text_content")[i].as_deref(), Some("TSLA deliveries miss again, guidance cut"), "the seed's field 5");
    let entities = rows.column_by_name("entity_recognition").unwrap().as_list::<i32>().value(i);
    assert_eq!(entities.as_struct().column(1).as_string::<i32>().value(0), "TICKER");

    // The ledger: the snapshot summary carries the partition's watermark.
    let table = lake.load(TableKind::Records).await.unwrap();
    let summary = &table.metadata().current_snapshot().unwrap().summary().additional_properties;
    let watermarks: HashMap<String, i64> = serde_json::from_str(&summary[WATERMARKS_PROPERTY]).unwrap();
    assert_eq!(watermarks[SOURCE_P3], 1003);
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    assert_eq!(
        table.metadata().properties().get(WATERMARKS_PROPERTY),
        summary.get(WATERMARKS_PROPERTY),
        "the ledger is in the table's properties too"
    );

    let metrics = client().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    for name in
        ["sentiment_lake_rows_staged_total", "sentiment_lake_batch_events", "sentiment_lake_commit_seconds", "sentiment_lake_rows_written_total"]
    {
        assert!(metrics.contains(name), "{name} missing from /metrics:\n{metrics}");
    }
    let health: serde_json::Value = client().get(format!("{}/api/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["tables"]["sentiment_records"]["pending_entries"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivery_three_times_with_four_concurrent_committers_commits_each_record_once() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    // Another partition's batch staged alongside, so committers also race on unrelated sources.
    for _ in 0..3 {
        let (status, _) = post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
        assert_eq!(status, 200);
    }
    let (status, _) = post(&server.base, "IngestEvents", fixture("eventhub-batch-native.json")).await;
    assert_eq!(status, 200);
    assert_eq!(lake.pending(TableKind::Records).await.unwrap().len(), 4);

    // Four committers, each with its own catalog connection pool, as four processes would have.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let path = dir.path().to_path_buf();
        tasks.push(tokio::spawn(async move { open(&path).await.commit().await }));
    }
    let mut committed = 0;
    for task in tasks {
        let reports = task.await.unwrap().expect("every committer ends cleanly");
        committed += reports[0].rows_committed;
    }
    // Redelivered after the commit too: still nothing new.
    let (status, _) = post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
    assert_eq!(status, 200);
    let late = lake.commit().await.unwrap();
    assert_eq!(late[0].rows_committed, 0);
    assert_eq!(late[0].obsolete_deleted, 1, "a redelivery the watermark covers is deleted unread");

    let rows = scan(&lake, TableKind::Records).await;
    let ids = sorted(&rows, "message_id");
    assert_eq!(ids, vec!["n-7", "n-8", "tw-1001", "tw-1002", "tw-1003"]);
    assert_eq!(committed, 5, "the committers together committed each row once");
    let state = lake.committed_state(TableKind::Records).await.unwrap();
    assert_eq!(state.watermarks.get(SOURCE_P3), Some(1003));
    assert_eq!(state.watermarks.get("eventhubs://unknown-namespace/sentiment-events/ingest/0"), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_and_undecodable_events_are_dead_lettered_with_reasons() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve_with(lake.clone(), IncompletePolicy::DeadLetter).await;
    let (status, body) = post(&server.base, "IngestEvents", fixture("eventhub-batch-mixed.json")).await;
    assert_eq!(status, 200, "a batch with bad records still succeeds for the good ones: {body}");
    assert_eq!(body["ReturnValue"]["staged_rows"], 2);
    assert_eq!(body["ReturnValue"]["dead_lettered"], 3);
    lake.commit().await.unwrap();

    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(sorted(&rows, "message_id"), vec!["tw-2001", "tw-2005"]);

    let letters = scan(&lake, TableKind::DeadLetters).await;
    assert_eq!(letters.num_rows(), 3);
    let seqs = letters.column_by_name("sequence_number").unwrap().as_primitive::<Int64Type>();
    let classes = strings(&letters, "error_class");
    let fields = strings(&letters, "error_field");
    let messages = strings(&letters, "error_message");
    let mut seen: Vec<(i64, String, Option<String>)> = (0..3).map(|i| (seqs.value(i), classes[i].clone().unwrap(), fields[i].clone())).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (2002, "decode".into(), None),
            (2003, "validation".into(), Some("sentiment_score".into())),
            (2004, "incomplete".into(), Some("sentiment_score".into())),
        ]
    );
    let i = (0..3).find(|&i| seqs.value(i) == 2003).unwrap();
    assert!(messages[i].as_deref().unwrap().contains("breaks rule `range[-1,1]`"), "{messages:?}");
    let j = (0..3).find(|&i| seqs.value(i) == 2002).unwrap();
    let raw = letters.column_by_name("raw_body").unwrap().as_binary::<i64>();
    assert_eq!(raw.value(j), b"{this is not json", "the raw bytes are kept");
    assert_eq!(strings(&letters, "offset")[j].as_deref(), Some("2"));

    // Redelivering the mixed batch adds neither rows nor dead letters.
    post(&server.base, "IngestEvents", fixture("eventhub-batch-mixed.json")).await;
    lake.commit().await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 2);
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 3);
}

/// An envelope that can never be processed is stored whole with its reason and acknowledged: answering
/// non-2xx would make the host resend it forever and stop the partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_envelopes_are_quarantined_whole_and_acknowledged() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    let bodies = [fixture("eventhub-batch-misaligned.json"), "not json at all".to_string()];
    for body in &bodies {
        let (status, reply) = post(&server.base, "IngestEvents", body.clone()).await;
        assert_eq!(status, 200, "{reply}");
        assert!(reply["Logs"][0].as_str().unwrap().contains("not processable"), "{reply}");
        assert!(reply["ReturnValue"]["quarantined"].as_str().unwrap().starts_with("_quarantine/invocations/"));
    }
    let items = lake.quarantine().list().await.unwrap();
    assert_eq!(items.len(), 2);
    let mut stored: Vec<String> = items.iter().map(|(path, _)| std::fs::read_to_string(dir.path().join(path)).unwrap()).collect();
    let mut sent: Vec<String> = bodies.to_vec();
    stored.sort();
    sent.sort();
    assert_eq!(stored, sent, "stored byte for byte");
    assert!(items.iter().any(|(_, record)| record.reason.contains("Metadata.SequenceNumberArray")), "{items:?}");
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
    let response = client().get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(response.status(), 200, "the readiness probe answers");
    let health: serde_json::Value = client().get(format!("{}/api/health", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["quarantine"]["items"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_commit_but_before_cleanup_adds_nothing_on_recovery() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    post(&server.base, "IngestEvents", fixture("eventhub-batch-string.json")).await;
    // Keep copies of the staged segments, commit, then put them back: the state a process killed between
    // the catalog swap and segment deletion leaves behind.
    let segments = files_under(&dir.path().join("_staging"), "");
    let saved: Vec<(std::path::PathBuf, Vec<u8>)> = segments.iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect();
    assert_eq!(lake.commit().await.unwrap()[0].rows_committed, 3);
    for (path, bytes) in &saved {
        std::fs::write(path, bytes).unwrap();
    }
    let recovered = open(dir.path()).await.commit().await.unwrap();
    assert_eq!((recovered[0].rows_committed, recovered[0].obsolete_deleted), (0, 1));
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 3);
    assert!(files_under(&dir.path().join("_staging"), ".arrow").is_empty());
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_without_analysis_are_enriched_by_default() {
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let server = serve(lake.clone()).await;
    let (status, body) = post(&server.base, "IngestEvents", fixture("eventhub-batch-mixed.json")).await;
    assert_eq!(status, 200);
    assert_eq!((body["ReturnValue"]["staged_rows"].as_u64(), body["ReturnValue"]["enriched"].as_u64()), (Some(3), Some(1)));
    lake.commit().await.unwrap();
    let rows = scan(&lake, TableKind::Records).await;
    assert_eq!(sorted(&rows, "message_id"), vec!["tw-2001", "tw-2004", "tw-2005"]);
    let i = strings(&rows, "message_id").iter().position(|id| id.as_deref() == Some("tw-2004")).unwrap();
    assert_eq!(strings(&rows, "processing_version")[i].as_deref(), Some(sentiment_enrich::ANALYZER_VERSION));
    assert!(strings(&rows, "model_name")[i].as_deref().unwrap().starts_with("rules-"));
    // The producer's own analysis on the complete rows is untouched.
    let j = strings(&rows, "message_id").iter().position(|id| id.as_deref() == Some("tw-2001")).unwrap();
    assert_eq!(strings(&rows, "model_name")[j].as_deref(), Some("finbert-upstream"));
    assert_eq!(scan(&lake, TableKind::DeadLetters).await.num_rows(), 2, "decode and validation failures still dead-letter");
}

/// A backlog larger than one pass commits in several bounded snapshots, each source's ranges in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_larger_than_the_pass_bound_commits_in_several_passes() {
    use sentiment_lake::ingest::{file::batch_from_file, Pipeline};
    use sentiment_lake::synthetic::EventGenerator;

    let dir = warehouse();
    let mut config = config(dir.path());
    config.commit_policy.pass.max_bytes = 40 * 1024;
    let lake = sentiment_lake::lake::Lake::open(&config).await.unwrap();
    let pipeline = Pipeline::default();
    let mut generator = EventGenerator::new(5, "2025-03-31T00:00:00Z".parse().unwrap(), 2, 5);
    // Five sources (files), each staged twice as a redelivery would.
    for f in 0..5u64 {
        let batch = batch_from_file(&generator.ndjson(f * 40, 40), &format!("f{f}"), None).unwrap();
        pipeline.ingest(&lake, &batch).await.unwrap();
        pipeline.ingest(&lake, &batch).await.unwrap();
    }
    let staged = lake.pending(TableKind::Records).await.unwrap();
    assert!(staged.bytes() > 2 * config.commit_policy.pass.max_bytes, "{} bytes staged", staged.bytes());
    let report = lake.commit().await.unwrap().remove(0);
    assert!(report.snapshots >= 3, "{report:?}");
    assert_eq!((report.rows_committed, report.segments + report.obsolete_deleted), (200, 10), "{report:?}");
    let table = lake.load(TableKind::Records).await.unwrap();
    assert_eq!(table.metadata().snapshots().count(), report.snapshots);
    assert_eq!(report.snapshot_id, table.metadata().current_snapshot_id());
    let ids = sorted(&scan(&lake, TableKind::Records).await, "message_id");
    assert_eq!(ids.len(), 200);
    assert!(counts(&ids).values().all(|&n| n == 1));
    assert_eq!(lake.committed_state(TableKind::Records).await.unwrap().watermarks.len(), 5);
    assert!(lake.pending(TableKind::Records).await.unwrap().is_empty());
}
