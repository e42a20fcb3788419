"""submissions_ingest outside a transaction (the webhook's case on PostgreSQL): a delivery of
free keys is one statement in autocommit; one that meets a held key, or loses one to a
concurrent delivery, stores nothing that way and is stored in a transaction instead."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from intake import services
from intake.models import FormSubmission, Lead, LeadKey
from intake.payloads import parse_body
from intake.tests.test_services import items
from workflows.models import AuditEvent, Workflow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the statement that runs alone is PostgreSQL's")


def event(event_id: int, contact_id: int) -> list:
    """A contact event: its contact key is its lead's, whatever its event id."""
    body = {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": 62515,
        "appId": 2,
        "occurredAt": 1764201600000 + event_id,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": contact_id,
        "changeSource": "FORM",
    }
    return parse_body(json.dumps([body]).encode(), query={})


def ingest(delivery: list) -> services.IngestResult:
    return services.submissions_ingest(
        items=delivery, signature_version="v3", received_at=timezone.now()
    )


class Statements:
    """Each statement the connection runs, and whether it ran in a transaction."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append((sql.split()[0], not connection.get_autocommit()))
        return execute(sql, params, many, context)


def test_free_keys_are_stored_by_one_statement_without_a_transaction():
    statements = Statements()
    with connection.execute_wrapper(statements):
        result = ingest(items(1000, count=3))

    assert statements.seen == [("WITH", False)]
    assert len(result.accepted_ids) == len(result.workflow_ids) == 3
    assert (result.duplicates, result.joined) == (0, {})
    assert Lead.objects.count() == 3 and LeadKey.objects.count() == 3
    assert AuditEvent.objects.filter(action="submission.received").count() == 3
    assert set(Workflow.objects.values_list("submission_id", flat=True)) == set(result.accepted_ids)


def test_a_held_key_stores_nothing_alone_and_the_delivery_joins_in_a_transaction():
    first = ingest(event(2000, contact_id=77))
    [lead], [started] = first.accepted_ids, first.workflow_ids
    statements = Statements()
    with connection.execute_wrapper(statements):
        result = ingest(event(2001, contact_id=77))  # the same contact: the same lead

    # The statement alone found the key held and stored nothing; the transaction did it all.
    assert statements.seen[0] == ("WITH", False)
    assert statements.seen[1:] and all(in_transaction for _, in_transaction in statements.seen[1:])
    [joined] = result.accepted_ids
    assert result.joined == {joined: lead} and result.workflow_ids == []
    assert FormSubmission.objects.count() == 2, "the first try left no row"
    assert Lead.objects.count() == 1 and Workflow.objects.count() == 1
    assert AuditEvent.objects.filter(action="submission.joined", workflow_id=started).count() == 1


def test_a_redelivery_is_a_duplicate_and_creates_nothing():
    first = ingest(items(3000, count=2))
    again = ingest(items(3000, count=2))
    assert (len(again.accepted_ids), again.duplicates) == (0, 2)
    assert FormSubmission.objects.count() == Workflow.objects.count() == 2
    assert first.workflow_ids and again.workflow_ids == []


def test_a_delivery_whose_items_share_a_key_goes_straight_to_a_transaction():
    statements = Statements()
    with connection.execute_wrapper(statements):
        result = ingest(event(4000, contact_id=88) + event(4001, contact_id=88))
    assert statements.seen[0] == ("WITH", True)
    assert len(result.accepted_ids) == 2 and len(result.workflow_ids) == 1
    assert len(result.joined) == 1


def test_a_key_taken_meanwhile_aborts_the_statement_and_the_delivery_joins():
    """A concurrent delivery holds the key uncommitted: the statement's check cannot see it,
    its key insert waits, then loses. The statement aborts whole (LL001) and the delivery is
    stored again in a transaction, joining the other delivery's lead."""
    holding, release = threading.Event(), threading.Event()
    holder: dict[str, services.IngestResult] = {}

    def hold_the_key() -> None:
        try:
            with transaction.atomic():
                holder["result"] = ingest(event(5000, contact_id=99))
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    other = threading.Thread(target=hold_the_key)
    other.start()
    assert holding.wait(30)
    waiter: dict[str, object] = {}

    def deliver() -> None:
        try:
            statements = Statements()
            with connection.execute_wrapper(statements):
                waiter["result"] = ingest(event(5001, contact_id=99))
            waiter["seen"] = statements.seen
        except BaseException as exc:  # reported below
            waiter["error"] = exc
        finally:
            connection.close()

    racer = threading.Thread(target=deliver)
    racer.start()
    _wait_for_a_lock_wait()
    release.set()
    other.join(30)
    racer.join(30)

    assert "error" not in waiter, waiter.get("error")
    [lead] = holder["result"].accepted_ids
    result = waiter["result"]
    [joined] = result.accepted_ids
    assert result.joined == {joined: lead} and result.workflow_ids == []
    assert waiter["seen"][0] == ("WITH", False) and waiter["seen"][1] == ("WITH", True)
    assert FormSubmission.objects.count() == 2, "the aborted statement left no row"
    assert Lead.objects.count() == 1 and Workflow.objects.count() == 1


def _wait_for_a_lock_wait() -> None:
    """Until some backend waits for a lock (the racer's key insert behind the holder)."""
    with connection.cursor() as cursor:
        for _ in range(300):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the racing delivery never waited for the held key")


def test_the_statement_text_stays_within_psycopgs_query_cache():
    """psycopg re-parses the placeholders of a longer query on every execute (~0.1 ms of a
    form post): the statement must stay under its limits, whatever is added to it."""
    from psycopg import _queries

    sql, params = services._one_statement(
        items(6000, count=2), "v3", timezone.now(), timezone.now(), "webhook"
    )
    params["alone"] = True
    assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS
