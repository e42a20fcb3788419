"""Every dashboard view needs a login and a staff account; actions need their permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import URLPattern, reverse

from dashboard import urls as dashboard_urls
from workflows.models import Status, Workflow

pytestmark = pytest.mark.django_db


def _dashboard_urls() -> list[str]:
    found = []
    for pattern in dashboard_urls.urlpatterns:
        assert isinstance(pattern, URLPattern), "nested includes: extend this walk"
        kwargs = {name: 1 for name in pattern.pattern.converters}
        found.append(reverse(f"dashboard:{pattern.name}", kwargs=kwargs))
    return found


def test_the_walk_covers_every_view():
    assert len(_dashboard_urls()) == len(dashboard_urls.urlpatterns) >= 10


@pytest.mark.parametrize("url", _dashboard_urls())
def test_anonymous_visitors_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("url", _dashboard_urls())
def test_non_staff_accounts_are_refused(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("nina"))
    response = client.get(url)
    assert response.status_code == 403
    assert b"staff accounts only" in response.content


def test_a_non_staff_account_is_offered_another_account_not_a_link_back_into_the_refusal(
    client, django_user_model
):
    client.force_login(django_user_model.objects.create_user("nina", password="pw-nina-123"))
    response = client.get("/dashboard/")
    assert response.status_code == 403
    html = response.content.decode()
    # No link leads back into the dashboard (each answered this account the same 403).
    assert 'href="/dashboard/' not in html and "Back to the workflows" not in html
    assert "nina" in html and "not a staff account" in html
    assert 'href="/login/?next=/dashboard/"' in html  # log in as another account
    logged_out = client.post("/logout/", {"next": "/login/?next=/dashboard/"})
    assert logged_out.status_code == 302 and logged_out["Location"] == "/login/?next=/dashboard/"
    assert client.get("/dashboard/").status_code == 302  # logged out: on to the login page
    assert '<form method="post" action="/logout/">' in html


@pytest.mark.parametrize("url", _dashboard_urls())
def test_non_staff_posts_are_refused(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("nina"))
    assert client.post(url).status_code == 403


def test_migration_creates_operator_and_viewer_groups():
    operators = set(
        Group.objects.get(name="Operators").permissions.values_list("codename", flat=True)
    )
    viewers = set(Group.objects.get(name="Viewers").permissions.values_list("codename", flat=True))
    assert {"approve_workflow", "reject_workflow", "replay_workflow", "view_workflow"} <= operators
    assert {"view_workflow", "view_formsubmission", "view_emaildraft"} <= viewers
    assert not viewers & {"approve_workflow", "reject_workflow", "replay_workflow"}
    assert Permission.objects.filter(codename="approve_workflow").count() == 1


def test_a_viewer_may_look_but_not_approve(viewer_client, workflow_factory):
    workflow = workflow_factory()
    detail = reverse("dashboard:workflow_detail", args=[workflow.pk])
    assert viewer_client.get(detail).status_code == 200
    response = viewer_client.post(
        reverse("dashboard:workflow_approve", args=[workflow.pk]),
        {"version": 1},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 403
    assert b"Not allowed" in response.content
    assert response["HX-Retarget"] == "#flash"
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_a_viewer_may_not_reject_or_replay(viewer_client, workflow_factory):
    workflow = workflow_factory()
    reject = reverse("dashboard:workflow_reject", args=[workflow.pk])
    replay = reverse("dashboard:workflow_replay", args=[workflow.pk])
    assert viewer_client.post(reject, {"reason": "spam", "version": 1}).status_code == 403
    assert viewer_client.post(replay).status_code == 403
    assert Workflow.objects.count() == 1


def test_a_viewer_may_not_bulk_approve(viewer_client, workflow_factory):
    workflow = workflow_factory()
    response = viewer_client.post(
        reverse("dashboard:inbox_bulk"),
        {"ids": [workflow.pk], "action": "approve", "confirm": "on", f"version_{workflow.pk}": 1},
    )
    assert response.status_code == 403
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_a_post_without_csrf_token_is_refused(operator, workflow_factory):
    workflow = workflow_factory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(reverse("dashboard:workflow_approve", args=[workflow.pk]))
    assert response.status_code == 403
    workflow.refresh_from_db()
    assert workflow.status == Status.AWAITING_APPROVAL


def test_a_post_with_the_csrf_header_htmx_sends_is_accepted(operator, workflow_factory):
    workflow = workflow_factory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    page = client.get(reverse("dashboard:workflow_detail", args=[workflow.pk]))
    token = page.context["csrf_token"]
    response = client.post(
        reverse("dashboard:workflow_approve", args=[workflow.pk]),
        {"version": 1},
        HTTP_HX_REQUEST="true",
        HTTP_X_CSRFTOKEN=str(token),
    )
    assert response.status_code == 200
    workflow.refresh_from_db()
    assert workflow.status == Status.COMPLETED
