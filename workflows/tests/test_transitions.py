"""The state machine: one table, one function, races reported, audit rows written."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from intake.models import FormSubmission
from workflows.audit import event_for
from workflows.models import AuditEvent, Status, Workflow
from workflows.transitions import (
    TRANSITIONS,
    TransitionNotAllowed,
    last_transition_to,
    mermaid_diagram,
    transition,
    update_workflow,
)

REPO = Path(__file__).resolve().parents[2]


def make_workflow(status: str = Status.PENDING, key: str = "k") -> Workflow:
    submission = FormSubmission.objects.create(
        dedupe_key=f"test:{key}:{status}",
        shape="forms",
        signature_version="v3",
        raw_payload={},
        email="lead@example.com",
        received_at=timezone.now(),
    )
    return Workflow.objects.create(submission=submission, status=status)


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), list(TRANSITIONS))
def test_every_allowed_transition_succeeds_and_is_audited(from_status, to_status):
    workflow = make_workflow(from_status)
    result = transition(workflow.pk, from_status=from_status, to_status=to_status, reason="t")
    assert result.won and result.current_status == to_status
    workflow.refresh_from_db()
    assert workflow.status == to_status
    audit = AuditEvent.objects.get(workflow=workflow)
    assert (audit.from_status, audit.to_status, audit.actor, audit.reason) == (
        from_status,
        to_status,
        "system",
        "t",
    )


DISALLOWED = [(a, b) for a in Status.values for b in Status.values if (a, b) not in TRANSITIONS]


@pytest.mark.django_db
@pytest.mark.parametrize(("from_status", "to_status"), DISALLOWED)
def test_every_disallowed_transition_raises(from_status, to_status):
    workflow = make_workflow(from_status)
    with pytest.raises(TransitionNotAllowed, match=f"from '{from_status}' to '{to_status}'"):
        transition(workflow.pk, from_status=from_status, to_status=to_status)
    workflow.refresh_from_db()
    assert workflow.status == from_status
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_transition_from_a_stale_status_loses_and_writes_nothing():
    workflow = make_workflow(Status.AWAITING_APPROVAL)
    first = transition(workflow.pk, from_status="awaiting_approval", to_status="rejected")
    second = transition(workflow.pk, from_status="awaiting_approval", to_status="approved")
    assert first.won and not second.won
    assert second.current_status == Status.REJECTED
    assert AuditEvent.objects.filter(workflow=workflow).count() == 1
    assert last_transition_to(workflow.pk, Status.REJECTED).actor == "system"


@pytest.mark.django_db
def test_a_transitions_other_writes_go_with_it_only_when_it_wins():
    """``also`` and ``events`` (the hand-off's gate decision) are written in the move's own
    statement on PostgreSQL: never by a loser, never without the move."""
    workflow = make_workflow(Status.RUNNING)
    other = make_workflow(Status.RUNNING, key="other")

    def move(to_status: str, last_error: str):
        return transition(
            workflow.pk,
            from_status="running",
            to_status=to_status,
            also=[(Workflow.objects.filter(pk=other.pk), {"last_error": last_error})],
            events=[event_for(action="gate.decision", object_type="workflow", reason=last_error)],
        )

    assert move(Status.AWAITING_APPROVAL, "won").won
    assert not move(Status.FAILED, "lost").won
    other.refresh_from_db()
    assert other.last_error == "won"
    gate = AuditEvent.objects.filter(action="gate.decision")
    assert list(gate.values_list("reason", flat=True)) == ["won"]
    assert AuditEvent.objects.filter(action="workflow.transition").count() == 1


@pytest.mark.django_db
def test_a_fetching_transition_returns_the_row_as_a_query_reads_it():
    """A claim reads its workflow in the move's own statement: every field of it and of its
    submission (JSON, dates, keys) is what the ORM reads afterwards, and a loser gets none."""
    workflow = make_workflow(Status.PENDING)
    Workflow.objects.filter(pk=workflow.pk).update(
        step_log={"resolve_contact": {"attempts": 1}}, contact={"firstname": "Zoë"}
    )
    FormSubmission.objects.filter(pk=workflow.submission_id).update(
        raw_payload={"fields": [{"name": "email", "value": "a@b.test"}]}, email="a@b.test"
    )

    result = transition(
        workflow.pk, from_status="pending", to_status="running", fields={"claimed_by": "t"},
        fetch=True,
    )  # fmt: skip
    lost = transition(workflow.pk, from_status="pending", to_status="running", fetch=True)

    read = Workflow.objects.select_related("submission").get(pk=workflow.pk)
    fetched = result.workflow
    for model_field in Workflow._meta.concrete_fields:
        name = model_field.attname
        assert getattr(fetched, name) == getattr(read, name), name
    for model_field in FormSubmission._meta.concrete_fields:
        name = model_field.attname
        assert getattr(fetched.submission, name) == getattr(read.submission, name), name
    assert (fetched.status, fetched.claimed_by, fetched.contact) == ("running", "t", read.contact)
    assert not fetched._state.adding and lost.workflow is None and not lost.won


@pytest.mark.django_db
def test_update_workflow_writes_what_the_orms_update_writes_and_only_where_its_guards_hold():
    """The pipeline's step writes skip the ORM's compilation: the same values, prepared by the
    same fields (JSON, dates, text), land as the ORM's update would leave them; a guard that
    does not hold writes nothing."""
    ours, theirs = make_workflow(Status.RUNNING, "ours"), make_workflow(Status.RUNNING, "orm")
    lease = timezone.now()
    values = {
        "step_log": {"draft_email": {"attempts": 2, "note": 'Zoë\'s "draft" 100%'}},
        "contact": {"firstname": "Zoë", "tags": [1, None]},
        "contact_id": "701",
        "attempts": 2,
        "lease_expires_at": lease,
        "current_step": "draft_email",
    }
    assert update_workflow(ours.pk, values, status=Status.RUNNING, claimed_by="") == 1
    Workflow.objects.filter(pk=theirs.pk).update(**values)
    ours.refresh_from_db()
    theirs.refresh_from_db()
    for name in values:
        assert getattr(ours, name) == getattr(theirs, name) == values[name], name

    assert update_workflow(ours.pk, {"attempts": 9}, status=Status.RUNNING, claimed_by="x") == 0
    assert update_workflow(ours.pk, {"attempts": 9}, status=Status.FAILED) == 0
    with pytest.raises(ValueError, match="None matches nothing"):
        update_workflow(ours.pk, {"attempts": 9}, claimed_by=None)
    ours.refresh_from_db()
    assert ours.attempts == 2


@pytest.mark.django_db
def test_a_transition_setting_an_expression_is_compiled_by_the_orm():
    """Only plain values take the cached statement; an expression still works."""
    workflow = make_workflow(Status.PENDING)
    Workflow.objects.filter(pk=workflow.pk).update(attempts=3)
    result = transition(
        workflow.pk, from_status="pending", to_status="running",
        fields={"attempts": F("attempts") + 1},
    )  # fmt: skip
    workflow.refresh_from_db()
    assert result.won and workflow.attempts == 4 and workflow.status == "running"


@pytest.mark.django_db
def test_running_sets_started_at_and_terminal_sets_completed_at():
    workflow = make_workflow(Status.PENDING)
    transition(workflow.pk, from_status="pending", to_status="running")
    transition(workflow.pk, from_status="running", to_status="failed", fields={"last_error": "x"})
    workflow.refresh_from_db()
    assert workflow.started_at and workflow.completed_at and workflow.last_error == "x"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the race needs PostgreSQL")
def test_second_approval_loses_the_race_on_postgresql():
    workflow = make_workflow(Status.AWAITING_APPROVAL, key="race")
    barrier = threading.Barrier(2)
    results = []

    def approve():
        from django.db import connections

        try:
            barrier.wait()
            results.append(
                transition(workflow.pk, from_status="awaiting_approval", to_status="approved")
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.won for r in results) == [False, True]
    assert AuditEvent.objects.filter(workflow_id=workflow.pk).count() == 1
    assert Workflow.objects.get(pk=workflow.pk).status == Status.APPROVED


def test_readme_state_diagram_matches_the_transition_table():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```mermaid\n(stateDiagram-v2.*?)```", readme, re.S)
    assert block, "README.md must embed the mermaid state diagram"
    pairs = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", block.group(1), re.M))
    assert pairs == {(str(a), str(b)) for a, b in TRANSITIONS}
    assert block.group(1).strip() == mermaid_diagram().strip()
