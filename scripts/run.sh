#!/usr/bin/env bash
# `make run`: check the ports and the configuration, migrate, make sure an operator exists, then
# web + worker + beat + the outbox relay (+ the HubSpot sandbox when no real token is configured, + the model
# sandbox when OUTREACH_DRAFTER=llm and no LLM_BASE_URL is set) under scripts/supervise.py.
# Ctrl-C stops everything (exit 0).
#
# Nothing is written before the pre-flight passes: a second `make run` on a busy port, or one
# with a malformed variable, stops with one line and leaves the running instance alone. Runtime
# state is per port under var/run/<port>/ (var/ is LEADLINE_VAR_DIR when set; config/runstate.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PORT="${PORT:-8000}" LEADLINE_PORT="${PORT:-8000}"
export SANDBOX_PORT="${SANDBOX_PORT:-$((PORT + 1))}"
export LLM_SANDBOX_PORT="${LLM_SANDBOX_PORT:-$((PORT + 2))}"
PY=.venv/bin/python
# VAR_DIR, OUTREACH_DRAFTER, LLM_BASE_URL and whether HubSpot's token and secret are set, as the
# settings will read them: the environment, then .env, which this shell does not read (one
# Python start; nothing is written).
run_vars="$($PY -m config.runstate shell-vars)"
eval "$run_vars"

# --- Which processes, and the ports they need (environment only: nothing on disk yet) ---------
procs="web worker beat"
procs="$procs relay"  # the outbox relay publishes new workflows (issue #16)
ports=("$PORT")
notes=()
sandbox_url=""
if [ -z "$HUBSPOT_ACCESS_TOKEN_CONFIGURED" ]; then
  export HUBSPOT_ACCESS_TOKEN="$SANDBOX_TOKEN"
  export HUBSPOT_API_BASE_URL="http://127.0.0.1:${SANDBOX_PORT}"
  sandbox_url="$HUBSPOT_API_BASE_URL"
  procs="$procs sandbox"
  ports+=("$SANDBOX_PORT")
  notes+=("No HUBSPOT_ACCESS_TOKEN: using the local HubSpot sandbox at $HUBSPOT_API_BASE_URL")
fi
if [ "$OUTREACH_DRAFTER" = "llm" ] && [ -z "$LLM_BASE_URL" ]; then
  export LLM_BASE_URL="http://127.0.0.1:${LLM_SANDBOX_PORT}/v1"
  procs="$procs llm_sandbox"
  ports+=("$LLM_SANDBOX_PORT")
  notes+=("OUTREACH_DRAFTER=llm and no LLM_BASE_URL: using the local model sandbox at $LLM_BASE_URL")
fi

# --- Pre-flight: ports free (else one line naming who holds them), this port's instance lock
# (held on fd 9 by every process of this run), settings valid (else one line naming the
# variable). Exit 2: configuration error; 3: port or lock taken.
export LEADLINE_RUN_DIR="$VAR_DIR/run/$PORT"
mkdir -p "$LEADLINE_RUN_DIR"
exec 9>>"$LEADLINE_RUN_DIR/lock"
port_args=()
for p in "${ports[@]}"; do port_args+=(--port "$p"); done
$PY -m config.runstate preflight "${port_args[@]}" --lock-fd 9 || exit $?

# --- From here this run owns var/run/$PORT --------------------------------------------------
for note in "${notes[@]}"; do echo "$note"; done
mkdir -p logs
# prometheus_client multiprocess mode: every process writes its samples here and /metrics
# merges them. Wiped at start (we hold the lock): an earlier run's files must not be summed.
export PROMETHEUS_MULTIPROC_DIR="$LEADLINE_RUN_DIR/prometheus"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
secret_file=""
if [ -z "$HUBSPOT_CLIENT_SECRET_CONFIGURED" ]; then
  # One development secret per checkout, so `manage.py send_test_webhook` can sign requests.
  HUBSPOT_CLIENT_SECRET="$($PY -m config.runstate dev-secret)"
  export HUBSPOT_CLIENT_SECRET
  secret_file="$VAR_DIR/dev-client-secret"
  echo "No HUBSPOT_CLIENT_SECRET: using the development secret in ${secret_file#"$PWD"/}"
fi

# Tables first: check_send_mode records the mode in audit_events.
$PY manage.py migrate --no-input -v0
$PY manage.py check_send_mode
$PY manage.py ensure_operator
# For send_test_webhook in another shell: this run's port, sandbox and secret file.
$PY -m config.runstate record --port "$PORT" --sandbox-url "$sandbox_url" --secret-file "$secret_file"
echo
echo "Leadline on http://127.0.0.1:${PORT}"
echo "  dashboard: http://127.0.0.1:${PORT}/dashboard/"
echo "  admin:     http://127.0.0.1:${PORT}/admin/"
echo "  API docs:  http://127.0.0.1:${PORT}/api/docs/"
echo "  metrics:   http://127.0.0.1:${PORT}/metrics    logs: logs/app.log, logs/celery.log"
echo
# shellcheck disable=SC2086 # the process names are separate arguments
exec $PY scripts/supervise.py $procs
