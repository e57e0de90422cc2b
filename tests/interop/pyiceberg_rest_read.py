"""Reads a table through an Iceberg REST catalog with PyIceberg (an independent implementation) and prints
what it sees as JSON: field ids, partition spec, properties, snapshot summaries, row count and (records
table) distinct message ids.

Usage: pyiceberg_rest_read.py URI PREFIX TOKEN NAMESPACE.TABLE
"""
import json
import sys

from pyiceberg.catalog.rest import RestCatalog


def main(uri, prefix, token, table_name):
    catalog = RestCatalog("rest", uri=uri, prefix=prefix, token=token)
    table = catalog.load_table(table_name)
    arrow = table.scan().to_arrow()
    # Only the records table has message ids; the others report null.
    ids = arrow.column("message_id").to_pylist() if "message_id" in arrow.column_names else None
    print(json.dumps({
        "format_version": table.metadata.format_version,
        "field_ids": {name: table.schema().find_field(name).field_id for name in table.schema().column_names},
        "partition_spec": [{"field_id": f.field_id, "source_id": f.source_id, "name": f.name, "transform": str(f.transform)} for f in table.spec().fields],
        "properties": dict(table.properties),
        "snapshots": [{"id": s.snapshot_id, "operation": s.summary.operation.value, "props": dict(s.summary.additional_properties)} for s in table.snapshots()],
        "row_count": arrow.num_rows,
        "distinct_message_ids": None if ids is None else len(set(ids)),
    }, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:5])
