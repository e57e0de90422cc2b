"""Writes legacy Parquet files in the layouts the old Python system produced (pyarrow, independent of
sentiment-lake) into OUTDIR, and prints what a correct migration must find as JSON."""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq


def main(out):
    os.makedirs(out, exist_ok=True)
    start = datetime(2023, 1, 2, 9, 30, tzinfo=timezone.utc)
    expected = {"ids": [], "dead": 0}

    # The old writer: symbol (dictionary), created_at as INT96, large-string text, a compound score, two row
    # groups; one row without text (cannot be migrated).
    n = 300
    ids = [f"old-{i}" for i in range(n)]
    texts = [None if i == 7 else f"$AAPL beats estimates again, row {i}" for i in range(n)]
    table = pa.table({
        "id": pa.array(ids),
        "symbol": pa.array(["AAPL"] * n).dictionary_encode(),
        "created_at": pa.array([(start + timedelta(minutes=i)).replace(tzinfo=None) for i in range(n)], pa.timestamp("ns")),
        "text": pa.array(texts, pa.large_string()),
        "compound": pa.array([((i % 21) - 10) / 10 for i in range(n)], pa.float64()),
    })
    pq.write_table(table, os.path.join(out, "old_writer.parquet"), row_group_size=150, use_deprecated_int96_timestamps=True)
    expected["ids"] += [i for i, t in zip(ids, texts) if t is not None]
    expected["dead"] += 1

    # The ticker only in the file name; epoch milliseconds; a label instead of a score; no ids.
    m = 100
    pq.write_table(pa.table({
        "timestamp": pa.array([int((start + timedelta(hours=i)).timestamp() * 1000) for i in range(m)], pa.int64()),
        "content": pa.array([f"Tesla deliveries update {i}" for i in range(m)]),
        "sentiment": pa.array([["bullish", "bearish", "neutral"][i % 3] for i in range(m)]),
    }), os.path.join(out, "TSLA.parquet"))
    expected["generated_ids"] = m

    # The seed's own names, one article-length text.
    k = 50
    seed_ids = [f"seed-{i}" for i in range(k)]
    pq.write_table(pa.table({
        "message_id": pa.array(seed_ids),
        "event_timestamp": pa.array([start + timedelta(seconds=i) for i in range(k)], pa.timestamp("us", tz="UTC")),
        "text_content": pa.array(["Microsoft guidance " + ("long text " * 20000 if i == 0 else str(i)) for i in range(k)]),
        "ticker": pa.array(["MSFT"] * k),
        "source_system": pa.array(["reuters"] * k),
        "sentiment_score": pa.array([0.25] * k, pa.float32()),
    }), os.path.join(out, "seed_layout.parquet"))
    expected["ids"] += seed_ids

    # A corrupt file and a truncated one.
    with open(os.path.join(out, "corrupt.parquet"), "wb") as f:
        f.write(b"this is not parquet at all" * 100)
    whole = open(os.path.join(out, "seed_layout.parquet"), "rb").read()
    with open(os.path.join(out, "truncated.parquet"), "wb") as f:
        f.write(whole[: len(whole) // 2])

    expected["ids"].sort()
    expected["rows"] = len(expected["ids"]) + expected["generated_ids"]
    print(json.dumps(expected))


if __name__ == "__main__":
    main(sys.argv[1])
