"""Counts the values of one column of a table with PyIceberg and with DuckDB's iceberg extension (two
independent readers), over the table's current metadata. Prints JSON.
Usage: evolved_column.py WAREHOUSE CATALOG NAMESPACE.TABLE COLUMN"""
import json
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(__file__))
from duckdb_queries import connect, metadata_location  # noqa: E402
from pyiceberg.catalog.sql import SqlCatalog  # noqa: E402


def main(warehouse, catalog_name, identifier, column):
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    table = catalog.load_table(identifier)
    field = table.schema().find_field(column)
    values = table.scan(selected_fields=(column,)).to_arrow().column(column).to_pylist()
    pyiceberg = Counter("null" if v is None else str(v) for v in values)
    namespace, name = identifier.split(".")
    con = connect()
    rows = con.execute(f'SELECT "{column}", count(*) FROM iceberg_scan(?) GROUP BY 1', [metadata_location(warehouse, namespace, name)]).fetchall()
    duck = {("null" if v is None else str(v)): n for v, n in rows}
    print(json.dumps({"field_id": field.field_id, "doc": field.doc, "pyiceberg": pyiceberg, "duckdb": duck}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
