"""A retry's log line and its JSON fields name the same attempt (issue #15: the text said
"attempt 2" while the field said "attempt": 1)."""

from __future__ import annotations

import logging
import re

import pytest

from workflows.models import WorkflowError
from workflows.tests.test_pipeline import crm, new_workflow, run_until_done  # noqa: F401


@pytest.mark.django_db
def test_the_retry_message_and_its_attempt_field_agree(crm, settings, caplog):  # noqa: F811
    crm.add_fault("owners.get", {"kind": "timeout", "seconds": 1.5, "times": 1})
    crm.seed_contact(email="lead@acme.test", id="777", hubspot_owner_id="1001")
    settings.HUBSPOT_TIMEOUT_SECONDS = 0.5
    workflow = new_workflow()

    with caplog.at_level(logging.WARNING, logger="leadline.workflows"):
        run_until_done(workflow.pk)

    [record] = [r for r in caplog.records if r.getMessage().startswith("Retrying workflow")]
    said = int(re.search(r"after attempt (\d+)", record.getMessage()).group(1))
    assert said == record.attempt == 1
    assert WorkflowError.objects.get(workflow=workflow).attempt == record.attempt
