"""Approve what you read: a decision names the draft version the operator saw, and one made on
an older version is refused with 409 ("edited by X at T since you loaded it; review again") on
the detail page, the inbox (per row), the admin and the API."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from rest_framework.test import APIClient

from outreach.models import EmailDraft
from outreach.services import draft_edit
from workflows.models import Status

pytestmark = pytest.mark.django_db

STALE = "since you loaded it"


@pytest.fixture
def edited(workflow_factory, django_user_model, operator):
    """A waiting draft that a second operator edited after the first loaded version 1."""
    from django.contrib.auth.models import Group

    bruno = django_user_model.objects.create_user(username="bruno", is_staff=True)
    bruno.groups.add(Group.objects.get(name="Operators"))
    workflow = workflow_factory()
    draft_edit(workflow_id=workflow.pk, user=bruno, subject="Changed", body="Changed body")
    assert EmailDraft.objects.get(workflow=workflow).version == 2
    return workflow


def _still_waiting(workflow) -> bool:
    workflow.refresh_from_db()
    return workflow.status == Status.AWAITING_APPROVAL


def test_the_detail_page_approve_on_a_stale_version_is_409(operator_client, edited):
    url = reverse("dashboard:workflow_approve", args=[edited.pk])
    response = operator_client.post(url, {"version": 1}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    text = response.content.decode()
    assert "Edited by bruno at" in text and STALE in text and "review again" in text
    assert _still_waiting(edited)


def test_the_detail_page_approve_does_not_overwrite_a_concurrent_edit(operator_client, edited):
    url = reverse("dashboard:workflow_approve", args=[edited.pk])
    response = operator_client.post(url, {"version": 1, "subject": "Mine", "body": "Mine"})
    assert response.status_code == 409
    assert EmailDraft.objects.get(workflow=edited).subject == "Changed"


def test_the_detail_page_reject_and_edit_on_a_stale_version_are_409(operator_client, edited):
    reject = reverse("dashboard:workflow_reject", args=[edited.pk])
    edit = reverse("dashboard:draft_edit", args=[edited.pk])
    assert operator_client.post(reject, {"reason": "spam", "version": 1}).status_code == 409
    response = operator_client.post(edit, {"subject": "x", "body": "y", "version": 1})
    assert response.status_code == 409
    assert _still_waiting(edited)


def test_the_current_version_is_accepted(operator_client, edited):
    url = reverse("dashboard:workflow_approve", args=[edited.pk])
    assert operator_client.post(url, {"version": 2}).status_code == 302
    assert not _still_waiting(edited)


def test_the_detail_page_carries_the_version_it_shows(operator_client, edited):
    html = operator_client.get(reverse("dashboard:workflow_detail", args=[edited.pk])).content
    assert b'name="version" value="2"' in html


def test_a_decision_without_a_version_is_400(operator_client, edited):
    url = reverse("dashboard:workflow_approve", args=[edited.pk])
    assert operator_client.post(url).status_code == 400
    assert _still_waiting(edited)


def test_inbox_bulk_approve_refuses_the_stale_row_and_approves_the_rest(
    operator_client, edited, workflow_factory
):
    fresh = workflow_factory()
    inbox = operator_client.get(reverse("dashboard:inbox")).content.decode()
    assert f'name="version_{edited.pk}" value="2"' in inbox
    response = operator_client.post(
        reverse("dashboard:inbox_bulk"),
        {
            "ids": [edited.pk, fresh.pk],
            "action": "approve",
            "confirm": "on",
            f"version_{edited.pk}": 1,
            f"version_{fresh.pk}": 1,
        },
    )
    outcomes = {o["id"]: o for o in response.context["outcomes"]}
    assert not outcomes[edited.pk]["ok"] and STALE in outcomes[edited.pk]["message"]
    assert outcomes[fresh.pk]["ok"]
    assert _still_waiting(edited)


def test_admin_approve_refuses_a_draft_edited_after_the_confirmation_page(
    operator_client, workflow_factory, django_user_model
):
    from django.contrib.auth.models import Group

    workflow = workflow_factory()
    changelist = reverse("admin:workflows_workflow_changelist")
    data = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [workflow.pk]}
    page = operator_client.post(changelist, data).content.decode()
    assert f'name="version_{workflow.pk}" value="1"' in page
    bruno = django_user_model.objects.create_user(username="bruno", is_staff=True)
    bruno.groups.add(Group.objects.get(name="Operators"))
    draft_edit(workflow_id=workflow.pk, user=bruno, subject="Changed", body="Changed")
    response = operator_client.post(
        changelist, {**data, "apply": "yes", f"version_{workflow.pk}": 1}, follow=True
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert f"#{workflow.pk}: Edited by bruno" in text and STALE in text
    assert _still_waiting(workflow)


def test_api_approve_and_reject_on_a_stale_version_are_409(operator, edited):
    api = APIClient()
    api.force_authenticate(operator)
    base = f"/api/workflows/{edited.pk}"
    assert api.get(f"{base}/").json()["draft"]["version"] == 2
    response = api.post(f"{base}/approve/", {"version": 1}, format="json")
    assert response.status_code == 409
    assert STALE in response.json()["message"]
    rejected = api.post(f"{base}/reject/", {"version": 1, "reason": "x"}, format="json")
    assert rejected.status_code == 409
    assert api.post(f"{base}/approve/", {}, format="json").status_code == 400
    assert _still_waiting(edited)


def test_a_subject_over_300_characters_is_400_not_500(operator_client, operator, workflow_factory):
    workflow = workflow_factory()
    url = reverse("dashboard:workflow_approve", args=[workflow.pk])
    response = operator_client.post(url, {"version": 1, "subject": "s" * 301, "body": "b"})
    assert response.status_code == 400
    api = APIClient()
    api.force_authenticate(operator)
    response = api.post(
        f"/api/workflows/{workflow.pk}/approve/",
        {"version": 1, "subject": "s" * 301},
        format="json",
    )
    assert response.status_code == 400
    assert _still_waiting(workflow)
