"""The send gate: the only place that decides whether an email may leave.

Sending needs all of: ``API_ENV=production``, ``MODE_DRAFT_ONLY=false``, a recipient on a
non-empty ``SEND_EMAIL_ALLOWLIST``, and either a human approval or ``ALLOW_AUTO_SEND=true``.
A draft a model wrote (``drafter == "llm"``) needs a human approval even then, unless
``LLM_AUTO_SEND=true`` as well.

Allowlist entries (lowercased by settings):
- ``sales@company.com``: exactly that address (plus-tags are not stripped);
- ``@company.com``: any address at exactly ``company.com`` (not ``sub.company.com``);
- ``@.company.com``: any address at a subdomain of ``company.com`` (not ``company.com`` itself).
Recipients that are not plain ASCII are never normalised into a match: a Cyrillic "a" (U+0430) or a
fullwidth "@" (U+FF20) makes an address unmatchable, never equal to its look-alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from outreach.models import GateAction

logger = logging.getLogger(__name__)

PRODUCTION = "production"
#: EmailDraft.drafter of a draft whose text a model wrote (a template fallback is "template").
AI_DRAFTER = "llm"
# RFC 5322 dot-atom characters; quoted local parts and IP literals are never allowlisted.
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


@dataclass(frozen=True)
class SendMode:
    api_env: str
    draft_only: bool
    auto_send: bool
    allowlist: tuple[str, ...]
    #: LLM_AUTO_SEND: AI drafts may be auto-sent too (only with auto_send).
    llm_auto_send: bool = False
    #: OUTREACH_DRAFTER, for reporting only.
    drafter: str = "template"

    @property
    def can_send(self) -> bool:
        """Whether any email at all may leave in this mode (some recipient is allowlisted)."""
        return self.api_env == PRODUCTION and not self.draft_only and bool(self.allowlist)

    def as_dict(self) -> dict[str, object]:
        return {
            "api_env": self.api_env,
            "draft_only": self.draft_only,
            "auto_send": self.auto_send,
            "allowlist": sorted(self.allowlist),
            "llm_auto_send": self.llm_auto_send,
        }


@dataclass(frozen=True)
class GateDecision:
    action: GateAction
    reason: str


def current_mode() -> SendMode:
    """The send mode the settings (i.e. the environment) ask for."""
    return SendMode(
        api_env=settings.API_ENV,
        draft_only=settings.MODE_DRAFT_ONLY,
        auto_send=settings.ALLOW_AUTO_SEND,
        allowlist=tuple(settings.SEND_EMAIL_ALLOWLIST),
        llm_auto_send=getattr(settings, "LLM_AUTO_SEND", False),
        drafter=getattr(settings, "OUTREACH_DRAFTER", "template"),
    )


def validate_send_mode(mode: SendMode | None = None) -> list[str]:
    """Return warnings about ``mode``; raise ValueError naming the variables to change.

    Any mode that asks to send outside production, or with nothing allowlisted, is an error.
    """
    mode = mode or current_mode()
    invalid = [entry for entry in mode.allowlist if parse_allowlist_entry(entry) is None]
    if invalid:
        raise ValueError(
            f"SEND_EMAIL_ALLOWLIST has entries that are neither an address nor '@domain': "
            f"{', '.join(map(repr, invalid))}. Fix SEND_EMAIL_ALLOWLIST."
        )
    warnings: list[str] = []
    if mode.draft_only:
        if mode.auto_send:
            warnings.append(
                "ALLOW_AUTO_SEND=true has no effect while MODE_DRAFT_ONLY=true: nothing is sent."
            )
    elif mode.api_env != PRODUCTION:
        raise ValueError(
            f"MODE_DRAFT_ONLY=false is not allowed with API_ENV={mode.api_env}: email is sent "
            "only in production. Set MODE_DRAFT_ONLY=true (or API_ENV=production on the "
            "production deployment)."
        )
    elif not mode.allowlist:
        raise ValueError(
            "MODE_DRAFT_ONLY=false with an empty SEND_EMAIL_ALLOWLIST would send to no one. "
            "Set SEND_EMAIL_ALLOWLIST to a JSON list of addresses and '@domain' entries, "
            "or MODE_DRAFT_ONLY=true."
        )
    else:
        how = "automatically (ALLOW_AUTO_SEND=true)" if mode.auto_send else "after approval"
        warnings.append(
            f"SEND MODE IS ON: email is sent {how} to recipients matching "
            f"{len(mode.allowlist)} SEND_EMAIL_ALLOWLIST entr"
            f"{'y' if len(mode.allowlist) == 1 else 'ies'}."
        )
    warnings.extend(_ai_draft_warnings(mode))
    for warning in warnings:
        logger.warning("send mode: %s", warning)
    return warnings


def ai_drafts_line(mode: SendMode) -> str:
    """How AI drafts are treated in ``mode``, one line (check_send_mode prints it)."""
    if mode.drafter != AI_DRAFTER:
        return f"AI drafts: off (OUTREACH_DRAFTER={mode.drafter})"
    if mode.can_send and mode.auto_send and mode.llm_auto_send:
        return "AI drafts: auto-sent (ALLOW_AUTO_SEND=true, LLM_AUTO_SEND=true)"
    return "AI drafts: always wait for a human (LLM_AUTO_SEND=false or nothing is auto-sent)"


def _ai_draft_warnings(mode: SendMode) -> list[str]:
    if mode.drafter != AI_DRAFTER:
        if mode.llm_auto_send:
            return ["LLM_AUTO_SEND=true has no effect: OUTREACH_DRAFTER is not llm."]
        return []
    if mode.can_send and mode.auto_send:
        if mode.llm_auto_send:
            return [
                "AI DRAFTS ARE AUTO-SENT (OUTREACH_DRAFTER=llm, ALLOW_AUTO_SEND=true, "
                "LLM_AUTO_SEND=true): a model's text reaches allowlisted leads unread."
            ]
        return [
            "OUTREACH_DRAFTER=llm with ALLOW_AUTO_SEND=true: template drafts are auto-sent, "
            "AI drafts wait for a human (set LLM_AUTO_SEND=true to auto-send them too)."
        ]
    if mode.llm_auto_send:
        return ["LLM_AUTO_SEND=true has no effect while nothing is auto-sent."]
    return []


def enforce_send_mode() -> list[str]:
    """Refuse to start a web or worker process whose send mode is a configuration error."""
    try:
        return validate_send_mode()
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def normalise_address(address: str) -> str | None:
    """``local@domain`` lowercased, or None if it is not a plain ASCII address we can match.

    Only surrounding whitespace is forgiven; nothing is transliterated or NFKC-folded.
    """
    if not isinstance(address, str):
        return None
    candidate = address.strip()
    if not candidate.isascii() or candidate.count("@") != 1:
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in candidate):
        return None
    local, domain = candidate.lower().split("@")
    if not _LOCAL_PART.fullmatch(local) or not _DOMAIN.fullmatch(domain):
        return None
    return f"{local}@{domain}"


def parse_allowlist_entry(entry: str) -> tuple[str, str] | None:
    """``("address", a)``, ``("domain", d)``, ``("subdomains", d)`` or None if malformed."""
    entry = entry.strip().lower()
    if entry.startswith("@."):
        domain = entry[2:]
        return ("subdomains", domain) if entry.isascii() and _DOMAIN.fullmatch(domain) else None
    if entry.startswith("@"):
        domain = entry[1:]
        return ("domain", domain) if entry.isascii() and _DOMAIN.fullmatch(domain) else None
    address = normalise_address(entry)
    return ("address", address) if address else None


def allowlist_allows(address: str, allowlist: Iterable[str]) -> bool:
    """Whether ``address`` matches an allowlist entry exactly (no substring or suffix tricks)."""
    normalised = normalise_address(address)
    if normalised is None:
        return False
    domain = normalised.split("@")[1]
    for entry in allowlist:
        parsed = parse_allowlist_entry(entry)
        if parsed is None:
            continue
        kind, value = parsed
        if (
            (kind == "address" and normalised == value)
            or (kind == "domain" and domain == value)
            or (kind == "subdomains" and domain.endswith(f".{value}"))
        ):
            return True
    return False


def decide(
    *, mode: SendMode, recipient: str, approved: bool, ai_drafted: bool = False
) -> GateDecision:
    """SEND, HOLD (for a human) or BLOCK (with the gate that said no) for one email.

    SEND only when production, not draft-only, the recipient allowlisted, and either
    approved or auto-send on (for a model's draft: auto-send and LLM auto-send on).
    Pure: no database, no settings.

    A reason names the rule, never the address: reasons are logged, audited and written into
    the CRM hand-off note, while the address stays in the draft row (issue #14).
    """
    if normalise_address(recipient) is None:
        return GateDecision(GateAction.BLOCK, "no valid recipient email")
    if mode.draft_only:
        return GateDecision(
            GateAction.BLOCK,
            "draft-only mode (MODE_DRAFT_ONLY=true): nothing is sent; "
            "approve to complete and hand the text to the rep",
        )
    if mode.api_env != PRODUCTION:
        return GateDecision(
            GateAction.BLOCK, f"API_ENV={mode.api_env}: sending only happens in production"
        )
    if not allowlist_allows(recipient, mode.allowlist):
        return GateDecision(GateAction.BLOCK, "recipient is not on SEND_EMAIL_ALLOWLIST")
    if approved:
        return GateDecision(GateAction.SEND, "approved; production send mode; recipient allowed")
    if mode.auto_send and ai_drafted and not mode.llm_auto_send:
        return GateDecision(
            GateAction.HOLD,
            "AI draft (LLM_AUTO_SEND=false): waiting for a human to approve, "
            "although ALLOW_AUTO_SEND=true",
        )
    if mode.auto_send:
        return GateDecision(
            GateAction.SEND, "auto-send (ALLOW_AUTO_SEND=true); recipient allowlisted"
        )
    return GateDecision(GateAction.HOLD, "send mode: waiting for a human to approve")
