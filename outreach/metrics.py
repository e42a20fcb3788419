"""Prometheus series for the send gate and sending (exposed at /metrics; docs/operations.md)."""

from prometheus_client import Counter, Histogram

GATE_DECISIONS = Counter(
    "leadline_gate_decisions_total",
    "Send-gate decisions by action and reason",
    ["action", "reason"],
)
SENDS = Counter("leadline_email_sends_total", "Email send attempts by outcome", ["outcome"])


_REASON_KINDS = (
    ("shadow", "shadow_replay"),
    ("ai draft", "ai_needs_approval"),
    ("no valid recipient", "invalid_recipient"),
    ("draft-only", "draft_only"),
    ("api_env=", "not_production"),
    ("not on send_email_allowlist", "not_allowlisted"),
    ("gate re-check", "recheck"),
    ("auto-send", "auto_send"),
    ("approved", "approved"),
    ("waiting for a human", "needs_approval"),
)


def gate_reason_label(reason: str) -> str:
    """A small, fixed label set: the reason's kind, never the recipient it may name."""
    text = reason.lower()
    return next((label for needle, label in _REASON_KINDS if needle in text), "other")


def record_gate_decision(action: str, reason: str) -> None:
    GATE_DECISIONS.labels(action=action, reason=gate_reason_label(reason)).inc()


# --- AI drafts (issue #17; outreach/llm/) ---------------------------------------------------
LLM_DRAFTS = Counter(
    "leadline_llm_drafts_total",
    "Drafts the llm drafter made, by outcome: kept (AI text) or why the template was used",
    ["outcome"],
)
LLM_GUARD_FAILURES = Counter(
    "leadline_llm_guard_failures_total", "Model answers refused, by guard rule", ["rule"]
)
LLM_TOKENS = Counter("leadline_llm_tokens_total", "Tokens the model reported", ["kind"])
LLM_SECONDS = Histogram(
    "leadline_llm_request_seconds",
    "Time waiting on the model, by outcome",
    ["outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 30),
)
