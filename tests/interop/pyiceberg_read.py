"""Reads a sentiment-lake warehouse with PyIceberg (an independent implementation) and prints what it sees
as JSON: schema (field ids, types, nullability), partition spec, snapshot summaries and the rows."""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def describe_type(t):
    return str(t)


def main(warehouse, catalog_name, table_name):
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    table = catalog.load_table(table_name)
    schema = table.schema()

    def fields(struct):
        out = []
        for f in struct.fields:
            out.append({"id": f.field_id, "name": f.name, "type": describe_type(f.field_type), "required": f.required})
        return out

    nested_ids = sorted(schema._lazy_id_to_field.keys()) if hasattr(schema, "_lazy_id_to_field") else []
    arrow = table.scan().to_arrow()
    rows = arrow.to_pylist()
    for row in rows:
        for key, value in list(row.items()):
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
            elif isinstance(value, (bytes, bytearray)):
                row[key] = value.decode("utf-8", "replace")
    spec = table.spec()
    files = []
    if table.current_snapshot() is not None:
        for f in table.inspect.files().to_pylist():
            files.append({"path": f["file_path"], "records": f["record_count"], "partition": {k: str(v) for k, v in (f["partition"] or {}).items()}})
    print(json.dumps({
        "format_version": table.metadata.format_version,
        "fields": fields(schema.as_struct()),
        "all_field_ids": nested_ids,
        "partition_spec": [{"source_id": f.source_id, "name": f.name, "transform": str(f.transform)} for f in spec.fields],
        "snapshots": [{"id": s.snapshot_id, "operation": s.summary.operation.value, "props": dict(s.summary.additional_properties)} for s in table.snapshots()],
        "files": files,
        "row_count": len(rows),
        "rows": rows,
    }, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
