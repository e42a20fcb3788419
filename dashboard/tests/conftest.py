"""Row builders and the browser for the dashboard tests.

The webhook and the worker own how these rows come to exist; the dashboard only reads them, so
the tests create the rows in the state a page needs (outreach's services still do the deciding).
The browser tests share one launch of Debian's Chromium and one login (``browser``, ``page``,
``login``); mark a module with ``pytestmark = BROWSER``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect, sync_playwright

from intake.models import FormSubmission
from outreach.models import EmailDraft
from workflows.models import Status, Workflow

_seq = itertools.count(1)


def make_workflow(
    *,
    status: str = Status.AWAITING_APPROVAL,
    email: str | None = None,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    company: str = "Analytical Engines",
    form_id: str = "form-contact",
    portal_id: int | None = 62515,
    age: dt.timedelta = dt.timedelta(minutes=3),
    draft: bool = True,
    **workflow_fields,
) -> Workflow:
    n = next(_seq)
    created = timezone.now() - age
    submission = FormSubmission.objects.create(
        dedupe_key=f"test-{uuid.uuid4().hex}",
        shape="forms",
        signature_version="v3",
        raw_payload={"fields": [{"name": "email", "value": email or f"lead{n}@example.com"}]},
        email=email if email is not None else f"lead{n}@example.com",
        first_name=first_name,
        last_name=last_name,
        company=company,
        form_id=form_id,
        portal_id=portal_id,
        received_at=created,
        submitted_at=created,
    )
    workflow = Workflow.objects.create(submission=submission, status=status, **workflow_fields)
    Workflow.objects.filter(pk=workflow.pk).update(created_at=created)
    workflow.created_at = created
    if draft:
        EmailDraft.objects.create(
            workflow=workflow,
            recipient=submission.email,
            subject=f"Thanks for reaching out, {first_name}",
            body=f"Hi {first_name},\n\nThanks for your message.\n\nBest,\nSam",
            original_subject=f"Thanks for reaching out, {first_name}",
            original_body=f"Hi {first_name},\n\nThanks for your message.\n\nBest,\nSam",
            template="default",
            gate_action="hold",
            gate_reason="draft-only mode: a human approves, the rep sends",
            idempotency_key=f"wf{workflow.pk}-{uuid.uuid4().hex}",
        )
    return workflow


def make_many(specs: list[dict]) -> list[Workflow]:
    """Many rows in five queries (bulk inserts and one UPDATE for the ages)."""
    from django.db.models import Case, Value, When

    now = timezone.now()
    subs = FormSubmission.objects.bulk_create(
        [
            FormSubmission(
                dedupe_key=f"test-{uuid.uuid4().hex}",
                shape="forms",
                signature_version="v3",
                raw_payload={},
                email=f"lead{next(_seq)}@example.com",
                first_name=spec.get("first_name", "Ada"),
                last_name="Lovelace",
                company=spec.get("company", "Analytical Engines"),
                form_id=spec.get("form_id", "form-contact"),
                portal_id=62515,
                received_at=now - spec["age"],
            )
            for spec in specs
        ]
    )
    workflows = Workflow.objects.bulk_create(
        [
            Workflow(submission=sub, status=spec["status"])
            for sub, spec in zip(subs, specs, strict=True)
        ]
    )
    when = {w.pk: now - spec["age"] for w, spec in zip(workflows, specs, strict=True)}
    Workflow.objects.filter(pk__in=when).update(
        created_at=Case(*[When(pk=pk, then=Value(ts)) for pk, ts in when.items()])
    )
    EmailDraft.objects.bulk_create(
        [
            EmailDraft(
                workflow=w,
                recipient=w.submission.email,
                subject="Hello",
                body="Hi",
                original_subject="Hello",
                original_body="Hi",
                template="default",
                idempotency_key=f"wf{w.pk}-{uuid.uuid4().hex}",
            )
            for w in workflows
        ]
    )
    for w in workflows:
        w.created_at = when[w.pk]
    return workflows


@pytest.fixture
def workflow_factory(db) -> Callable[..., Workflow]:
    return make_workflow


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher takes ~0.5 s per user; these tests create dozens of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Tab counts and form choices are cached for seconds; tests must not see each other's.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def viewer(django_user_model):
    """A staff user in the Viewers group (may look, may not decide)."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(
        username="victor", password="pw-victor-123", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Viewers"))
    return user


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


# --- The browser tests ------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BROWSER = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]
SCREENSHOTS = os.environ.get("LEADLINE_SCREENSHOTS", "")
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Assertions wait as long as actions do (10 s, not Playwright's 5 s): on a loaded 2-CPU CI
    # machine one htmx round trip of the keyboard triage once took longer than 5 s.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def login(browser: Browser, live_server, viewport: dict | None = None) -> Page:
    """A new context logged in as the ``operator`` fixture's user, on the dashboard."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    page.goto(f"{live_server.url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", "pw-olivia-123")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/dashboard/")
    return page


@pytest.fixture
def page(browser, live_server, operator) -> Iterator[Page]:
    page = login(browser, live_server)
    yield page
    page.context.close()


def screenshot(page: Page, name: str) -> None:
    """Write ``name``.png under LEADLINE_SCREENSHOTS (``make screenshots``); else nothing."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def mark_page(page: Page) -> None:
    """A marker that survives htmx swaps but not a navigation or reload."""
    page.evaluate("window.__marker = 1")
