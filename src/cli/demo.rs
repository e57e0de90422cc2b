//! `demo`: the ingest job end to end on the embedded default, with numbers a user can check.

use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;

use crate::ingest::{Pipeline, SourceBatch, SourceEvent};
use crate::lake::{Lake, TableKind};
use crate::synthetic::EventGenerator;

pub async fn run(lake: &Lake, pipeline: &Pipeline, events: u64, partitions: u64, batch_size: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut generator = EventGenerator::new(42, Utc::now(), 7, 50);
    // Like Event Hubs: events spread over partitions, each partition's sequence numbers increasing, and
    // delivered in batches of `batch_size`. Sequence numbers continue from the table's watermark so that
    // running the demo again appends new events instead of being deduplicated as a redelivery.
    let state = lake.committed_state(TableKind::Records).await?;
    let source = |p: u64| format!("eventhubs://demo/sentiment-events/$Default/{p}");
    let mut next_seq: Vec<i64> = (0..partitions).map(|p| state.watermarks.get(&source(p)).unwrap_or(0) + 1).collect();
    let mut staged = 0;
    let mut dead = 0;
    let mut i = 0;
    while i < events {
        for p in 0..partitions {
            let n = batch_size.min(events - i);
            if n == 0 {
                break;
            }
            let batch = SourceBatch {
                source: source(p),
                invocation_id: None,
                events: (0..n)
                    .map(|k| {
                        let seq = next_seq[p as usize];
                        next_seq[p as usize] += 1;
                        let body = serde_json::to_vec(&generator.event(i + k)).expect("serialisable");
                        SourceEvent { enqueued_time: Some(Utc::now()), ..SourceEvent::new(seq, Bytes::from(body)) }
                    })
                    .collect(),
            };
            let report = pipeline.ingest(lake, &batch).await?;
            staged += report.staged_rows;
            dead += report.dead_lettered;
            i += n;
        }
    }
    let staged_at = started.elapsed();
    let reports = lake.commit().await?;
    let table = lake.load(TableKind::Records).await?;
    let snapshot = table.metadata().current_snapshot();
    let summary = snapshot.map(|s| s.summary().additional_properties.clone()).unwrap_or_default();
    println!("staged {staged} rows and {dead} dead letters in {:.2}s; commit took {:.2}s", staged_at.as_secs_f64(), reports[0].latency.as_secs_f64());
    println!(
        "committed {} rows in {} data files (snapshot {:?})",
        reports[0].rows_committed,
        reports[0].data_files,
        snapshot.map(|s| s.snapshot_id())
    );
    println!(
        "table {} now holds {} rows in {} files over {} snapshots",
        lake.target(TableKind::Records).ident,
        summary.get("total-records").map_or("0", String::as_str),
        summary.get("total-data-files").map_or("0", String::as_str),
        table.metadata().snapshots().count()
    );
    println!("warehouse: {}", lake.warehouse().url());
    Ok(())
}
