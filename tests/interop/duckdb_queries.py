"""Answers the query service's questions with DuckDB reading the Iceberg table directly.

This is an independent implementation for the interop tests: it shares no code with sentiment-lake. DuckDB's
iceberg extension reads the table's current metadata file (found in the SQL catalog, SQLite) and every answer is
plain SQL, so a Rust integration test can compare the HTTP API's numbers with these.

    python tests/interop/duckdb_queries.py --warehouse DIR --query NAME --params JSON

prints one JSON document, {"data": ...}. Windows are half-open [from, to) on event_timestamp; timestamps are
printed as RFC 3339 UTC with a "Z" suffix (microseconds only when non-zero).

Float columns are compared with thresholds in float32 (the column's own type): a score stored as the float32
nearest 0.05 is neutral, not positive, and a toxicity stored as the float32 nearest min_toxicity is flagged.
Averages are computed in double over the float32 values.
"""
import argparse
import contextlib
import datetime
import importlib.util
import json
import sqlite3
import sys
from pathlib import Path

import duckdb

INTERVALS = ("minute", "hour", "day", "week")

# Classification of a float32 value column `c` into positive / negative / neutral counts.
POSITIVE = "count(*) FILTER (WHERE {c} > CAST(0.05 AS FLOAT))"
NEGATIVE = "count(*) FILTER (WHERE {c} < CAST(-0.05 AS FLOAT))"
NEUTRAL = "count(*) FILTER (WHERE {c} BETWEEN CAST(-0.05 AS FLOAT) AND CAST(0.05 AS FLOAT))"


def classified(column):
    """SELECT items counting positive, negative and neutral values of `column`."""
    return ", ".join(
        f"{template.format(c=column)} AS {name}"
        for name, template in (("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL))
    )


# Rows of the table in the window, optionally restricted to one ticker and one source system.
MATCHING = """
WITH matching AS (
    SELECT * FROM iceberg_scan($metadata)
    WHERE event_timestamp >= CAST($from AS TIMESTAMPTZ)
      AND event_timestamp < CAST($to AS TIMESTAMPTZ)
      AND ($ticker IS NULL OR ticker = $ticker)
      AND ($source_system IS NULL OR source_system = $source_system)
)
"""


def metadata_location(warehouse, namespace, table):
    """The table's current metadata file, as recorded by the SQL catalog."""
    catalog_db = f"file:{Path(warehouse) / 'catalog.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(catalog_db, uri=True)) as catalog:
        found = catalog.execute(
            "SELECT metadata_location FROM iceberg_tables WHERE table_namespace = ? AND table_name = ?",
            (namespace, table),
        ).fetchall()
    if len(found) != 1:
        sys.exit(f"expected one catalog entry for {namespace}.{table}, found {len(found)}")
    return found[0][0].removeprefix("file://")


def extension_file(con, name):
    """Path of an extension shipped by a duckdb-ext-* wheel: duckdb_ext/extensions/v<version>/<platform>/."""
    (platform,) = con.execute("SELECT platform FROM pragma_platform()").fetchone()
    spec = importlib.util.find_spec("duckdb_ext")
    roots = list(spec.submodule_search_locations) if spec else []
    for root in roots:
        path = Path(root) / "extensions" / f"v{duckdb.__version__}" / platform / f"{name}.duckdb_extension"
        if path.is_file():
            return str(path)
    sys.exit(f"{name} extension for duckdb {duckdb.__version__} on {platform} not found in {roots}")


def connect():
    """A DuckDB connection with the iceberg extension loaded and the session time zone set to UTC."""
    # LOAD by path: INSTALL would need the extension repository. The wheels ship DuckDB-signed builds, so the
    # signature check stays on.
    con = duckdb.connect()
    for name in ("avro", "iceberg"):
        con.execute(f"LOAD '{extension_file(con, name)}'")
    # Not settable in connect(config=...): the built-in ICU extension is loaded only after the config applies.
    con.execute("SET TimeZone = 'UTC'")
    return con


def to_json(value):
    if isinstance(value, datetime.datetime):
        utc = value.astimezone(datetime.timezone.utc)
        fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"
    return value


def rows(con, sql, params):
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [{n: to_json(v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def window(meta, params, ticker=None, source_system=None):
    """Named parameters of MATCHING: the metadata file, the window and the optional filters."""
    return {
        "metadata": meta,
        "from": params["from"],
        "to": params["to"],
        "ticker": ticker,
        "source_system": source_system,
    }


def timeseries(con, meta, params):
    if params["interval"] not in INTERVALS:
        sys.exit(f"interval must be one of {INTERVALS}")
    sql = MATCHING + f"""
        SELECT date_trunc($interval, event_timestamp) AS bucket_start,
               count(*) AS message_count,
               avg(CAST(sentiment_score AS DOUBLE)) AS average_score,
               CAST(min(sentiment_score) AS DOUBLE) AS min_score,
               CAST(max(sentiment_score) AS DOUBLE) AS max_score,
               avg(CAST(sentiment_magnitude AS DOUBLE)) AS average_magnitude,
               {classified("sentiment_score")}
        FROM matching
        GROUP BY bucket_start
        ORDER BY bucket_start"""
    return rows(con, sql, window(meta, params, ticker=params["ticker"]) | {"interval": params["interval"]})


def top_tickers(con, meta, params):
    sql = MATCHING + f"""
        SELECT ticker,
               count(*) AS message_count,
               avg(CAST(sentiment_score AS DOUBLE)) AS average_score,
               {classified("sentiment_score")}
        FROM matching
        WHERE ticker IS NOT NULL
        GROUP BY ticker
        ORDER BY message_count DESC, ticker ASC
        LIMIT $limit"""
    return rows(con, sql, window(meta, params) | {"limit": params["limit"]})


def summary(con, meta, params):
    args = window(meta, params, ticker=params["ticker"])
    totals_sql = MATCHING + f"""
        SELECT count(*) AS message_count,
               avg(CAST(sentiment_score AS DOUBLE)) AS average_score,
               avg(CAST(sentiment_magnitude AS DOUBLE)) AS average_magnitude,
               {classified("sentiment_score")}
        FROM matching"""
    emotions_sql = MATCHING + """
        , entries AS (SELECT unnest(map_entries(emotion_intensity_vector)) AS entry FROM matching)
        SELECT entry.key AS emotion,
               avg(CAST(entry.value AS DOUBLE)) AS average_intensity,
               count(*) AS records
        FROM entries
        GROUP BY emotion
        ORDER BY average_intensity DESC, emotion ASC"""
    primary_sql = MATCHING + """
        SELECT primary_emotion AS emotion, count(*) AS count
        FROM matching
        WHERE primary_emotion IS NOT NULL
        GROUP BY emotion
        ORDER BY count DESC, emotion ASC"""
    (totals,) = rows(con, totals_sql, args)
    return totals | {
        "emotions": rows(con, emotions_sql, args),
        "primary_emotions": rows(con, primary_sql, args),
    }


def entities(con, meta, params):
    sql = MATCHING + """
        , mentions AS (
            SELECT unnest(entity_recognition) AS element, sentiment_score
            FROM matching
        )
        SELECT element.text AS entity,
               element.type AS entity_type,
               count(*) AS mentions,
               avg(CAST(sentiment_score AS DOUBLE)) AS average_score
        FROM mentions
        WHERE $entity_type IS NULL OR element.type = $entity_type
        GROUP BY entity, entity_type
        ORDER BY mentions DESC, entity ASC, entity_type ASC
        LIMIT $limit"""
    args = window(meta, params, ticker=params.get("ticker"))
    return rows(con, sql, args | {"entity_type": params.get("entity_type"), "limit": params["limit"]})


def aspects(con, meta, params):
    sql = MATCHING + f"""
        , entries AS (SELECT unnest(map_entries(aspect_based_sentiment)) AS entry FROM matching)
        SELECT entry.key AS aspect,
               count(*) AS mentions,
               avg(CAST(entry.value AS DOUBLE)) AS average_sentiment,
               {POSITIVE.format(c="entry.value")} AS positive,
               {NEGATIVE.format(c="entry.value")} AS negative
        FROM entries
        GROUP BY aspect
        ORDER BY mentions DESC, aspect ASC"""
    return rows(con, sql, window(meta, params, ticker=params["ticker"]))


def toxicity(con, meta, params):
    # The threshold is cast to FLOAT, the column's type, so a float32 score equal to it counts as flagged.
    flagged = "toxicity_score >= CAST($min_toxicity AS FLOAT)"
    args = window(meta, params, ticker=params.get("ticker")) | {"min_toxicity": params["min_toxicity"]}
    totals_sql = MATCHING + f"""
        SELECT count(toxicity_score) AS scored,
               count(*) FILTER (WHERE {flagged}) AS flagged,
               avg(CAST(toxicity_score AS DOUBLE)) AS average_toxicity
        FROM matching"""
    messages_sql = MATCHING + f"""
        SELECT message_id, event_timestamp, ticker, source_system,
               CAST(toxicity_score AS DOUBLE) AS toxicity_score, text_content
        FROM matching
        WHERE {flagged}
        ORDER BY toxicity_score DESC, event_timestamp DESC, message_id ASC
        LIMIT $limit"""
    (totals,) = rows(con, totals_sql, args)
    return totals | {"messages": rows(con, messages_sql, args | {"limit": params["limit"]})}


def intents(con, meta, params):
    sql = MATCHING + """
        SELECT user_intent AS intent,
               count(*) AS count,
               CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS share,
               avg(CAST(sentiment_score AS DOUBLE)) AS average_score
        FROM matching
        WHERE user_intent IS NOT NULL
        GROUP BY intent
        ORDER BY count DESC, intent ASC"""
    return rows(con, sql, window(meta, params, ticker=params.get("ticker")))


def records(con, meta, params):
    sql = MATCHING + """
        SELECT message_id FROM matching ORDER BY event_timestamp DESC, message_id DESC"""
    args = window(meta, params, ticker=params.get("ticker"), source_system=params.get("source_system"))
    return [row["message_id"] for row in rows(con, sql, args)]


QUERIES = {
    "timeseries": timeseries,
    "top_tickers": top_tickers,
    "summary": summary,
    "entities": entities,
    "aspects": aspects,
    "toxicity": toxicity,
    "intents": intents,
    "records": records,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--query", required=True, choices=sorted(QUERIES))
    parser.add_argument("--params", required=True, help="JSON object of the query's parameters")
    parser.add_argument("--namespace", default="sentiment")
    parser.add_argument("--table", default="sentiment_records")
    args = parser.parse_args()
    meta = metadata_location(args.warehouse, args.namespace, args.table)
    data = QUERIES[args.query](connect(), meta, json.loads(args.params))
    print(json.dumps({"data": data}, allow_nan=False))


if __name__ == "__main__":
    main()
