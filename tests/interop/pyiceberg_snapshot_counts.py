"""Rows per ticker at every snapshot of a table, read by PyIceberg (an independent implementation).

Usage: pyiceberg_snapshot_counts.py <warehouse dir> <catalog name> <namespace.table>
Prints {"<snapshot id>": {"<ticker>": rows, ...}, ...}.
"""
import json
import sys
from collections import Counter

from pyiceberg.catalog.sql import SqlCatalog

warehouse, catalog_name, identifier = sys.argv[1:4]
catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
table = catalog.load_table(identifier)
counts = {}
for snapshot in table.metadata.snapshots:
    tickers = table.scan(snapshot_id=snapshot.snapshot_id, selected_fields=("ticker",)).to_arrow().column("ticker").to_pylist()
    counts[str(snapshot.snapshot_id)] = dict(Counter(t for t in tickers if t is not None))
print(json.dumps(counts))
