"""The end-to-end harness's fixtures, defined once for tests/e2e and tests/reliability.

Defining them in one conftest matters: a session fixture imported into two conftests is two
fixtures, and two session workers would then share (and split) one broker queue.
"""

from tests.harness import (  # noqa: F401 - pytest fixtures
    celery_worker,
    e2e,
    e2e_sandbox,
    outbox_relay,
    worker_env,
)
