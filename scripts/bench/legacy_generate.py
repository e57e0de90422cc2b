"""Legacy Parquet files for scripts/bench/migrate.sh, in the old writer's layout (the one tests/interop/
write_legacy.py documents): `id`, `symbol` (dictionary), `created_at` (INT96), `text` (large string),
`compound`. Texts are sentences of market vocabulary with sentiment words, about TEXT_BYTES long; times
spread over 30 days; 20 tickers. Deterministic (seeded).
Usage: legacy_generate.py OUTDIR ROWS FILES TEXT_BYTES [ROW_GROUP_ROWS]"""
import os
import random
import sys
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "AMD", "INTC", "NFLX",
           "JPM", "BAC", "XOM", "CVX", "PFE", "KO", "DIS", "NKE", "BA", "UBER"]
WORDS = ("earnings revenue guidance shares stock market investors analysts quarter growth margin "
         "outlook demand supply chips cloud deliveries forecast dividend buyback rally selloff").split()
SENTIMENT = ("great strong beat surge bullish love excellent upgrade record gains "
             "weak miss plunge bearish terrible downgrade losses fraud disappointing crash").split()


def text(rng, size, ticker):
    out = [f"${ticker}"]
    length = len(out[0])
    while length < size:
        word = rng.choice(SENTIMENT) if rng.random() < 0.15 else rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out) + "."


def main(out, rows, files, text_bytes, row_group=50_000):
    rows, files, text_bytes, row_group = int(rows), int(files), int(text_bytes), int(row_group)
    os.makedirs(out, exist_ok=True)
    rng = random.Random(42)
    start = datetime(2024, 1, 1)
    per_file = rows // files
    for f in range(files):
        path = os.path.join(out, f"export-{f:04d}.parquet")
        writer = None
        for first in range(0, per_file, row_group):
            n = min(row_group, per_file - first)
            base = f * per_file + first
            tickers = [TICKERS[rng.randrange(len(TICKERS))] for _ in range(n)]
            batch = pa.table({
                "id": pa.array([f"bench-{base + i}" for i in range(n)]),
                "symbol": pa.array(tickers).dictionary_encode(),
                "created_at": pa.array([start + timedelta(seconds=rng.randrange(30 * 86400)) for _ in range(n)], pa.timestamp("ns")),
                "text": pa.array([text(rng, max(8, int(rng.gauss(text_bytes, text_bytes / 4))), t) for t in tickers], pa.large_string()),
                "compound": pa.array([round(rng.uniform(-1, 1), 4) for _ in range(n)], pa.float64()),
            })
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema, use_deprecated_int96_timestamps=True, compression="snappy")
            writer.write_table(batch, row_group_size=row_group)
        writer.close()
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
