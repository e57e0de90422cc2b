"""The query benchmark's peer for every endpoint: the interop test's DuckDB implementation of one API query
(tests/interop/duckdb_queries.py, iceberg extension over the same table), timed per query in process,
repeated. Prints {"p50_ms", "p99_ms", "rows", "duckdb_version"}; `rows` is the length of the answer's list
(or of its `messages` for toxicity, 1 for a summary).

    python scripts/bench/duckdb_endpoints.py --metadata FILE --query NAME --params JSON --iterations N
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "interop"))
from duckdb_queries import QUERIES, connect  # noqa: E402


def size(answer):
    if isinstance(answer, list):
        return len(answer)
    if isinstance(answer, dict) and "messages" in answer:
        return len(answer["messages"])
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", required=True, help="the table's current metadata file")
    parser.add_argument("--query", required=True, choices=sorted(QUERIES))
    parser.add_argument("--params", required=True, help="JSON object of the query's parameters")
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    con = connect()
    meta = args.metadata.removeprefix("file://")
    params = json.loads(args.params)
    answer = QUERIES[args.query](con, meta, params)  # warm-up, as the Rust side's first request
    latencies = []
    for _ in range(args.iterations):
        started = time.perf_counter()
        answer = QUERIES[args.query](con, meta, params)
        latencies.append((time.perf_counter() - started) * 1e3)
    latencies.sort()
    print(json.dumps({
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[round((len(latencies) - 1) * 0.99)],
        "rows": size(answer),
        "duckdb_version": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
