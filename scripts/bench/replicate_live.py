"""Live half of scripts/bench/replicate.sh: the real `sentiment-lake serve` replicating itself while it lives.

Four Event Hubs partitions post events of the present at RATE events/s to IngestEvents (the host's envelope),
the committer commits every COMMIT_SECS, the MaintainTable timer fires every MAINTAIN_SECS, and serve's own
replication loop runs a round every EVERY_SECS (`--replica DIR --replica-every-secs`). Every 250 ms a sampler
reads the primary's and the replica's SQL catalogs (SQLite) and metadata files, and records when each snapshot
of the records table was committed (its timestamp) and when the replica first held it.

Prints JSON: per commit, how long until the replica held it (p50, p99, worst); the recovery point over the run,
the age of the oldest commit the replica lacked at each sample (what losing the primary at that moment would
lose), p50, p99, worst; and, after a last round, the replica's rows and distinct ids (DuckDB) against the events
acknowledged. Usage: replicate_live.py BIN WORKDIR MINUTES RATE COMMIT_SECS EVERY_SECS MAINTAIN_SECS"""
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "interop"))
from duckdb_queries import connect  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=60):
    request = urllib.request.Request(url, data=body.encode(), headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def envelope(partition, first_sequence, bodies, enqueued):
    n = len(bodies)
    seqs = list(range(first_sequence, first_sequence + n))
    at = enqueued.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return json.dumps({
        "Data": {"events": json.dumps(bodies)},
        "Metadata": {
            "PartitionContext": {"FullyQualifiedNamespace": "bench-ns.servicebus.windows.net", "EventHubName": "sentiment-events",
                                 "ConsumerGroup": "$Default", "PartitionId": str(partition), "IsCheckpointingAfterInvocation": True},
            "PartitionKeyArray": json.dumps([None] * n),
            "OffsetArray": json.dumps([str(s * 1024) for s in seqs]),
            "SequenceNumberArray": json.dumps(seqs),
            "EnqueuedTimeUtcArray": json.dumps([at] * n),
            "sys": {"MethodName": "IngestEvents", "UtcNow": datetime.now(timezone.utc).isoformat()},
        },
    })


def produce(base, partition, rate, templates, stop, acknowledged, lock):
    sequence = 0
    next_tick = time.monotonic()
    while not stop.is_set():
        next_tick += 1.0
        now = datetime.now(timezone.utc)
        bodies = []
        for i in range(rate):
            event = dict(templates[(sequence + i) % len(templates)])
            event["event_timestamp"] = (now - timedelta(milliseconds=((sequence + i) * 31) % 2000)).isoformat().replace("+00:00", "Z")
            event["message_id"] = f"live-{partition}-{sequence + i:012d}"
            bodies.append(json.dumps(event))
        try:
            if post(f"{base}/IngestEvents", envelope(partition, sequence, bodies, now)) == 200:
                sequence += rate
                with lock:
                    acknowledged[0] += rate
        except Exception as e:  # not acknowledged: the host would redeliver the same batch; so does this producer
            print(f"partition {partition}: {e}", file=sys.stderr)
        time.sleep(max(0.0, next_tick - time.monotonic()))


def snapshots(warehouse):
    """The records table's snapshots (id -> commit time in ms) as its catalog points at them, or None."""
    try:
        with sqlite3.connect(f"file:{warehouse}/catalog.db?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT metadata_location FROM iceberg_tables WHERE table_name = 'sentiment_records'").fetchone()
        if row is None:
            return None
        with open(row[0].removeprefix("file://")) as f:
            metadata = json.load(f)
        return {s["snapshot-id"]: s["timestamp-ms"] for s in metadata.get("snapshots", [])}
    except (sqlite3.Error, OSError, ValueError):
        return None


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[round((len(values) - 1) * p)], 2)


def main(binary, work, minutes, rate, commit_secs, every_secs, maintain_secs):
    minutes, rate, commit_secs, every_secs, maintain_secs = float(minutes), int(rate), int(commit_secs), int(every_secs), int(maintain_secs)
    primary, replica = f"{work}/primary", f"{work}/replica"
    os.makedirs(primary, exist_ok=True)
    subprocess.run([binary, "generate", "--events", "2000", "--out", f"{work}/templates.ndjson"], check=True, capture_output=True)
    with open(f"{work}/templates.ndjson") as f:
        templates = [json.loads(line) for line in f if line.strip()]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(f"{work}/serve.log", "w")
    server = subprocess.Popen([binary, "--warehouse", primary, "serve", "--port", str(port), "--commit-interval-secs", str(commit_secs),
                               "--replica", replica, "--replica-every-secs", str(every_secs),
                               "--rate-limit-per-minute", "1000000000", "--rate-limit-burst", "1000000000"],
                              env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/api/health", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        stop, lock, acknowledged = threading.Event(), threading.Lock(), [0]
        threads = [threading.Thread(target=produce, args=(base, p, rate // 4, templates, stop, acknowledged, lock)) for p in range(4)]

        def maintain():
            while not stop.wait(maintain_secs):
                try:
                    post(f"{base}/MaintainTable", open("testdata/payloads/timer.json").read(), timeout=600)
                except Exception as e:
                    print(f"maintenance: {e}", file=sys.stderr)
        threads.append(threading.Thread(target=maintain))
        for t in threads:
            t.start()
        first_seen, samples = {}, []
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            now = int(time.time() * 1000)
            held = snapshots(replica) or {}
            for snapshot in held:
                first_seen.setdefault(snapshot, now)
            committed = snapshots(primary) or {}
            samples.append((now, committed))
            time.sleep(0.25)
        stop.set()
        for t in threads:
            t.join()
        post(f"{base}/CommitStaged", open("testdata/payloads/timer.json").read(), timeout=600)
    finally:
        server.terminate()
        server.wait()
    start = samples[0][0]
    commits = {}
    for _, snaps in samples:
        commits.update(snaps)
    delays = [(first_seen[s] - at) / 1000 for s, at in commits.items() if at >= start and s in first_seen]
    unseen = sum(1 for s, at in commits.items() if at >= start and s not in first_seen)
    rpo = []
    for at, snaps in samples:
        missing = [c for s, c in snaps.items() if first_seen.get(s, at + 1) > at]
        rpo.append((at - min(missing)) / 1000 if missing else 0.0)
    last = subprocess.run([binary, "--warehouse", primary, "replicate", "--to", replica], capture_output=True, text=True)
    assert last.returncode == 0, last.stderr
    con = connect()
    with sqlite3.connect(f"file:{replica}/catalog.db?mode=ro", uri=True) as db:
        location = db.execute("SELECT metadata_location FROM iceberg_tables WHERE table_name = 'sentiment_records'").fetchone()[0]
    rows, ids = con.execute("SELECT count(*), count(DISTINCT message_id) FROM iceberg_scan(?)", [location]).fetchone()
    print(json.dumps({
        "minutes": minutes, "rate": rate, "commit_secs": commit_secs, "replica_every_secs": every_secs, "maintain_secs": maintain_secs,
        "commits": len(delays), "commits_not_yet_replicated_at_stop": unseen,
        "commit_to_replica_s": {"p50": percentile(delays, 0.5), "p99": percentile(delays, 0.99), "worst": percentile(delays, 1.0)},
        "recovery_point_s": {"p50": percentile(rpo, 0.5), "p99": percentile(rpo, 0.99), "worst": percentile(rpo, 1.0), "samples": len(rpo)},
        "target_s": commit_secs + 30,
        "acknowledged": acknowledged[0], "replica_rows": rows, "replica_distinct_ids": ids,
    }, indent=1))
    assert rows == acknowledged[0] and ids == rows, "the replica holds every acknowledged event once"


if __name__ == "__main__":
    main(*sys.argv[1:8])
