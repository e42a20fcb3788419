#!/usr/bin/env bash
# `make run`: migrate, make sure an operator exists, then web + worker + beat (+ the HubSpot
# sandbox when no real token is configured, + the model sandbox when OUTREACH_DRAFTER=llm and no
# LLM_BASE_URL is set) under honcho. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}" LEADLINE_PORT="${PORT:-8000}"
export SANDBOX_PORT="${SANDBOX_PORT:-$((PORT + 1))}"
export LLM_SANDBOX_PORT="${LLM_SANDBOX_PORT:-$((PORT + 2))}"
mkdir -p var logs
# prometheus_client multiprocess mode: every process writes its samples here and /metrics
# merges them. Wiped at start: files of processes from an earlier run must not be summed.
export PROMETHEUS_MULTIPROC_DIR="$PWD/var/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

procs="web worker beat"
procs="$procs relay"  # the outbox relay publishes new workflows (issue #16)
if [ -z "${HUBSPOT_ACCESS_TOKEN:-}" ]; then
  export HUBSPOT_ACCESS_TOKEN="sandbox-token"
  export HUBSPOT_API_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}"
  procs="$procs sandbox"
  echo "No HUBSPOT_ACCESS_TOKEN: using the local HubSpot sandbox at $HUBSPOT_API_BASE_URL"
fi
# .env may set OUTREACH_DRAFTER too; settings read it, so ask them rather than the shell.
drafter="${OUTREACH_DRAFTER:-$(.venv/bin/python -c 'from config.env import env; print(env.str("OUTREACH_DRAFTER", default=""))')}"
llm_base_url="${LLM_BASE_URL:-$(.venv/bin/python -c 'from config.env import env; print(env.str("LLM_BASE_URL", default=""))')}"
if [ "$drafter" = "llm" ] && [ -z "$llm_base_url" ]; then
  export LLM_BASE_URL="http://127.0.0.1:${LLM_SANDBOX_PORT}/v1"
  procs="$procs llm_sandbox"
  echo "OUTREACH_DRAFTER=llm and no LLM_BASE_URL: using the local model sandbox at $LLM_BASE_URL"
fi
if [ -z "${HUBSPOT_CLIENT_SECRET:-}" ]; then
  # A per-checkout development secret, so `manage.py send_test_webhook` can sign requests.
  [ -s var/dev-client-secret ] || .venv/bin/python -c "import secrets; print(secrets.token_hex(16))" > var/dev-client-secret
  HUBSPOT_CLIENT_SECRET="$(cat var/dev-client-secret)"
  export HUBSPOT_CLIENT_SECRET
  echo "No HUBSPOT_CLIENT_SECRET: using the development secret in var/dev-client-secret"
fi

.venv/bin/python manage.py check_send_mode
.venv/bin/python manage.py migrate --no-input -v0
.venv/bin/python manage.py ensure_operator
echo
echo "Leadline on http://127.0.0.1:${PORT}"
echo "  dashboard: http://127.0.0.1:${PORT}/dashboard/"
echo "  admin:     http://127.0.0.1:${PORT}/admin/"
echo "  API docs:  http://127.0.0.1:${PORT}/api/docs/"
echo "  metrics:   http://127.0.0.1:${PORT}/metrics    logs: logs/app.log, logs/celery.log"
echo
# shellcheck disable=SC2086 # honcho takes the process names as separate arguments
exec .venv/bin/honcho -f Procfile start $procs
