"""The MigrateBlob function route, end to end, for scripts/uat.sh: starts Azurite (npm) and the real
handler (`sentiment-lake serve`) on free loopback ports, uploads a legacy file to the `legacy` container,
delivers the Event Grid BlobCreated invocation twice (as Event Grid may), and prints what each delivery
answered and what the table holds, as JSON. Usage: migrate_route.py <azurite-blob> <sentiment-lake> <file> <workdir>"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone

from azure.storage.blob import BlobServiceClient

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def main(azurite_bin, binary, legacy_file, work):
    blob_port, http_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{blob_port}/{ACCOUNT}"
    connection = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={endpoint};"
    procs = []
    try:
        procs.append(subprocess.Popen(
            [azurite_bin, "--blobHost", "127.0.0.1", "--blobPort", str(blob_port), "--inMemoryPersistence", "--silent",
             "--skipApiVersionCheck", "--disableTelemetry", "--loose"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while True:
            try:
                service = BlobServiceClient.from_connection_string(connection)
                service.create_container("legacy")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        content = open(legacy_file, "rb").read()
        name = "exports/" + os.path.basename(legacy_file)
        etag = service.get_blob_client("legacy", name).upload_blob(content)["etag"]
        env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=connection, RUST_LOG="warn")
        procs.append(subprocess.Popen(
            [binary, "--warehouse", os.path.join(work, "warehouse-blob"), "serve", "--port", str(http_port)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "wb")))
        base = f"http://127.0.0.1:{http_port}"
        wait_for(base + "/api/health")
        uri = f"{endpoint}/legacy/{name}"
        deliveries = []
        for _ in range(2):
            # The event only (eventGridTrigger), wrapped in a JSON string as the host encodes trigger values.
            event = {
                "id": str(uuid.uuid4()), "eventType": "Microsoft.Storage.BlobCreated",
                "subject": f"/blobServices/default/containers/legacy/blobs/{name}",
                "eventTime": datetime.now(timezone.utc).isoformat(), "dataVersion": "", "metadataVersion": "1",
                "data": {"api": "PutBlob", "url": uri, "eTag": etag, "contentLength": len(content), "blobType": "BlockBlob"},
            }
            invocation = {
                "Data": {"event": json.dumps(event)},
                "Metadata": {"sys": {"MethodName": "MigrateBlob", "UtcNow": datetime.now(timezone.utc).isoformat(), "RandGuid": str(uuid.uuid4())}},
            }
            request = urllib.request.Request(base + "/MigrateBlob", data=json.dumps(invocation).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(request, timeout=300) as reply:
                deliveries.append({"status": reply.status, "reply": json.load(reply)["ReturnValue"]})
        health = json.load(urllib.request.urlopen(base + "/api/health", timeout=30))
        print(json.dumps({"deliveries": deliveries, "health": health}))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main(*sys.argv[1:5])
