"""The dashboard in a real headless Chromium against a live server.

Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls from a
thread with a running loop; the test's own ORM calls are synchronous and safe, hence the flag.
"""

from __future__ import annotations

import datetime as dt
import json
import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import requests
from django.core.cache import cache
from playwright.sync_api import Page, expect

from dashboard.tests.conftest import BROWSER, make_workflow, mark_page, screenshot
from workflows.models import AuditEvent, Status, Workflow

pytestmark = BROWSER


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1


def seed_week() -> None:
    """A week of varied workflows, so the chart, tabs and medians have something to show."""
    statuses = [
        Status.COMPLETED,
        Status.SENT,
        Status.REJECTED,
        Status.FAILED,
        Status.COMPLETED,
        Status.AWAITING_APPROVAL,
    ]
    names = [("Linus", "Torvalds", "Transmeta"), ("Barbara", "Liskov", "CLU Labs")]
    for i in range(24):
        first, last, company = names[i % 2]
        w = make_workflow(
            status=statuses[i % len(statuses)],
            first_name=first,
            last_name=last,
            company=company,
            form_id="form-demo" if i % 3 else "form-pricing",
            age=dt.timedelta(hours=7 * i + 1),
            owner_id=f"owner-{i % 3 + 1}",
        )
        for to, minutes in (("awaiting_approval", 1 + i % 4), ("approved", 6 + 3 * (i % 5))):
            event = AuditEvent.objects.create(
                actor="system",
                action="workflow.transition",
                object_type="workflow",
                object_id=str(w.pk),
                workflow=w,
                to_status=to,
                from_status="running" if to == "awaiting_approval" else "awaiting_approval",
            )
            AuditEvent.objects.filter(pk=event.pk).update(
                created_at=w.created_at + dt.timedelta(minutes=minutes)
            )


def test_operator_filters_searches_opens_edits_and_approves(page, live_server):
    seed_week()
    grace = make_workflow(
        first_name="Grace",
        last_name="Hopper",
        company="Compiler Works",
        age=dt.timedelta(minutes=4),
    )
    make_workflow(first_name="Alan", last_name="Turing", company="Bletchley")
    cache.clear()  # the tab counts of the first load (before seeding) are cached for seconds
    page.reload()
    # The overview arrives after the list, over htmx: the chart and the medians.
    expect(page.locator("#overview svg rect.o-done").first).to_be_visible()
    expect(page.locator("#overview .kpi-label").first).to_contain_text("median time to draft")
    screenshot(page, "list")
    mark_page(page)  # tabs, search and filters swap the table in place

    page.click(".tabs a[data-status='awaiting_approval']")
    expect(page.locator(".tab.active")).to_contain_text("Awaiting approval")
    expect(page.locator("#workflow-table .badge.s-failed")).to_have_count(0)
    assert "status=awaiting_approval" in page.url  # hx-push-url: the URL reproduces the view

    page.fill("input[name=q]", "hopper")
    expect(page.locator("#workflow-table tbody tr")).to_have_count(1)
    expect(page.locator("#workflow-table tbody tr")).to_contain_text("Grace Hopper")
    assert "q=hopper" in page.url and "status=awaiting_approval" in page.url
    assert_not_reloaded(page)

    page.click(f"#workflow-table a[href='/dashboard/workflows/{grace.pk}/']")
    page.wait_for_url(f"**/dashboard/workflows/{grace.pk}/")
    expect(page.locator("#status-badge")).to_have_text("Awaiting approval")
    screenshot(page, "detail")

    mark_page(page)
    page.fill("input[name=subject]", "Compilers, at your service")
    page.fill("textarea[name=body]", "Hi Grace,\n\nHappy to walk you through pricing.\n\nSam")
    page.click("#approve-button")
    expect(page.locator("#status-badge")).to_have_text("Completed (not sent)")
    expect(page.locator(".notice.success")).to_contain_text("Approved")
    expect(page.locator(".diff")).to_contain_text("Compilers, at your service")
    assert_not_reloaded(page)
    screenshot(page, "detail-approved")
    grace.refresh_from_db()
    assert grace.status == Status.COMPLETED


def test_reject_with_a_reason_swaps_the_status_in_place(page, live_server):
    workflow = make_workflow(first_name="Ken", last_name="Thompson", company="Bell Labs")
    page.goto(f"{live_server.url}/dashboard/workflows/{workflow.pk}/")
    mark_page(page)
    page.fill("input[name=reason]", "Existing customer; account team follows up")
    page.click("#reject-form button")
    expect(page.locator("#status-badge")).to_have_text("Rejected")
    expect(page.locator("#draft")).to_contain_text("Existing customer")
    assert_not_reloaded(page)
    workflow.refresh_from_db()
    assert workflow.status == Status.REJECTED


def test_new_workflows_appear_through_auto_refresh(page, live_server, settings):
    make_workflow(first_name="Edsger", last_name="Dijkstra", company="THE")
    page.goto(f"{live_server.url}/dashboard/")
    mark_page(page)
    assert page.evaluate("pollingAllowed()") is True

    settings.HUBSPOT_CLIENT_SECRET = "browser-test-secret"
    response = _post_signed_webhook(live_server.url, "barbara.liskov@example.com")
    assert response.status_code == 202, response.text
    assert Workflow.objects.filter(submission__email="barbara.liskov@example.com").exists()

    expect(page.locator("#workflow-table")).to_contain_text(
        "barbara.liskov@example.com", timeout=8_000
    )
    assert_not_reloaded(page)

    # Selecting a row pauses polling, so the selection is not swapped away.
    page.check("#workflow-table input[data-select] >> nth=0")
    assert page.evaluate("pollingAllowed()") is False
    page.uncheck("#workflow-table input[data-select] >> nth=0")
    assert page.evaluate("pollingAllowed()") is True


def _post_signed_webhook(base_url: str, email: str) -> requests.Response:
    """A real signed Forms-style delivery through the intake webhook."""
    from intake.management.commands.send_test_webhook import build_payload
    from intake.signatures import signed_headers

    url = f"{base_url}/api/webhooks/hubspot/forms"
    body = json.dumps(
        build_payload(shape="forms", email=email, form_id="form-webhook", portal_id=62515)
    ).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(
        signed_headers(
            secret="browser-test-secret", version="v3", method="POST", uri=url, body=body
        )
    )
    return requests.post(url, data=body, headers=headers, timeout=10)


def test_bulk_approve_in_the_inbox(page, live_server, settings):
    settings.SPEED_TO_LEAD_TARGET_MINUTES = 15
    late = make_workflow(first_name="Margaret", last_name="Hamilton", age=dt.timedelta(minutes=42))
    fresh = make_workflow(first_name="Frances", last_name="Allen", age=dt.timedelta(minutes=3))
    keep = make_workflow(first_name="John", last_name="Backus", age=dt.timedelta(minutes=1))
    page.goto(f"{live_server.url}/dashboard/inbox/")
    expect(page.locator(".clock.overdue")).to_have_count(1)
    screenshot(page, "inbox")

    mark_page(page)
    page.check(f"#inbox-table input[data-select][value='{late.pk}']")
    page.check(f"#inbox-table input[data-select][value='{fresh.pk}']")
    page.click("#bulk-approve")
    expect(page.locator("#outcomes")).to_contain_text("Bulk approve: 2 drafts")
    expect(page.locator("#outcomes tr.won")).to_have_count(2)
    expect(page.locator("#inbox-table tbody tr")).to_have_count(1)
    assert_not_reloaded(page)
    screenshot(page, "inbox-after-bulk-approve")
    statuses = dict(Workflow.objects.values_list("pk", "status"))
    assert statuses[late.pk] == statuses[fresh.pk] == Status.COMPLETED
    assert statuses[keep.pk] == Status.AWAITING_APPROVAL


def test_mark_as_sent_needs_the_note_in_the_browser_and_then_records_sent(page, live_server):
    """The buttons submit the form (no hx-post of their own, which skipped the browser's
    check): an empty note stops "Mark as sent" before any request, and with a note the
    clicked button's choice reaches the server."""
    workflow = make_workflow(status=Status.SEND_UNKNOWN, first_name="Frances", last_name="Allen")
    page.goto(f"{live_server.url}/dashboard/workflows/{workflow.pk}/")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if "resolve-send" in r.url else None)
    page.click("#send-unknown button:has-text('Mark as sent')")
    page.wait_for_timeout(500)
    assert posts == []
    assert page.evaluate(
        "document.querySelector('#send-unknown input[name=note]').matches(':invalid')"
    )
    workflow.refresh_from_db()
    assert workflow.status == Status.SEND_UNKNOWN

    mark_page(page)
    page.fill("#send-unknown input[name=note]", "found in the ESP log, delivered 10:02")
    page.click("#send-unknown button:has-text('Mark as sent')")
    expect(page.locator("#status-badge")).to_have_text("Sent")
    assert_not_reloaded(page)
    assert len(posts) == 1
    workflow.refresh_from_db()
    assert workflow.status == Status.SENT
