"""Issue #14 threat model: lead text in the console is text, never markup."""

from __future__ import annotations

import pytest

from dashboard.tests.conftest import make_workflow

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert(1)</script><a href="https://evil.example/sso">Approve</a>'


@pytest.mark.parametrize("page", ["/dashboard/", "/dashboard/inbox/", "detail"])
def test_hostile_lead_text_renders_escaped_in_the_console(client, operator, page):
    client.force_login(operator)
    workflow = make_workflow(first_name=HOSTILE, company=HOSTILE, last_name="X")
    url = f"/dashboard/workflows/{workflow.pk}/" if page == "detail" else page
    html = client.get(url).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html and 'href="https://evil.example' not in html
