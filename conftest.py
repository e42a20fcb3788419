"""Project-wide pytest fixtures."""

from __future__ import annotations

import pytest


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
