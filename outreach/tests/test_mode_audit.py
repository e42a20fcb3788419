from __future__ import annotations

import pytest

from outreach.gate import SendMode
from outreach.services import record_mode_change_if_needed
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db

DRAFT_ONLY = SendMode("development", draft_only=True, auto_send=False, allowlist=())
SENDING = SendMode("production", draft_only=False, auto_send=False, allowlist=("a@b.com",))


def mode_rows():
    return AuditEvent.objects.filter(action="send_mode.changed").order_by("id")


def test_the_same_mode_is_recorded_once():
    assert record_mode_change_if_needed(DRAFT_ONLY) is True
    assert record_mode_change_if_needed(DRAFT_ONLY) is False

    assert mode_rows().count() == 1


def test_a_changed_mode_writes_another_row_with_the_allowlist():
    record_mode_change_if_needed(DRAFT_ONLY)

    assert record_mode_change_if_needed(SENDING) is True

    latest = mode_rows().last()
    assert latest.details["mode"]["allowlist"] == ["a@b.com"]
    assert latest.details["previous"]["draft_only"] is True
    assert mode_rows().count() == 2


def test_the_allowlist_order_is_not_a_change():
    record_mode_change_if_needed(SendMode("production", False, False, ("a@b.com", "@c.com")))

    assert not record_mode_change_if_needed(
        SendMode("production", False, False, ("@c.com", "a@b.com"))
    )


def test_settings_are_the_default_mode(settings):
    settings.ALLOW_AUTO_SEND = True

    record_mode_change_if_needed()

    assert mode_rows().get().details["mode"]["auto_send"] is True
