"""Project-wide pytest fixtures."""

from __future__ import annotations

import sys
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
def hubspot_sandbox(sandbox, settings):
    """The sandbox as Leadline's HubSpot: its token and URL in the settings, and the client's
    throttle in-process (a memory:// broker), so a test calls HubSpot over HTTP as a worker
    would. Test modules add their own settings on top."""
    settings.HUBSPOT_ACCESS_TOKEN = sandbox.token
    settings.HUBSPOT_API_BASE_URL = sandbox.url
    settings.CELERY_BROKER_URL = "memory://"
    return sandbox


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


@pytest.fixture
def llm_sandbox() -> Iterator:
    """A fresh model sandbox (OpenAI-compatible) on a free port; LLM_BASE_URL is `.base_url`."""
    from outreach.llm.sandbox import LlmSandboxServer

    server = LlmSandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_drafting(settings, llm_sandbox):
    """OUTREACH_DRAFTER=llm against the sandbox, with a 1 s timeout."""
    settings.OUTREACH_DRAFTER = "llm"
    settings.LLM_BASE_URL = llm_sandbox.base_url
    settings.LLM_API_KEY = "sandbox-key"
    settings.LLM_MODEL = "sandbox-model"
    settings.LLM_TIMEOUT_SECONDS = 1.0
    settings.LLM_MAX_TOKENS = 800
    settings.LLM_ALLOWED_LINK_DOMAINS = []
    settings.LLM_DAILY_TOKEN_BUDGET = 1_000_000
    settings.LLM_AUTO_SEND = False
    return llm_sandbox


@pytest.fixture(autouse=True)
def _session_relay_only_where_asked(request) -> None:
    """The e2e session's outbox relay would publish this test's pending workflows to the
    session's worker: pause it for every test that does not ask for it (tests/harness.py)."""
    harness = sys.modules.get("tests.harness")
    if harness and not {"e2e", "outbox_relay"} & set(request.fixturenames):
        harness.pause_session_relays()
