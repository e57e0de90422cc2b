"""Reads a table stored on Azure Blob storage (Azurite in the tests) with PyIceberg and adlfs, both
independent of sentiment-lake: opens the metadata file the catalog points at, scans every data file, and
prints what it sees as JSON (row count, message ids, data file paths)."""
import json
import sys

from pyiceberg.table import StaticTable


def main(metadata_location, connection_string):
    properties = {"adls.connection-string": connection_string, "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"}
    table = StaticTable.from_metadata(metadata_location, properties=properties)
    rows = table.scan(selected_fields=("message_id", "ticker")).to_arrow().to_pylist()
    files = [f["file_path"] for f in table.inspect.files().to_pylist()]
    print(json.dumps({
        "row_count": len(rows),
        "message_ids": sorted(r["message_id"] for r in rows),
        "tickers": sorted({r["ticker"] for r in rows}),
        "files": files,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:3])
