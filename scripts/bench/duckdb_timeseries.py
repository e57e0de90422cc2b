"""The query benchmark's peer: the time-series endpoint's query in DuckDB (iceberg extension) over the same
table, timed per query in process, repeated. Prints {"p50_ms", "p99_ms", "buckets", "messages", "duckdb_version"}.

    python scripts/bench/duckdb_timeseries.py --metadata FILE --ticker AAPL --from T --to T --iterations N

The filters are written out plainly so DuckDB can push them into its Iceberg scan (partition pruning).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "interop"))
from duckdb_queries import connect  # noqa: E402  (the interop test's connection: extensions loaded, UTC)

QUERY = """
SELECT date_trunc('hour', event_timestamp) AS bucket_start,
       count(*) AS message_count,
       avg(CAST(sentiment_score AS DOUBLE)) AS average_score,
       CAST(min(sentiment_score) AS DOUBLE) AS min_score,
       CAST(max(sentiment_score) AS DOUBLE) AS max_score,
       avg(CAST(sentiment_magnitude AS DOUBLE)) AS average_magnitude,
       count(*) FILTER (WHERE sentiment_score > CAST(0.05 AS FLOAT)) AS positive,
       count(*) FILTER (WHERE sentiment_score < CAST(-0.05 AS FLOAT)) AS negative,
       count(*) FILTER (WHERE sentiment_score BETWEEN CAST(-0.05 AS FLOAT) AND CAST(0.05 AS FLOAT)) AS neutral
FROM iceberg_scan($metadata)
WHERE ticker = $ticker
  AND event_timestamp >= CAST($from AS TIMESTAMPTZ)
  AND event_timestamp < CAST($to AS TIMESTAMPTZ)
GROUP BY bucket_start
ORDER BY bucket_start
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", required=True, help="the table's current metadata file")
    parser.add_argument("--ticker", required=True)
    parser.add_argument("--from", dest="start", required=True)
    parser.add_argument("--to", dest="end", required=True)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    con = connect()
    params = {"metadata": args.metadata.removeprefix("file://"), "ticker": args.ticker, "from": args.start, "to": args.end}
    con.execute(QUERY, params).fetchall()  # warm-up, as the Rust side's first request
    latencies = []
    rows = []
    for _ in range(args.iterations):
        started = time.perf_counter()
        rows = con.execute(QUERY, params).fetchall()
        latencies.append((time.perf_counter() - started) * 1e3)
    latencies.sort()
    print(json.dumps({
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[round((len(latencies) - 1) * 0.99)],
        "buckets": len(rows),
        "messages": sum(r[1] for r in rows),
        "duckdb_version": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
