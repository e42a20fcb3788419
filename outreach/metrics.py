"""Prometheus series for the send gate and sending (exposed at /metrics; docs/operations.md)."""

from prometheus_client import Counter

GATE_DECISIONS = Counter(
    "leadline_gate_decisions_total",
    "Send-gate decisions by action and reason",
    ["action", "reason"],
)
SENDS = Counter("leadline_email_sends_total", "Email send attempts by outcome", ["outcome"])


_REASON_KINDS = (
    ("shadow", "shadow_replay"),
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
