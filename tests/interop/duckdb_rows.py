"""Counts a table's rows and distinct message ids with DuckDB's iceberg extension (an independent reader)
over the table's current metadata file. Prints JSON. Usage: duckdb_rows.py WAREHOUSE TABLE"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from duckdb_queries import connect, metadata_location  # noqa: E402


def main(warehouse, table):
    con = connect()
    location = metadata_location(warehouse, "sentiment", table)
    rows, ids = con.execute("SELECT count(*), count(DISTINCT message_id) FROM iceberg_scan(?)", [location]).fetchone()
    print(json.dumps({"rows": rows, "distinct_ids": ids}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
