#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) with promtool from Debian's prometheus
# package (installed here when missing): the rules parse, their unit tests (alerts_test.yml) pass, and every
# query of the Grafana dashboard (deploy/grafana/*.json) parses as PromQL (as recording rules of a scratch
# rules file). That each metric they name is one the app exports is checked by tests/alert_files.rs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v promtool >/dev/null 2>&1; then
  scripts/apt-install.sh prometheus
fi
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 - deploy/grafana/*.json >"$scratch/dashboard-queries.yml" <<'PY'
import json, sys
print("groups:")
for path in sys.argv[1:]:
    print(f"  - name: {json.dumps(path)}\n    rules:")
    for panel in json.load(open(path))["panels"]:
        for i, target in enumerate(panel.get("targets", [])):
            print(f"      - record: dashboard:panel{panel['id']}:{i}\n        expr: {json.dumps(target['expr'])}")
PY
promtool check rules "$scratch/dashboard-queries.yml"
