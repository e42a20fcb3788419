"""decide() against an oracle that shares no code with the gate."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from outreach.gate import SendMode, decide
from outreach.models import GateAction

ALLOWLISTS = [
    (),
    ("sales@company.com",),
    ("@company.com",),
    ("sales@company.com", "@partner.io"),
    ("@sub.company.com",),
]
EXACT = {"sales@company.com"}
DOMAINS = {"company.com", "partner.io", "sub.company.com"}


def oracle_must_allow(recipient: str, allowlist: tuple[str, ...]) -> bool:
    """Plainly allowlisted: an exact entry, or an alphanumeric name at an '@domain' entry."""
    clean = recipient.strip().lower()
    local, at, domain = clean.rpartition("@")
    by_domain = bool(at) and f"@{domain}" in allowlist and local.isascii() and local.isalnum()
    return clean in allowlist or by_domain


def oracle_may_allow(recipient: str, allowlist: tuple[str, ...]) -> bool:
    """Necessary for any match: one '@', printable ASCII, and an exact or '@domain' entry."""
    clean = recipient.strip().lower()
    if clean.count("@") != 1 or not clean.isascii() or not clean.isprintable() or " " in clean:
        return False
    return clean in allowlist or f"@{clean.split('@')[1]}" in allowlist


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_known = st.sampled_from(
    ["sales@company.com", "SALES@COMPANY.COM", " sales@company.com "]
) | st.builds(lambda local, domain: f"{local}@{domain}", _local, st.sampled_from(sorted(DOMAINS)))
_adversarial = st.sampled_from(
    [
        "s\u0430les@company.com",
        "sales\uff20company.com",
        "sales+x@company.com",
        "x@company.com.evil.com",
        "x@evilcompany.com",
        "x@company.com.",
        "sales@company.com@evil.com",
        "sa les@company.com",
        "sales@company.com\r\nbcc: x@evil.com",
        "",
        "x@sub.partner.io",
        "x@partner.io.evil.com",
        "x@evilpartner.io",
    ]
)
recipients = _known | _adversarial | st.text(max_size=30)


@given(
    api_env=st.sampled_from(["development", "staging", "production"]),
    draft_only=st.booleans(),
    auto_send=st.booleans(),
    allowlist=st.sampled_from(ALLOWLISTS),
    recipient=recipients,
    approved=st.booleans(),
)
def test_decide_sends_only_when_every_gate_says_yes(
    api_env, draft_only, auto_send, allowlist, recipient, approved
):
    mode = SendMode(api_env, draft_only=draft_only, auto_send=auto_send, allowlist=allowlist)

    decision = decide(mode=mode, recipient=recipient, approved=approved)

    gates_open = api_env == "production" and not draft_only
    if decision.action == GateAction.SEND:
        assert gates_open
        assert approved or auto_send
        assert oracle_may_allow(recipient, allowlist)
    else:
        assert decision.reason
    if gates_open and oracle_must_allow(recipient, allowlist) and (approved or auto_send):
        assert decision.action == GateAction.SEND
    if not (gates_open and oracle_may_allow(recipient, allowlist)):
        assert decision.action == GateAction.BLOCK


@given(recipient=_adversarial, approved=st.booleans(), auto_send=st.booleans())
def test_adversarial_recipients_are_always_blocked(recipient, approved, auto_send):
    mode = SendMode(
        "production",
        draft_only=False,
        auto_send=auto_send,
        allowlist=("sales@company.com", "@partner.io"),
    )

    assert decide(mode=mode, recipient=recipient, approved=approved).action == GateAction.BLOCK


def test_blocked_reasons_name_the_gate():
    def reason(env="production", draft_only=False, recipient="sales@company.com"):
        mode = SendMode(env, draft_only=draft_only, auto_send=False, allowlist=("@company.com",))
        return decide(mode=mode, recipient=recipient, approved=True).reason

    assert "MODE_DRAFT_ONLY=true" in reason(draft_only=True)
    assert reason(env="staging") == "API_ENV=staging: sending only happens in production"
    # the rule, never the address (reasons are logged; the address stays in the draft row)
    assert reason(recipient="x@other.com") == "recipient is not on SEND_EMAIL_ALLOWLIST"
    assert reason(recipient="<!channel> nope") == "no valid recipient email"


def test_gate_metric_labels_name_the_gate_that_decided():
    from outreach.gate import SendMode, decide
    from outreach.metrics import gate_reason_label

    mode = SendMode("production", False, True, ("sales@company.com",))
    labels = {
        "auto_send": decide(mode=mode, recipient="sales@company.com", approved=False),
        "approved": decide(mode=mode, recipient="sales@company.com", approved=True),
        "not_allowlisted": decide(mode=mode, recipient="x@evil.com", approved=True),
        "draft_only": decide(
            mode=SendMode("production", True, False, ()), recipient="a@b.co", approved=True
        ),
        "not_production": decide(
            mode=SendMode("staging", False, False, ("a@b.co",)), recipient="a@b.co", approved=True
        ),
    }
    assert {gate_reason_label(d.reason): label for label, d in labels.items()} == {
        label: label for label in labels
    }
