"""Issue #14 in a real headless Chromium: the API docs render from the app's own static files
with every other host unreachable, and the dashboard's htmx works under the CSP."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, expect

from dashboard.tests.conftest import BROWSER, make_workflow, mark_page
from dashboard.tests.test_browser import assert_not_reloaded
from workflows.models import Status

pytestmark = BROWSER

#: Records every Content-Security-Policy violation the page reports (runs before any script).
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


def offline_except_loopback(target: Page) -> list[str]:
    """Abort every request to a host other than 127.0.0.1; returns the aborted URLs."""
    blocked: list[str] = []

    def route(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    target.route("**/*", route)
    return blocked


def test_api_docs_list_the_operations_with_external_network_blocked(
    browser,
    live_server,
    operator,
):
    base = live_server.url.replace("localhost", "127.0.0.1")
    context = browser.new_context()
    tab = context.new_page()
    blocked = offline_except_loopback(tab)
    tab.add_init_script(WATCH_CSP)
    tab.goto(f"{base}/admin/login/?next=/api/docs/")
    tab.fill("#id_username", "olivia")
    tab.fill("#id_password", "pw-olivia-123")
    with tab.expect_navigation():
        tab.click("input[type=submit]")
    response = tab.goto(f"{base}/api/docs/")

    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(tab.locator(".opblock").first).to_be_visible(timeout=15_000)
    paths = tab.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.startswith("/api/workflows/") for p in paths), paths
    assert "/api/stats/" in {p.strip() for p in paths}
    assert tab.locator(".opblock").count() >= 8
    assert blocked == []  # nothing even tried to leave the machine
    assert tab.evaluate("window.__csp") == []
    context.close()


def test_api_docs_are_not_served_to_anonymous_browsers(browser, live_server):
    context = browser.new_context()
    response = context.new_page().goto(f"{live_server.url}/api/docs/")
    assert response.status in (302, 401, 403)
    context.close()


def test_dashboard_htmx_works_under_the_csp_and_polling_pauses_without_eval(
    page,
    live_server,
):
    page.add_init_script(WATCH_CSP)
    workflow = make_workflow(first_name="Ken", last_name="Thompson", company="Bell Labs")
    response = page.goto(f"{live_server.url}/dashboard/workflows/{workflow.pk}/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    # htmx injected no <style> (includeIndicatorStyles=false) and runs without eval
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("htmx.config.allowEval") is False

    # an htmx action: reject with a reason swaps the status in place
    mark_page(page)
    page.fill("input[name=reason]", "Existing customer; account team follows up")
    page.click("#reject-form button")
    expect(page.locator("#status-badge")).to_have_text("Rejected")
    assert_not_reloaded(page)
    workflow.refresh_from_db()
    assert workflow.status == Status.REJECTED

    # polling: a refresh while a row is selected is cancelled in dashboard.js, not by eval
    make_workflow(first_name="Dennis", last_name="Ritchie", company="Bell Labs")
    page.goto(f"{live_server.url}/dashboard/")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/dashboard/" in r.url else None)
    page.check("#workflow-table input[data-select] >> nth=0")
    page.evaluate("htmx.trigger('#workflow-table', 'refresh')")
    page.wait_for_timeout(500)
    assert polls == []
    page.uncheck("#workflow-table input[data-select] >> nth=0")
    with page.expect_request(lambda r: "/dashboard/" in r.url):
        page.evaluate("htmx.trigger('#workflow-table', 'refresh')")
    assert page.evaluate("window.__csp") == []


def test_the_admin_approval_page_wraps_each_draft_line_with_no_csp_violation(
    page, live_server, operator
):
    """The admin's "Approve selected drafts" confirmation shows every draft line whole: the
    body's wrapping comes from a stylesheet class, since the CSP blocks an inline style."""
    from django.contrib.auth.models import Permission

    from outreach.models import EmailDraft

    # The migration's Operators group may view workflows; a flushed database (an earlier
    # transactional test) has only the fixture's group, without that permission.
    operator.user_permissions.add(Permission.objects.get(codename="view_workflow"))

    workflow = make_workflow(first_name="Barbara", last_name="Liskov", company="CLU")
    line = "We would love to show you how the substitution principle applies here. " * 12
    EmailDraft.objects.filter(workflow=workflow).update(body=f"Hi Barbara,\n\n{line}\n\nSam")
    page.set_viewport_size({"width": 1024, "height": 800})
    page.add_init_script(WATCH_CSP)
    page.goto(f"{live_server.url}/admin/workflows/workflow/")
    page.check(f"input[name=_selected_action][value='{workflow.pk}']")
    page.select_option("select[name=action]", "approve_selected")
    with page.expect_navigation():
        page.click("button[name=index]")

    body = page.locator("fieldset pre").first
    expect(body).to_contain_text("substitution principle")
    box = body.bounding_box()
    wraps = body.evaluate(
        "e => [getComputedStyle(e).whiteSpace, e.scrollWidth <= e.clientWidth,"
        " document.documentElement.scrollWidth <= window.innerWidth]"
    )
    assert wraps == ["pre-wrap", True, True]
    assert box["x"] + box["width"] <= 1024 and box["height"] > 60  # many lines, none cut
    assert page.evaluate("window.__csp") == []
