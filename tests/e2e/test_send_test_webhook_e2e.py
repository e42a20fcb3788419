"""send_test_webhook's every shape, against the live server, a real worker and the sandbox:
each delivery is accepted and its lead reaches awaiting_approval (no 404 from the CRM)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.e2e.test_pipeline_e2e import settled
from tests.harness import wait_for
from workflows.models import Status, Workflow

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("shape", "batch_size", "leads"),
    [("forms", 1, 1), ("workflow", 1, 1), ("events", 3, 3), ("mixed", 1, 1)],
)
def test_each_shape_succeeds_against_the_sandbox(e2e, live_server, shape, batch_size, leads):
    out = io.StringIO()
    call_command(
        "send_test_webhook",
        url=f"{live_server.url}/api/webhooks/hubspot/forms",
        shape=shape,
        batch_size=batch_size,
        stdout=out,
    )

    assert out.getvalue().startswith("20"), out.getvalue()
    ids = list(Workflow.objects.values_list("pk", flat=True))
    assert len(ids) == leads
    done = [wait_for(lambda pk=pk: settled(pk), timeout=45) for pk in ids]
    assert {w.status for w in done} == {Status.AWAITING_APPROVAL}
    seeded = {c["id"] for c in e2e.sandbox.snapshot()["contacts"]}
    # Only contact ids the sandbox knows were ever asked for: no deal or company id.
    assert {r.path.rsplit("/", 1)[1] for r in e2e.requests("contacts.get")} <= seeded
    assert len(e2e.requests("tasks.create")) == leads
