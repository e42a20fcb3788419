"""The outbox relay (workflows/relay.py) on the real PostgreSQL and Redis: what it publishes,
what it leaves, how it wakes, and how two of them share the outbox."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from intake.models import FormSubmission
from intake.tests.conftest import (  # noqa: F401 - pytest fixtures
    broker_down,
    broker_queue,
    queued_tasks,
)
from workflows import alerts, relay
from workflows.models import Status, Workflow
from workflows.relay import Listener, Relay, listen_params, outbox_lag_seconds, relay_batch
from workflows.services import workflows_replay


def new_workflow(**fields) -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=f"relay:{uuid.uuid4().hex}",
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email="lead@acme.test",
        form_id="contact-us",
        received_at=timezone.now(),
    )
    return Workflow.objects.create(submission=submission, **fields)


@pytest.mark.django_db
def test_a_batch_publishes_each_unpublished_workflow_once_and_stamps_it(broker_queue):  # noqa: F811
    waiting = [new_workflow() for _ in range(3)]
    new_workflow(status=Status.RUNNING)  # claimed already: not the relay's
    new_workflow(enqueued_at=timezone.now())  # published by someone else (a replay)

    result = relay_batch()

    assert (result.claimed, result.published, result.broker_failed) == (3, 3, False)
    assert sorted(queued_tasks(broker_queue)) == sorted(
        ("workflows.process_workflow", f"[{w.pk}]") for w in waiting
    )
    assert Workflow.objects.filter(pk__in=[w.pk for w in waiting], enqueued_at=None).count() == 0
    assert relay_batch().claimed == 0  # stamped: never again
    assert len(queued_tasks(broker_queue)) == 3


@pytest.mark.django_db
def test_batches_are_oldest_first_and_bounded(broker_queue):  # noqa: F811
    rows = [new_workflow() for _ in range(5)]
    Workflow.objects.filter(pk=rows[4].pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert relay_batch(batch_size=2).published == 2

    first = [args for _task, args in queued_tasks(broker_queue)]
    assert first[0] == f"[{rows[4].pk}]"
    assert relay.unpublished().count() == 3


@pytest.mark.django_db
def test_with_the_broker_down_nothing_is_stamped(broker_down):  # noqa: F811
    rows = [new_workflow() for _ in range(2)]
    result = relay_batch()
    assert result.broker_failed and result.published == 0
    assert relay.unpublished().filter(pk__in=[r.pk for r in rows]).count() == 2


@pytest.mark.django_db
def test_replays_are_published_on_commit_not_by_the_relay(
    broker_queue,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    original = new_workflow(status=Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        result = workflows_replay(workflow_ids=[original.pk], actor="test")
    # Published by the replay's own commit: exactly the new workflow's process message.
    assert queued_tasks(broker_queue) == [("workflows.process_workflow", f"[{result.created[0]}]")]
    assert Workflow.objects.get(pk=result.created[0]).enqueued_at is not None
    assert relay_batch().claimed == 0
    assert len(queued_tasks(broker_queue)) == 1  # and not again by the relay


@pytest.mark.django_db(transaction=True)
def test_a_second_relay_skips_the_rows_the_first_holds(broker_queue):  # noqa: F811
    rows = [new_workflow() for _ in range(4)]
    held = [rows[0].pk, rows[1].pk]
    locked, release = threading.Event(), threading.Event()

    def first_relay_mid_batch() -> None:
        with transaction.atomic():
            list(Workflow.objects.select_for_update().filter(pk__in=held))
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=first_relay_mid_batch)
    thread.start()
    assert locked.wait(10)
    started = time.monotonic()
    result = relay_batch()
    elapsed = time.monotonic() - started
    release.set()
    thread.join()

    assert elapsed < 1  # it did not wait for the other relay's locks
    assert result.published == 2
    published = {args for _task, args in queued_tasks(broker_queue)}
    assert published == {f"[{rows[2].pk}]", f"[{rows[3].pk}]"}
    assert sorted(relay.unpublished().values_list("pk", flat=True)) == sorted(held)


@pytest.mark.django_db(transaction=True)
def test_an_insert_notifies_the_listener_at_commit():
    listener = Listener(listen_params())
    assert listener.connect()
    try:
        assert listener.wait(0.05) is False  # nothing yet
        with transaction.atomic():
            new_workflow()
            assert listener.wait(0.2) is False  # not before the commit
        assert listener.wait(5) is True
    finally:
        listener.close()


@pytest.mark.django_db(transaction=True)
def test_the_relay_loop_is_woken_by_notify_well_before_its_poll(broker_queue):  # noqa: F811
    stop = threading.Event()
    loop = Relay(poll_seconds=30, stop=stop)
    assert loop.listener is not None
    thread = threading.Thread(target=lambda: (loop.run(), connection.close()))
    thread.start()
    try:
        time.sleep(0.5)  # the first (empty) batch, then it waits on LISTEN for up to 30 s
        workflow = new_workflow()
        started = time.monotonic()
        deadline = started + 10
        while time.monotonic() < deadline and relay.unpublished().filter(pk=workflow.pk).exists():
            time.sleep(0.05)
        woke_after = time.monotonic() - started
    finally:
        stop.set()
        thread.join(35)
    assert woke_after < 3
    assert queued_tasks(broker_queue) == [("workflows.process_workflow", f"[{workflow.pk}]")]


@pytest.mark.django_db
def test_where_the_relay_listens(settings):
    settings.DATABASE_DIRECT_URL = ""
    settings.DATABASE_POOLER = ""
    assert listen_params()["dbname"] == connection.settings_dict["NAME"]
    settings.DATABASE_POOLER = "pgbouncer"
    assert listen_params() is None  # behind a transaction pooler without a direct URL: poll
    settings.DATABASE_DIRECT_URL = "postgres://relay:pw@db.internal:5433/leadline"
    params = listen_params()
    assert (params["host"], params["port"], params["dbname"], params["user"]) == (
        "db.internal",
        5433,
        "leadline",
        "relay",
    )
    assert Relay(stop=threading.Event()).listener is not None


@pytest.mark.django_db
def test_lag_is_the_age_of_the_oldest_unpublished_workflow(client):
    assert outbox_lag_seconds() == 0
    row = new_workflow()
    new_workflow(enqueued_at=timezone.now())
    Workflow.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    assert 89 < outbox_lag_seconds() < 100
    body = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    line = next(x for x in body.splitlines() if x.startswith("leadline_outbox_lag_seconds "))
    assert 89 < float(line.split()[1]) < 100


@pytest.mark.django_db
def test_a_growing_lag_alerts_once_per_quarter_hour(settings):
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""
    settings.OUTBOX_LAG_ALERT_SECONDS = 30
    young = new_workflow()
    assert alerts.send_alerts()[alerts.OUTBOX_LAG] == 0  # 0 s old: no alert
    old = new_workflow()
    Workflow.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=45))

    assert alerts.send_alerts()[alerts.OUTBOX_LAG] == 1
    assert len(mail.outbox) == 1
    assert f"workflow #{old.pk} is waiting to be published" in mail.outbox[0].subject
    assert "is the relay running?" in mail.outbox[0].body
    Workflow.objects.filter(pk=young.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert alerts.send_alerts()[alerts.OUTBOX_LAG] == 0  # another row, same quarter hour
    later = timezone.now() + timedelta(minutes=16)
    assert alerts.send_alerts(now=later)[alerts.OUTBOX_LAG] == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_an_unreachable_listen_server_is_retried_every_half_minute_not_every_pass():
    listener = Listener({"host": "127.0.0.1", "port": 1, "dbname": "x", "connect_timeout": 2})
    started = time.monotonic()
    assert listener.connect() is False  # refused at once; the relay polls meanwhile
    assert listener.wait(0.2) is False
    assert listener.connect() is False and time.monotonic() - started < 2  # no new attempt
    assert listener.retry_at - time.monotonic() > 25
