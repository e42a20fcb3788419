"""AI drafts wait for a human, even with ALLOW_AUTO_SEND=true, unless LLM_AUTO_SEND=true; the
startup checks and check_send_mode say so; malformed LLM settings refuse to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail

from outreach.gate import SendMode, decide, validate_send_mode
from outreach.models import GateAction
from outreach.services import draft_create, hand_off
from outreach.tests.conftest import draft_of, make_workflow, status_of
from workflows.models import Status

REPO = Path(__file__).resolve().parents[2]
AUTO = SendMode("production", False, True, ("sales@company.com",), drafter="llm")


def test_decide_holds_ai_drafts_under_auto_send():
    held = decide(mode=AUTO, recipient="sales@company.com", approved=False, ai_drafted=True)
    assert held.action == GateAction.HOLD
    assert "LLM_AUTO_SEND=false" in held.reason
    template = decide(mode=AUTO, recipient="sales@company.com", approved=False)
    assert template.action == GateAction.SEND


def test_decide_sends_ai_drafts_when_approved_or_llm_auto_send():
    assert (
        decide(mode=AUTO, recipient="sales@company.com", approved=True, ai_drafted=True).action
        == GateAction.SEND
    )
    both = SendMode("production", False, True, ("sales@company.com",), llm_auto_send=True)
    assert (
        decide(mode=both, recipient="sales@company.com", approved=False, ai_drafted=True).action
        == GateAction.SEND
    )


def test_llm_auto_send_alone_sends_nothing():
    mode = SendMode("production", False, False, ("sales@company.com",), llm_auto_send=True)
    decision = decide(mode=mode, recipient="sales@company.com", approved=False, ai_drafted=True)
    assert decision.action == GateAction.HOLD


@pytest.mark.django_db
def test_allow_auto_send_without_llm_auto_send_holds_the_ai_draft(llm_drafting, send_mode):
    send_mode(auto_send=True)
    workflow = make_workflow(Status.RUNNING)
    draft_create(workflow_id=workflow.pk)
    decision = hand_off(workflow_id=workflow.pk)

    draft = draft_of(workflow)
    assert draft.drafter == "llm"
    assert decision.action == GateAction.HOLD
    assert status_of(workflow) == Status.AWAITING_APPROVAL
    assert draft.gate_action == GateAction.HOLD
    assert "AI draft" in draft.gate_reason
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_template_fallback_is_auto_sent_as_before(llm_drafting, send_mode):
    send_mode(auto_send=True)
    llm_drafting.configure(fault="500")
    workflow = make_workflow(Status.RUNNING)
    draft_create(workflow_id=workflow.pk)
    decision = hand_off(workflow_id=workflow.pk)
    assert draft_of(workflow).drafter == "template"
    assert decision.action == GateAction.SEND


@pytest.mark.django_db
def test_llm_auto_send_true_auto_sends_ai_drafts(llm_drafting, send_mode, settings):
    send_mode(auto_send=True)
    settings.LLM_AUTO_SEND = True
    workflow = make_workflow(Status.RUNNING)
    draft_create(workflow_id=workflow.pk)
    assert hand_off(workflow_id=workflow.pk).action == GateAction.SEND
    assert status_of(workflow) == Status.SENDING  # the send task is enqueued on commit


@pytest.mark.django_db
def test_a_change_of_llm_auto_send_is_an_audited_send_mode_change():
    from outreach.services import record_mode_change_if_needed

    assert record_mode_change_if_needed(AUTO) is True
    assert record_mode_change_if_needed(AUTO) is False
    changed = SendMode("production", False, True, ("sales@company.com",), llm_auto_send=True)
    assert record_mode_change_if_needed(changed) is True


def test_startup_checks_report_ai_drafts():
    held = validate_send_mode(AUTO)
    assert any("AI drafts wait for a human" in w for w in held)
    both = SendMode(
        "production", False, True, ("sales@company.com",), llm_auto_send=True, drafter="llm"
    )
    assert any("AI DRAFTS ARE AUTO-SENT" in w for w in validate_send_mode(both))
    idle = SendMode("development", True, False, (), llm_auto_send=True)
    assert any("LLM_AUTO_SEND=true has no effect" in w for w in validate_send_mode(idle))


# --- Fresh processes: settings parse the environment ------------------------------------------

PRODUCTION_AUTO = {
    "API_ENV": "production",
    "SECRET_KEY": "test-secret-key-for-production-settings",
    "ALLOWED_HOSTS": "leadline.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/leadline_never_connected",
    "MODE_DRAFT_ONLY": "false",
    "ALLOW_AUTO_SEND": "true",
    "SEND_EMAIL_ALLOWLIST": '["sales@company.com"]',
    "OUTREACH_DRAFTER": "llm",
    "LLM_BASE_URL": "http://127.0.0.1:9/v1",
}
DEV_LLM = {"DATABASE_URL": "sqlite://:memory:", "OUTREACH_DRAFTER": "llm"}
RUNS = {
    "held": ("check_send_mode", PRODUCTION_AUTO),
    "timeout": ("check", {**DEV_LLM, "LLM_BASE_URL": "http://x/v1", "LLM_TIMEOUT_SECONDS": "soon"}),
    "url": ("check", {**DEV_LLM, "LLM_BASE_URL": "localhost:8080"}),
    "domains": ("check", {**DEV_LLM, "LLM_API_KEY": "k", "LLM_ALLOWED_LINK_DOMAINS": '["a b"]'}),
    "tokens": ("check", {**DEV_LLM, "LLM_API_KEY": "k", "LLM_MAX_TOKENS": "-5"}),
    "auto": ("check", {**DEV_LLM, "LLM_API_KEY": "k", "LLM_AUTO_SEND": "sometimes"}),
    "drafter": ("check", {"DATABASE_URL": "sqlite://:memory:", "OUTREACH_DRAFTER": "gpt"}),
    "endpoint": ("check", DEV_LLM),
}


@pytest.fixture(scope="module")
def runs():
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLM_", "OUTREACH_", "API_ENV", "MODE_", "ALLOW_", "SEND_"))
    }
    started = {
        name: subprocess.Popen(
            [sys.executable, "manage.py", command],
            cwd=REPO,
            env={**keep, "LEADLINE_TESTING": "false", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (command, env) in RUNS.items()
    }
    return {name: (p, *p.communicate(timeout=60)) for name, p in started.items()}


def test_check_send_mode_reports_that_ai_drafts_are_held(runs):
    process, stdout, stderr = runs["held"]
    assert process.returncode == 0, stderr
    assert "OUTREACH_DRAFTER=llm" in stdout
    assert "LLM_AUTO_SEND=false" in stdout
    assert "AI drafts: always wait for a human" in stdout
    assert "AI drafts wait for a human" in stdout  # the startup warning


@pytest.mark.parametrize(
    ("run", "line"),
    [
        ("timeout", "LLM_TIMEOUT_SECONDS='soon' is not a number."),
        ("url", "LLM_BASE_URL='localhost:8080' is not an http(s) URL"),
        ("domains", "LLM_ALLOWED_LINK_DOMAINS must be a JSON list of domain names"),
        ("tokens", "LLM_MAX_TOKENS=-5 must be at least 16."),
        ("auto", "LLM_AUTO_SEND='sometimes' is not a boolean"),
        ("drafter", "OUTREACH_DRAFTER='gpt' must be one of template, llm."),
        ("endpoint", "OUTREACH_DRAFTER=llm needs LLM_BASE_URL"),
    ],
)
def test_malformed_llm_settings_refuse_to_start_with_a_clear_line(runs, run, line):
    process, _stdout, stderr = runs[run]
    assert process.returncode != 0
    assert line in stderr
