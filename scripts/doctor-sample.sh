#!/usr/bin/env bash
# What `doctor` prints in a deployed app, reproduced on this machine with stand-ins that speak Azure's
# protocols (docs/deploy.md, section 3): settings shaped as Terraform sets them, the warehouse on Azurite over
# HTTPS reached with a managed-identity token from a local App Service token endpoint, the catalog on a
# TLS-only PostgreSQL (its own CA, sslmode=verify-full, an Entra token as password), the cache on a Redis that
# admits only the identity's tokens. Everything runs on 127.0.0.1 in a scratch directory and is stopped after.
# Usage: scripts/doctor-sample.sh   (SENTIMENT_LAKE_BIN picks the binary; default: the debug build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="$(scripts/setup-python.sh)"
azurite="$(scripts/setup-azurite.sh)"
scripts/setup-redis.sh >/dev/null
if [ -z "${SENTIMENT_LAKE_BIN:-}" ]; then
  cargo build --locked -q --bin sentiment-lake >&2
  SENTIMENT_LAKE_BIN="$PWD/target/debug/sentiment-lake"
fi
work="$(mktemp -d)"
pids=()
pgbin="$(ls -d /usr/lib/postgresql/*/bin | head -1)"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -d "$work/pg" ] && as_postgres "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A private CA and a certificate for 127.0.0.1 (Azurite's and PostgreSQL's).
(cd "$work" && printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext \
  && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=sample CA" -keyout ca.key -out ca.pem \
       -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null \
  && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr 2>/dev/null \
  && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out cert.pem -extfile server.ext 2>/dev/null)

# The catalog: TLS only, as Azure Database for PostgreSQL with require_secure_transport.
pg_port="$(port)"
mkdir "$work/pg" && [ "$(id -u)" != 0 ] || chown -R postgres "$work"
as_postgres "$pgbin/initdb" -D "$work/pg" -A trust -U postgres --no-sync --no-instructions >/dev/null
cp "$work/cert.pem" "$work/pg/server.crt" && cp "$work/key.pem" "$work/pg/server.key" && chmod 600 "$work/pg/server.key"
[ "$(id -u)" != 0 ] || chown -R postgres "$work/pg"
printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\n" \
  "$pg_port" "$work/pg" > "$work/pg/postgresql.auto.conf"
printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n' > "$work/pg/pg_hba.conf"
as_postgres "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start >/dev/null

# The warehouse: Azurite over HTTPS, accepting bearer tokens.
blob_port="$(port)"
"$azurite" --blobHost 127.0.0.1 --blobPort "$blob_port" --inMemoryPersistence --silent --skipApiVersionCheck --disableTelemetry \
  --loose --cert "$work/cert.pem" --key "$work/key.pem" --oauth basic >/dev/null 2>&1 &
pids+=($!)

# The cache: Redis that admits nobody but the identity, with the tokens it is issued.
redis_port="$(port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)

# The platform's managed-identity endpoint (App Service protocol), issuing Entra-shaped tokens.
token_port="$(port)"
cat > "$work/tokens.py" <<'PY'
import base64, json, subprocess, sys, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
port, redis_port = int(sys.argv[1]), sys.argv[2]
OID = "11111111-1111-1111-1111-111111111111"
b64 = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")
class Tokens(BaseHTTPRequestHandler):
    def do_GET(self):
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        if self.headers.get("x-identity-header") != "platform-secret":
            self.send_response(401); self.end_headers(); return
        now, resource = int(time.time()), query["resource"]
        claims = {"aud": resource, "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/", "iat": now - 60,
                  "nbf": now - 60, "exp": now + 3600, "oid": OID, "jti": str(uuid.uuid4())}
        token = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"
        if resource == "https://redis.azure.com":
            subprocess.run(["redis-cli", "-p", redis_port, "--user", "admin", "--pass", "admin-secret", "--no-auth-warning",
                            "ACL", "SETUSER", OID, "on", ">" + token, "~*", "&*", "+@all"], check=True, capture_output=True)
        body = json.dumps({"access_token": token, "expires_on": str(now + 3600), "resource": resource, "token_type": "Bearer"}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
HTTPServer(("127.0.0.1", port), Tokens).serve_forever()
PY
"$python" "$work/tokens.py" "$token_port" "$redis_port" &
pids+=($!)

sleep 2
redis-cli -p "$redis_port" ACL SETUSER admin on '>admin-secret' '~*' '&*' '+@all' >/dev/null
redis-cli -p "$redis_port" ACL SETUSER default off >/dev/null
# The lake container (what Terraform creates), with Azurite's development key.
"$python" - "$blob_port" "$work/ca.pem" <<'PY'
import sys, time
from azure.storage.blob import BlobServiceClient
key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
for attempt in range(60):
    try:
        BlobServiceClient(f"https://127.0.0.1:{sys.argv[1]}/devstoreaccount1", credential={"account_name": "devstoreaccount1", "account_key": key},
                          connection_verify=sys.argv[2]).create_container("lake")
        break
    except Exception:
        time.sleep(0.5)
PY

cd "$work"
env -i PATH="$PATH" HOME="$HOME" RUST_LOG=error \
  IDENTITY_ENDPOINT="http://127.0.0.1:$token_port/msi/token" IDENTITY_HEADER=platform-secret \
  SENTIMENT_LAKE_WAREHOUSE="abfss://lake@devstoreaccount1.dfs.core.windows.net/warehouse" \
  SENTIMENT_LAKE_AZURE_BLOB_ENDPOINT="https://127.0.0.1:$blob_port/devstoreaccount1" SENTIMENT_LAKE_AZURE_CA_FILE="$work/ca.pem" \
  SENTIMENT_LAKE_AZURE_AUTH=managed-identity \
  SENTIMENT_LAKE_CATALOG_URI="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=verify-full&sslrootcert=$work/ca.pem" \
  SENTIMENT_LAKE_CATALOG_AUTH=entra \
  SENTIMENT_LAKE_REDIS_URL="redis://127.0.0.1:$redis_port" SENTIMENT_LAKE_REDIS_AUTH=entra \
  SENTIMENT_LAKE_EVENTHUB_PARTITIONS=8 SENTIMENT_LAKE_INSTANCE_MEMORY_MB=2048 SENTIMENT_LAKE_MAX_EVENT_KB=64 \
  SENTIMENT_LAKE_HOST_JSON="$OLDPWD/host.json" \
  "$SENTIMENT_LAKE_BIN" doctor
