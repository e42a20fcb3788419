from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from django.db import connections
from django.utils import timezone

from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows.models import Status, Workflow

_keys = itertools.count()


@pytest.fixture(autouse=True)
def eager_celery(settings):
    """Run tasks in-process so tests never depend on a worker (or leave messages in Redis).

    Celery reads the CELERY_ settings lazily, so overriding the Django setting is enough.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    # Autouse fixtures run first, so the `operator` fixture's user is created with this.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def send_mode(settings):
    """Production send mode for sales@company.com (approval required unless auto_send)."""

    def apply(*, auto_send: bool = False, allowlist: tuple[str, ...] = ("sales@company.com",)):
        settings.API_ENV = "production"
        settings.MODE_DRAFT_ONLY = False
        settings.ALLOW_AUTO_SEND = auto_send
        settings.SEND_EMAIL_ALLOWLIST = list(allowlist)

    apply()
    return apply


def make_submission(**fields) -> FormSubmission:
    defaults = {
        "dedupe_key": f"test-{next(_keys)}-{timezone.now().timestamp()}",
        "shape": "forms",
        "signature_version": "v3",
        "raw_payload": {},
        "received_at": timezone.now(),
        "email": "sales@company.com",
        "first_name": "Sam",
        "company": "Company Ltd",
        "message": "We need help routing inbound leads to the right rep.",
    }
    return FormSubmission.objects.create(**{**defaults, **fields})


def make_workflow(status: str = Status.RUNNING, *, contact=None, shadow=False, **sub) -> Workflow:
    return Workflow.objects.create(
        submission=make_submission(**sub), status=status, contact=contact or {}, shadow=shadow
    )


@pytest.fixture
def waiting_workflow():
    """A workflow whose draft waits for approval (drafted in draft-only mode)."""
    from outreach.services import draft_create

    workflow = make_workflow(Status.AWAITING_APPROVAL)
    draft_create(workflow_id=workflow.pk)
    return workflow


def draft_of(workflow: Workflow) -> EmailDraft:
    return EmailDraft.objects.get(workflow=workflow)


def status_of(workflow: Workflow) -> str:
    return Workflow.objects.values_list("status", flat=True).get(pk=workflow.pk)


def run_concurrently(*calls: Callable[[], object]) -> list[object]:
    """Start the calls together on their own threads (own DB connections); results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results
