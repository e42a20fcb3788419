"""Project-wide pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def sandbox() -> Iterator:
    """A fresh HubSpot sandbox on a free port; its Bearer token is `sandbox.token`."""
    from workflows.hubspot.sandbox import SandboxServer

    server = SandboxServer(token="sandbox-token").start()
    yield server
    server.stop()


@pytest.fixture
def operator(django_user_model):
    """A staff user in the Operators group (may approve, reject and replay)."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user(
        username="olivia", password="pw-olivia-123", is_staff=True
    )
    group, _ = Group.objects.get_or_create(name="Operators")
    group.permissions.add(
        *Permission.objects.filter(
            codename__in=["approve_workflow", "reject_workflow", "replay_workflow"]
        )
    )
    user.groups.add(group)
    return user
