"""The daily token budget (LLM_DAILY_TOKEN_BUDGET), shared by every web and worker process.

One ``llm_token_usage`` row per UTC day. Before a call, the drafter *reserves* the most the call
can cost (prompt estimate + LLM_MAX_TOKENS) with one conditional UPDATE, so concurrent workers
can never overshoot the budget; after the call the reservation is settled to what the provider
reported. A call that timed out keeps its reservation (the provider may have billed it).
"""

from __future__ import annotations

from datetime import UTC, date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from outreach.models import LlmTokenUsage


def _today() -> date:
    return timezone.now().astimezone(UTC).date()


def estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """A generous estimate (3 characters a token) for the reservation; settled afterwards."""
    return sum(len(m["content"]) for m in messages) // 3 + 16 * len(messages)


def reserve(tokens: int) -> bool:
    """Take ``tokens`` from today's budget if they fit; False when the budget is spent."""
    budget = settings.LLM_DAILY_TOKEN_BUDGET
    if tokens > budget:
        return False
    day = _today()
    if not LlmTokenUsage.objects.filter(day=day).exists():
        try:
            with transaction.atomic():
                LlmTokenUsage.objects.create(day=day)
        except IntegrityError:
            pass  # another process created today's row first
    updated = LlmTokenUsage.objects.filter(day=day, tokens__lte=budget - tokens).update(
        tokens=F("tokens") + tokens, calls=F("calls") + 1
    )
    return updated == 1


def settle(reserved: int, used: int) -> None:
    """Replace a reservation by what the call used (``used`` may be 0: nothing was spent)."""
    if used != reserved:
        LlmTokenUsage.objects.filter(day=_today()).update(tokens=F("tokens") + (used - reserved))


def spent_today() -> int:
    row = LlmTokenUsage.objects.filter(day=_today()).values_list("tokens", flat=True).first()
    return row or 0
