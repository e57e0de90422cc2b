"""Peer for scripts/bench/migrate.sh: the seed's Phase 4 migrator as a Python team would write it with
pyarrow + PyIceberg. Reads each legacy file (old writer's layout) row group by row group, maps it to the
seed schema, fills the analysis fields the files lack with vaderSentiment (polarity per text: magnitude,
subjectivity, a primary emotion by sign; the other fields fixed or empty, far less work than the Rust
enricher does), keeps the legacy `compound` as the score, and appends each file to the table the Rust
side created (same schema and partition spec) with `table.append()`: one snapshot per file.
Prints JSON: rows, wall and CPU seconds, snapshots, peak resident memory.
Usage: pyiceberg_migrate.py WAREHOUSE CATALOG_NAME TABLE FILE..."""
import datetime
import json
import resource
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(warehouse, catalog_name, table_name, *files):
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    table = catalog.load_table(table_name)
    schema = table.schema().as_arrow()
    analyzer = SentimentIntensityAnalyzer()
    w0, c0 = time.perf_counter(), cpu()
    rows = 0
    for path in files:
        parts = []
        for batch in pq.ParquetFile(path).iter_batches():
            n = batch.num_rows
            texts = batch.column("text").to_pylist()
            polarity = [analyzer.polarity_scores(t or "") for t in texts]
            now = datetime.datetime.now(datetime.timezone.utc)
            columns = {
                "message_id": batch.column("id").cast(pa.string()),
                "event_timestamp": pc.assume_timezone(batch.column("created_at").cast(pa.timestamp("us")), "UTC"),
                "ingestion_timestamp": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
                "source_system": pa.array(["legacy"] * n),
                "text_content": batch.column("text").cast(pa.string()),
                "sentiment_score": batch.column("compound").cast(pa.float32()),
                "sentiment_magnitude": pa.array([p["pos"] + p["neg"] for p in polarity], pa.float32()),
                "primary_emotion": pa.array(["joy" if p["compound"] > 0.05 else "anger" if p["compound"] < -0.05 else "neutral" for p in polarity]),
                "sarcasm_detection": pa.array([False] * n),
                "subjectivity_score": pa.array([1.0 - p["neu"] for p in polarity], pa.float32()),
                "toxicity_score": pa.array([0.0] * n, pa.float32()),
                "user_intent": pa.array(["unknown"] * n),
                "processing_version": pa.array(["legacy-migration-1"] * n),
                "ticker": batch.column("symbol").cast(pa.string()),
                "model_name": pa.array(["legacy"] * n),
            }
            arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema]
            parts.append(pa.Table.from_arrays(arrays, schema=schema))
            rows += n
        table.append(pa.concat_tables(parts))
    wall, cpu_s = time.perf_counter() - w0, cpu() - c0
    snapshots = len(table.refresh().metadata.snapshots)
    print(json.dumps({"rows": rows, "wall_s": wall, "cpu_s": cpu_s, "snapshots": snapshots,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main(*sys.argv[1:])
