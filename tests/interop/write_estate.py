"""Writes a legacy estate of exports whose layouts differ (pandas and pyarrow, independent of sentiment-lake),
the way a per-ticker Python stack wrote them over the years, into OUTDIR; prints what a correct migration
finds as JSON: per file its rows, the instants of its first and last rows, its ticker and its score sum.

- AAPL/ts.parquet: a timestamp column named `ts` (µs, UTC), `body`, `compound`.
- MSFT/event_time.parquet: INT96 `event_time`, `body`, `compound`; one row without a body.
- NVDA/created_utc.parquet: epoch seconds `created_utc`, `body`, `compound`.
- pandas/AMD.parquet: DataFrame.to_parquet with an index of row ids (`__index_level_0__`), `posted` as
  strings with a zone, `message`, `label` (bullish/bearish), a float `vader` on the [-4, 4] scale.
- news/headlines_TSLA.parquet: the only time a date string `date`, `headline`, `stock`.
- two_times.parquet: `opened` and `closed` timestamps, `text`, `symbol`: a rule must say which is the time.
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2021, 6, 1, 14, 30, tzinfo=timezone.utc)


def iso(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def texts(n, word):
    return [f"shares {word} after the quarterly report, note {i}" for i in range(n)]


def main(out):
    expected = {}

    def record(name, times, ticker, scores, rows=None, dead=0):
        expected[name] = {
            "rows": rows if rows is not None else len(times),
            "dead": dead,
            "first": iso(times[0]),
            "last": iso(times[-1]),
            "ticker": ticker,
            "score_sum": round(sum(scores), 6) if scores is not None else None,
        }

    n = 40
    os.makedirs(f"{out}/AAPL", exist_ok=True)
    times = [START + timedelta(minutes=i) for i in range(n)]
    scores = [round((i % 9 - 4) / 5, 2) for i in range(n)]
    pq.write_table(pa.table({
        "ts": pa.array(times, pa.timestamp("us", tz="UTC")),
        "body": texts(n, "rally"),
        "compound": pa.array(scores, pa.float64()),
    }), f"{out}/AAPL/ts.parquet")
    record("AAPL/ts.parquet", times, "AAPL", scores)

    os.makedirs(f"{out}/MSFT", exist_ok=True)
    times = [START + timedelta(hours=i) for i in range(n)]
    bodies = texts(n, "slide")
    bodies[5] = None
    pq.write_table(pa.table({
        "event_time": pa.array([t.replace(tzinfo=None) for t in times], pa.timestamp("ns")),
        "body": bodies,
        "compound": pa.array(scores, pa.float64()),
    }), f"{out}/MSFT/event_time.parquet", use_deprecated_int96_timestamps=True)
    kept = [s for s, b in zip(scores, bodies) if b is not None]
    record("MSFT/event_time.parquet", times, "MSFT", kept, dead=1)

    os.makedirs(f"{out}/NVDA", exist_ok=True)
    times = [START + timedelta(seconds=37 * i) for i in range(n)]
    pq.write_table(pa.table({
        "created_utc": pa.array([int(t.timestamp()) for t in times], pa.int64()),
        "body": texts(n, "soar"),
        "compound": pa.array(scores, pa.float64()),
    }), f"{out}/NVDA/created_utc.parquet")
    record("NVDA/created_utc.parquet", times, "NVDA", scores)

    os.makedirs(f"{out}/pandas", exist_ok=True)
    times = [START + timedelta(minutes=3 * i) for i in range(n)]
    vader = [((i % 7) - 3) * 1.25 for i in range(n)]
    frame = pd.DataFrame({
        "posted": [t.astimezone(timezone(timedelta(hours=-4))).isoformat() for t in times],
        "message": texts(n, "drift"),
        "label": ["bullish" if i % 2 else "bearish" for i in range(n)],
        "vader": vader,
    }, index=pd.Index([1000 + 7 * i for i in range(n)]))
    frame.to_parquet(f"{out}/pandas/AMD.parquet", engine="pyarrow")
    record("pandas/AMD.parquet", times, "AMD", [v / 4 for v in vader])

    os.makedirs(f"{out}/news", exist_ok=True)
    days = [START.replace(hour=0, minute=0) + timedelta(days=i) for i in range(n)]
    pq.write_table(pa.table({
        "date": [d.strftime("%Y-%m-%d") for d in days],
        "headline": texts(n, "jump"),
        "stock": ["TSLA"] * n,
    }), f"{out}/news/headlines_TSLA.parquet")
    record("news/headlines_TSLA.parquet", days, "TSLA", None)

    times = [START + timedelta(minutes=5 * i) for i in range(n)]
    pq.write_table(pa.table({
        "opened": pa.array(times, pa.timestamp("ms", tz="UTC")),
        "closed": pa.array([t + timedelta(days=1) for t in times], pa.timestamp("ms", tz="UTC")),
        "text": texts(n, "hold"),
        "symbol": ["META"] * n,
    }), f"{out}/two_times.parquet")
    record("two_times.parquet", times, "META", None)

    print(json.dumps(expected))


if __name__ == "__main__":
    main(sys.argv[1])
