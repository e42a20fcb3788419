"""config.db.bound_cursor: the server-binding cursor of the hot paths behaves like Django's own."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from workflows.models import Status
from workflows.tests.test_transitions import make_workflow
from workflows.transitions import transition, update_workflow


def kill_this_connection() -> None:
    """PostgreSQL ends this test's connection (as a restart would) while Django keeps it."""
    pid = connection.connection.info.backend_pid
    params = connection.settings_dict  # the test database's
    with psycopg.connect(
        dbname=params["NAME"],
        user=params.get("USER") or None,
        host=params.get("HOST") or None,
        port=params.get("PORT") or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_died_while_idle_is_replaced_at_the_next_task():
    """CONN_HEALTH_CHECKS: a Celery task (or request) starts by marking the kept connection
    for a check; the first statement then finds it dead and reconnects, as connection.cursor()
    does. Without the check the task's claim failed with OperationalError."""
    if connection.vendor != "postgresql" or not connection.settings_dict["CONN_HEALTH_CHECKS"]:
        pytest.skip("PostgreSQL with CONN_HEALTH_CHECKS")
    workflow = make_workflow(Status.PENDING)

    kill_this_connection()
    connection.close_if_unusable_or_obsolete()  # what the start of a task or request does
    won = transition(workflow.pk, from_status="pending", to_status="running")

    kill_this_connection()
    connection.close_if_unusable_or_obsolete()
    updated = update_workflow(workflow.pk, {"attempts": 1}, status=Status.RUNNING)

    assert won.won and updated == 1
