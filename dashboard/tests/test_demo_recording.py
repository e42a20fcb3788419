"""``make demo-recording``: docs/demo.md's dashboard part (step 4), played in a real Chromium
and recorded as a video with Playwright's ``record_video`` into var/demo-recording/.

Skipped unless ``LEADLINE_DEMO_RECORDING`` names the output directory (the Make target sets
it): the recording is made on demand and never committed. It is still a test: each step is
asserted, so a recording of a broken console fails instead of being saved.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from dashboard.tests.conftest import CHROMIUM, make_workflow
from workflows.models import Status, Workflow

OUTPUT = os.environ.get("LEADLINE_DEMO_RECORDING", "")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not OUTPUT, reason="set LEADLINE_DEMO_RECORDING (make demo-recording)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]
SIZE = {"width": 1280, "height": 800}


def _webhook(base_url: str, email: str) -> None:
    from intake.management.commands.send_test_webhook import build_payload
    from intake.signatures import signed_headers

    url = f"{base_url}/api/webhooks/hubspot/forms"
    body = json.dumps(
        build_payload(shape="forms", email=email, form_id="form-demo", portal_id=62515)
    ).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(
        signed_headers(secret="demo-secret", version="v3", method="POST", uri=url, body=body)
    )
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202


def test_record_the_dashboard_demo(live_server, operator, settings):
    settings.HUBSPOT_CLIENT_SECRET = "demo-secret"
    for i, status in enumerate([Status.COMPLETED, Status.SENT, Status.REJECTED, Status.FAILED]):
        make_workflow(status=status, first_name=f"Earlier{i}", age=dt.timedelta(hours=5 * i + 2))
    grace = make_workflow(first_name="Grace", last_name="Hopper", company="Compiler Works",
                          age=dt.timedelta(minutes=22))  # fmt: skip
    for name in ("Ada", "Alan", "Barbara"):
        make_workflow(first_name=name, last_name="Demo", age=dt.timedelta(minutes=9))
    out = Path(OUTPUT)
    raw = out / "raw"
    shutil.rmtree(raw, ignore_errors=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
            slow_mo=250,  # a pace a viewer can follow
        )
        context = browser.new_context(
            viewport=SIZE, record_video_dir=str(raw), record_video_size=SIZE
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())

        # Log in; the workflow list with its overview.
        page.goto(f"{live_server.url}/admin/login/?next=/dashboard/")
        page.fill("#id_username", "olivia")
        page.fill("#id_password", "pw-olivia-123")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url("**/dashboard/")
        expect(page.locator("#overview svg")).to_be_visible()
        page.wait_for_timeout(1500)

        # Filter by status; a new lead arrives and the list, tabs and chart refresh.
        page.click(".tabs a[data-status='awaiting_approval']")
        expect(page.locator(".tab.active")).to_contain_text("Awaiting approval")
        page.wait_for_timeout(1000)
        page.click(".tabs a[data-status='']")  # no worker here: the new lead stays pending
        expect(page.locator(".tab.active")).to_contain_text("All")
        _webhook(live_server.url, "katherine.johnson@example.com")
        expect(page.locator("#workflow-table")).to_contain_text(
            "katherine.johnson@example.com", timeout=10_000
        )
        page.wait_for_timeout(1000)

        # A workflow: timeline, draft, the gate's reason; edit and approve.
        page.click(f"#workflow-table a[href='/dashboard/workflows/{grace.pk}/'] >> nth=0")
        page.wait_for_url(f"**/dashboard/workflows/{grace.pk}/")
        page.wait_for_timeout(1500)
        page.fill("input[name=subject]", "Compilers, at your service")
        page.click("#approve-button")
        expect(page.locator("#status-badge")).to_have_text("Completed (not sent)")
        page.wait_for_timeout(2000)

        # The inbox: triage with the keyboard.
        page.goto(f"{live_server.url}/dashboard/inbox/")
        page.keyboard.press("?")
        page.wait_for_timeout(1500)
        page.keyboard.press("Escape")
        page.keyboard.press("j")
        page.keyboard.press("a")
        page.keyboard.press("r")
        page.keyboard.type("Already a customer", delay=60)
        page.keyboard.press("Enter")
        expect(page.locator("#inbox-table tr[data-done]")).to_have_count(2)
        page.wait_for_timeout(2000)

        video = page.video
        context.close()
        browser.close()
        target = out / "dashboard-demo.webm"
        shutil.move(video.path(), target)
        shutil.rmtree(raw, ignore_errors=True)

    assert target.stat().st_size > 10_000
    assert Workflow.objects.filter(status=Status.REJECTED).count() == 2
    print(f"\nRecorded {target} ({target.stat().st_size // 1024} KiB)")
