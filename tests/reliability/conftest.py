"""Fault-injection tests reuse the end-to-end harness: a real Celery worker subprocess on the
pytest database, gunicorn subprocesses, the HubSpot sandbox over HTTP and the cuttable proxy.

LEADLINE_RELIABILITY_FULL=1 (set by ``make reliability``) runs the full sizes; ``make test``
runs the same tests scaled down.
"""

from __future__ import annotations

import os

FULL = os.environ.get("LEADLINE_RELIABILITY_FULL") == "1"


def size(full: int, smoke: int) -> int:
    return full if FULL else smoke
