"""``LlmDrafter``: a model's reply through any OpenAI-compatible Chat Completions endpoint,
guarded, with the template draft as the floor.

The template draft is always rendered first. The model is then asked (official ``openai`` SDK,
``max_retries=0``) in a helper thread the drafter waits on for at most LLM_TIMEOUT_SECONDS in
all, so neither a slow provider nor a slow trickle of bytes holds the workflow longer. Any
timeout, error, rate limit, malformed or empty answer, spent budget or failed guard returns the
template draft at once, with the reason on the draft (``ai_outcome``, ``ai_detail``,
``ai_guards``) and in metrics. The drafter never raises because of the model.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

import openai
from django.conf import settings

from outreach import metrics
from outreach.drafting import DraftContent, DraftContext, TemplateDrafter
from outreach.llm import budget, guards, language, prompt

logger = logging.getLogger(__name__)

KEPT = "kept"
GUARD_FAILED = "guard_failed"
TIMEOUT = "timeout"
RATE_LIMITED = "rate_limited"
ERROR = "error"
MALFORMED = "malformed"
EMPTY = "empty"
BUDGET_SPENT = "budget_spent"
OUTCOMES = (KEPT, GUARD_FAILED, TIMEOUT, RATE_LIMITED, ERROR, MALFORMED, EMPTY, BUDGET_SPENT)

#: Endpoints (base URLs) that refused a JSON-schema response_format: asked without it since.
_NO_JSON_SCHEMA: set[str] = set()
_OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class _Answer:
    content: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


class _Fallback(Exception):
    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


class LlmDrafter:
    name = "llm"

    def __init__(self) -> None:
        self.base_url = settings.LLM_BASE_URL or _OPENAI_URL
        self.model = settings.LLM_MODEL
        self.timeout = settings.LLM_TIMEOUT_SECONDS
        self.max_tokens = settings.LLM_MAX_TOKENS
        self.allowed_domains = tuple(settings.LLM_ALLOWED_LINK_DOMAINS)

    def draft(self, ctx: DraftContext) -> DraftContent:
        floor = TemplateDrafter().draft(ctx)
        lang = language.detect(ctx.message)
        built = prompt.build(ctx, floor, lang)
        ai: dict[str, Any] = {
            "language": lang,
            "ai_model": self.model,
            "ai_prompt_file": built.file,
            "ai_guards": [],
        }
        started = time.monotonic()
        try:
            answer = self._ask_within_budget(built)
            ai["ai_prompt_tokens"] = answer.prompt_tokens
            ai["ai_completion_tokens"] = answer.completion_tokens
            try:
                subject, body = prompt.parse_answer(answer.content)
            except prompt.MalformedAnswer as exc:
                outcome = EMPTY if not (answer.content or "").strip() else MALFORMED
                raise _Fallback(outcome, str(exc)) from None
            results = guards.run(self._guard_input(ctx, floor, built.system, subject, body))
            ai["ai_guards"] = [r.as_dict() for r in results]
            failed = [r for r in results if not r.passed]
            if failed:
                for result in failed:
                    metrics.LLM_GUARD_FAILURES.labels(result.rule).inc()
                raise _Fallback(
                    GUARD_FAILED, "; ".join(f"{r.rule}: {r.detail}" for r in failed)[:2000]
                )
        except _Fallback as fallback:
            return self._record(floor, ai, fallback.outcome, fallback.detail, started)
        content = DraftContent(
            subject=subject, body=body, body_html="", template=floor.template, drafter=self.name
        )
        return self._record(content, ai, KEPT, "", started)

    def _record(
        self, content: DraftContent, ai: dict[str, Any], outcome: str, detail: str, started: float
    ) -> DraftContent:
        seconds = time.monotonic() - started
        metrics.LLM_DRAFTS.labels(outcome).inc()
        metrics.LLM_SECONDS.labels(outcome).observe(seconds)
        logger.info(
            "AI draft %s",
            outcome,
            extra={
                "outcome": outcome,
                "model": self.model,
                "duration_ms": round(seconds * 1000),
                "guards_failed": [g["rule"] for g in ai["ai_guards"] if not g["passed"]],
            },
        )
        ai.update(ai_outcome=outcome, ai_detail=detail)
        drafter = self.name if outcome == KEPT else TemplateDrafter.name
        return replace(content, drafter=drafter, ai=ai)

    # --- the call ---------------------------------------------------------------------------

    def _ask_within_budget(self, built: prompt.Prompt) -> _Answer:
        reserved = budget.estimate_prompt_tokens(built.messages) + self.max_tokens
        if not budget.reserve(reserved):
            raise _Fallback(
                BUDGET_SPENT,
                f"LLM_DAILY_TOKEN_BUDGET ({settings.LLM_DAILY_TOKEN_BUDGET}) is spent for today",
            )
        used = 0
        try:
            answer = self._ask(built.messages)
            used = (answer.prompt_tokens or 0) + (answer.completion_tokens or 0) or reserved
            metrics.LLM_TOKENS.labels("prompt").inc(answer.prompt_tokens or 0)
            metrics.LLM_TOKENS.labels("completion").inc(answer.completion_tokens or 0)
            return answer
        except _Fallback as fallback:
            # A timed-out call may still be billed: keep its reservation.
            used = reserved if fallback.outcome == TIMEOUT else 0
            raise
        finally:
            budget.settle(reserved, used)

    def _ask(self, messages: list[dict[str, str]]) -> _Answer:
        deadline = time.monotonic() + self.timeout
        with_schema = self.base_url not in _NO_JSON_SCHEMA
        while True:
            try:
                return self._call_before(deadline, messages, with_schema)
            except _Fallback:
                raise
            except openai.BadRequestError as exc:
                if with_schema and "response_format" in str(exc).lower():
                    _NO_JSON_SCHEMA.add(self.base_url)
                    with_schema = False
                    continue
                raise _Fallback(ERROR, f"the endpoint refused the request: {_short(exc)}") from None
            except openai.RateLimitError as exc:
                raise _Fallback(RATE_LIMITED, f"rate limited (429): {_short(exc)}") from None
            except openai.APITimeoutError:
                raise _Fallback(TIMEOUT, self._timeout_text()) from None
            except openai.APIStatusError as exc:
                raise _Fallback(ERROR, f"HTTP {exc.status_code}: {_short(exc)}") from None
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
                raise _Fallback(MALFORMED, f"unreadable response: {_short(exc)}") from None
            except openai.APIConnectionError as exc:
                raise _Fallback(ERROR, f"could not reach the endpoint: {_short(exc)}") from None
            except Exception as exc:  # the model must never fail the workflow
                logger.exception("LLM call failed unexpectedly")
                raise _Fallback(ERROR, f"{type(exc).__name__}: {_short(exc)}") from None

    def _call_before(
        self, deadline: float, messages: list[dict[str, str]], with_schema: bool
    ) -> _Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Fallback(TIMEOUT, self._timeout_text())
        client = _client(self.base_url, settings.LLM_API_KEY or "no-key")
        kwargs: dict[str, Any] = {
            "timeout": remaining,
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": 0.3,
        }
        if with_schema:
            kwargs["response_format"] = prompt.RESPONSE_FORMAT
        # The SDK's timeout is per read; the thread bounds the whole call.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-call")
        try:
            future = pool.submit(client.chat.completions.create, **kwargs)
            try:
                completion = future.result(timeout=remaining)
            except FutureTimeout:
                raise _Fallback(TIMEOUT, self._timeout_text()) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if not completion.choices:
            return _Answer(None, *_usage(completion))
        return _Answer(completion.choices[0].message.content, *_usage(completion))

    def _timeout_text(self) -> str:
        return f"no answer within LLM_TIMEOUT_SECONDS={self.timeout:g}"

    def _guard_input(
        self, ctx: DraftContext, floor: DraftContent, system: str, subject: str, body: str
    ) -> guards.GuardInput:
        return guards.GuardInput(
            subject=subject,
            body=body,
            first_name=ctx.first_name,
            signature=ctx.signature,
            trusted=trusted_text(ctx),
            system_prompt=system,
            allowed_domains=self.allowed_domains,
            recipient=ctx.email,
        )


_CLIENTS: dict[tuple[int, str, str], openai.OpenAI] = {}


def _client(base_url: str, api_key: str) -> openai.OpenAI:
    """One SDK client (and connection pool) per process and endpoint; never shared across a
    fork (the key holds the process id)."""
    key = (os.getpid(), base_url, api_key)
    if key not in _CLIENTS:
        _CLIENTS.clear()
        _CLIENTS[key] = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    return _CLIENTS[key]


#: DraftContext fields whose values whoever submits the form chooses: HubSpot's Forms API takes
#: any value for them (``context.pageUri`` included), and a new CRM contact's name and company
#: are copied from the form. They are never a source of facts for the guards.
LEAD_TYPED_FIELDS = ("email", "first_name", "last_name", "company", "message", "page_uri")
#: Facts from HubSpot's owner records and the contact's lifecycle stage (an enumeration).
TRUSTED_FIELDS = ("owner_name", "owner_email", "owner_signature", "lifecycle_stage")
#: Stands in for a lead-typed value when the template draft is rendered for the guards: no
#: link, address, number or date, so the company's wording is trusted and nothing a lead typed.
LEAD_TYPED_PLACEHOLDER = "[typed by the lead]"


def trusted_text(ctx: DraftContext) -> str:
    """Everything the guards accept facts (links, addresses, phone numbers, prices, dates) from:
    only what the lead cannot type. The owner's name, email and signature, the lifecycle stage,
    and the template draft rendered with every lead-typed field (``LEAD_TYPED_FIELDS``) replaced
    by a placeholder, so the template's own words count and the values it quotes do not."""
    masked = replace(
        ctx,
        **{
            name: LEAD_TYPED_PLACEHOLDER if getattr(ctx, name).strip() else ""
            for name in LEAD_TYPED_FIELDS
        },
    )
    template = TemplateDrafter().draft(masked)
    facts = [getattr(ctx, name) for name in TRUSTED_FIELDS]
    return "\n".join([*facts, template.subject, template.body])


def _usage(completion: Any) -> tuple[int | None, int | None]:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return None, None
    return usage.prompt_tokens, usage.completion_tokens


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def warm_up() -> None:
    """Load what the first draft would otherwise load on the clock: the language model."""
    language.detect("warming up the language model")
