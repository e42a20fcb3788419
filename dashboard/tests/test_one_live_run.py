"""At most one live run per submission: every replay path goes through one service, which
refuses a second live run ("already replayed as #N"), and the database enforces it under races."""

from __future__ import annotations

import io
import threading

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from workflows.models import Status, Trigger, Workflow
from workflows.services import workflows_replay

pytestmark = pytest.mark.django_db


def _replays_of(workflow: Workflow) -> list[Workflow]:
    return list(Workflow.objects.filter(replay_of=workflow, trigger=Trigger.REPLAY))


def _failed(workflow_factory, **kw) -> Workflow:
    return workflow_factory(status=Status.FAILED, draft=False, **kw)


def test_dashboard_replay_twice_yields_one_run_and_says_where(operator_client, workflow_factory):
    failed = _failed(workflow_factory)
    url = reverse("dashboard:workflow_replay", args=[failed.pk])
    assert operator_client.post(url).status_code == 302
    (replay,) = _replays_of(failed)
    second = operator_client.post(url)
    assert second.status_code == 409
    assert f"already replayed as #{replay.pk}" in second.content.decode()
    assert len(_replays_of(failed)) == 1
    failed.refresh_from_db()
    assert failed.superseded_by_id == replay.pk
    page = operator_client.get(reverse("dashboard:workflow_detail", args=[failed.pk]))
    assert f'replayed as <a href="/dashboard/workflows/{replay.pk}/">#{replay.pk}</a>' in (
        page.content.decode()
    )


def test_replay_all_failed_twice_replays_each_row_once(operator_client, workflow_factory):
    rows = [_failed(workflow_factory, form_id="f-twice") for _ in range(3)]
    url = reverse("dashboard:replay_failed")
    data = {"confirm": "on", "form": "f-twice"}
    operator_client.post(url, data)
    operator_client.post(url, data)
    assert [len(_replays_of(w)) for w in rows] == [1, 1, 1]


def test_press_again_for_the_rest_reaches_every_row_exactly_once(
    operator_client, workflow_factory, monkeypatch
):
    from dashboard import views

    monkeypatch.setattr(views, "REPLAY_FAILED_MAX", 2)
    rows = [_failed(workflow_factory, form_id="f-paging") for _ in range(5)]
    url = reverse("dashboard:replay_failed")
    texts = []
    for _ in range(4):
        response = operator_client.post(url, {"confirm": "on", "form": "f-paging"}, follow=True)
        texts.append(" ".join(str(m) for m in response.context["messages"]))
    assert [len(_replays_of(w)) for w in rows] == [1] * 5
    assert "press again for the rest" in texts[0] and "press again" not in texts[2]


def test_admin_replay_twice_yields_one_run(operator_client, workflow_factory):
    failed = _failed(workflow_factory)
    changelist = reverse("admin:workflows_workflow_changelist")
    data = {"action": "replay_selected", ACTION_CHECKBOX_NAME: [failed.pk]}
    operator_client.post(changelist, data, follow=True)
    response = operator_client.post(changelist, data, follow=True)
    (replay,) = _replays_of(failed)
    text = " ".join(str(m) for m in response.context["messages"])
    # The dashboard's wording (workflows/messages.py), from one place.
    assert f"1 not replayed (#{failed.pk}: already replayed as #{replay.pk})" in text


def test_api_replay_twice_answers_409_the_second_time(operator, workflow_factory):
    failed = _failed(workflow_factory)
    api = APIClient()
    api.force_authenticate(operator)
    first = api.post(f"/api/workflows/{failed.pk}/replay/", {}, format="json")
    assert first.status_code == 201
    second = api.post(f"/api/workflows/{failed.pk}/replay/", {}, format="json")
    assert second.status_code == 409
    (new_id,) = first.json()["created"]
    assert second.json()["refused"] == [
        {"workflow_id": failed.pk, "reason": f"already replayed as #{new_id}"}
    ]
    assert len(_replays_of(failed)) == 1


def test_manage_py_replay_twice_yields_one_run(workflow_factory):
    failed = _failed(workflow_factory)
    call_command("replay", "--workflow", str(failed.pk), "--yes", stdout=io.StringIO())
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 not replayed") as refused:
        call_command("replay", "--workflow", str(failed.pk), "--yes", stdout=out)
    assert refused.value.returncode == 1  # a named workflow not replayed: exit 1
    (replay,) = _replays_of(failed)
    assert f"#{failed.pk} not replayed: already replayed as #{replay.pk}" in out.getvalue()


def test_replay_is_refused_while_the_original_awaits_approval(workflow_factory):
    waiting = workflow_factory(status=Status.AWAITING_APPROVAL)
    result = workflows_replay(workflow_ids=[waiting.pk])
    assert result.created == []
    assert "still “Awaiting approval” (awaiting_approval)" in result.refused[0].reason


def test_explicit_shadow_replay_is_allowed_and_does_not_supersede(workflow_factory):
    waiting = workflow_factory(status=Status.AWAITING_APPROVAL)
    result = workflows_replay(workflow_ids=[waiting.pk], shadow=True)
    assert result.shadow == result.created and len(result.created) == 1
    waiting.refresh_from_db()
    assert waiting.superseded_by_id is None


def test_the_database_refuses_a_second_live_run(workflow_factory):
    live = workflow_factory(status=Status.PENDING, draft=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        Workflow.objects.create(submission=live.submission, status=Status.RUNNING)
    Workflow.objects.create(submission=live.submission, status=Status.RUNNING, shadow=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the race needs PostgreSQL")
@pytest.mark.parametrize("same_original", [True, False])
def test_two_concurrent_replays_yield_one_run(workflow_factory, same_original):
    first = _failed(workflow_factory)
    # Two failed runs of one submission: replaying each is a different row, one submission.
    second = (
        first
        if same_original
        else Workflow.objects.create(submission=first.submission, status=Status.FAILED)
    )
    barrier = threading.Barrier(2)
    results = []

    def replay(pk: int) -> None:
        from django.db import connections

        try:
            barrier.wait()
            results.append(workflows_replay(workflow_ids=[pk], actor="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=replay, args=(w.pk,)) for w in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [pk for r in results for pk in r.created]
    refused = [x for r in results for x in r.refused]
    assert len(created) == 1 and len(refused) == 1
    assert f"#{created[0]}" in refused[0].reason
    assert Workflow.objects.filter(submission=first.submission, trigger=Trigger.REPLAY).count() == 1
