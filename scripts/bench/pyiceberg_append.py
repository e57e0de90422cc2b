"""Peer measurement for benches/ingest.rs and benches/commit_memory.rs: PyIceberg handling the same NDJSON
events.

core:   json.loads + pyarrow table in the table's schema + Parquet (zstd) to memory. Like the Rust core path
        minus validation (PyIceberg has none).
append: the same decode, then table.append() into the Iceberg table the Rust bench created (same schema and
        partition spec): PyIceberg writes one file per partition and commits one snapshot.
Prints JSON with wall and CPU seconds for each, and the process's peak resident memory. With a fifth
argument `append-only` the core pass is skipped, so the peak is the append's alone."""
import datetime
import io
import json
import resource
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog

MAP_COLUMNS = ("emotion_intensity_vector", "aspect_based_sentiment")
TIME_COLUMNS = ("event_timestamp", "ingestion_timestamp")


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def decode(lines, now):
    rows = []
    for line in lines:
        r = json.loads(line)
        for c in TIME_COLUMNS:
            r[c] = datetime.datetime.fromisoformat(r[c]) if c in r else now
        for c in MAP_COLUMNS:
            if r.get(c) is not None:
                r[c] = list(r[c].items())
        rows.append(r)
    return rows


def measure(fn):
    w0, c0 = time.perf_counter(), cpu()
    result = fn()
    return time.perf_counter() - w0, cpu() - c0, result


def main(events_path, warehouse, catalog_name, table_name, mode):
    lines = open(events_path, "rb").read().splitlines()
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    table = catalog.load_table(table_name)
    schema = table.schema().as_arrow()
    now = datetime.datetime.now(datetime.timezone.utc)

    def core():
        arrow = pa.Table.from_pylist(decode(lines, now), schema=schema)
        buf = io.BytesIO()
        pq.write_table(arrow, buf, compression="zstd")
        return buf.tell()

    def append():
        arrow = pa.Table.from_pylist(decode(lines, now), schema=schema)
        table.append(arrow)

    report = {"events": len(lines)}
    if mode != "append-only":
        core_wall, core_cpu, parquet_bytes = measure(core)
        report["core"] = {"wall_s": core_wall, "cpu_s": core_cpu, "parquet_bytes": parquet_bytes}
    append_wall, append_cpu, _ = measure(append)
    # Counted after the measurement: listing the files is not part of appending them.
    files = len(table.inspect.files())
    report["append"] = {"wall_s": append_wall, "cpu_s": append_cpu, "data_files": files}
    # ru_maxrss is in KiB on Linux.
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:5], mode=sys.argv[5] if len(sys.argv) > 5 else "all")
