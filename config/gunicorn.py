"""gunicorn settings shared by the Procfile and docker-compose (`gunicorn -c config/gunicorn.py`).

Command-line flags (bind, workers) still win over these.
"""

import os

from prometheus_client import multiprocess

from config.env import env_choice
from config.logging import LOG_LEVELS, logging_config
from config.startup import require_valid_settings

# The master reads the settings before it forks: a malformed variable stops gunicorn with one
# line naming it, instead of every worker failing to boot with a traceback (issue #15).
require_valid_settings()

timeout = 30
# Access lines go through the JSON formatter too; the request id ties them to app lines.
# The path without its query: a dashboard or API search carries the lead's address and name
# there, percent-encoded (%40), which the email mask cannot see. Status, size and time are
# labelled, or the phone mask takes "200 3676" for a number (stop 23's security review).
accesslog = None
access_log_format = (
    '%(h)s "%(m)s %(U)s" status=%(s)s bytes=%(b)s duration_ms=%(M)s request_id=%({x-request-id}o)s'
)
_log_file = os.environ.get("LOG_FILE") or None
# Read as strictly as settings.py reads it: a typo stops the server with the variable's name.
logconfig_dict = logging_config(env_choice("LOG_LEVEL", "info", LOG_LEVELS).upper(), _log_file)


def child_exit(server, worker) -> None:
    # A dead worker's live gauges must not linger in the merged /metrics output.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
