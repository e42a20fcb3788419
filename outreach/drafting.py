"""Drafting: turn a submission plus CRM facts into the text of a follow-up email.

A drafter is anything with a ``name`` and ``draft(ctx) -> DraftContent``. ``TemplateDrafter``:
Django templates per HubSpot form under ``templates/outreach/emails/<form_id>/``
(``subject.txt``, ``body.txt``, optional ``body.html``), falling back to
``templates/outreach/emails/default/``. ``OUTREACH_DRAFTER=llm`` selects
``outreach.llm.drafter.LlmDrafter``: a model's reply, guarded, with the template draft as the
floor (docs/ai-drafts.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template

TEMPLATE_ROOT = "outreach/emails"
DEFAULT_TEMPLATE_DIR = f"{TEMPLATE_ROOT}/default"
# HubSpot form ids are GUIDs; anything else must not become part of a template path.
_SAFE_FORM_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class DraftContext:
    """What a drafter may use: the submission's fields and the CRM contact's facts."""

    email: str = ""
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    message: str = ""
    form_id: str = ""
    page_uri: str = ""
    lifecycle_stage: str = ""
    owner_name: str = ""
    owner_email: str = ""
    owner_signature: str = ""

    @property
    def message_excerpt(self) -> str:
        """The visitor's message on one line, shortened to a quotable length."""
        text = " ".join(self.message.split())
        if len(text) <= _EXCERPT_CHARS:
            return text
        return text[: _EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"

    @property
    def signature(self) -> str:
        return self.owner_signature.strip() or self.owner_name.strip()

    def as_template_context(self) -> dict[str, str]:
        return {
            **asdict(self),
            "message_excerpt": self.message_excerpt,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class DraftContent:
    subject: str
    body: str
    body_html: str
    #: Which template (directory) or model produced the text, stored on the draft.
    template: str
    #: Who wrote the text (``template`` or ``llm``); empty: the drafter's name.
    drafter: str = ""
    #: What the model was asked and answered (EmailDraft's ``language`` and ``ai_*`` fields);
    #: empty when no model was asked.
    ai: dict[str, Any] = field(default_factory=dict)


class Drafter(Protocol):
    name: str

    def draft(self, ctx: DraftContext) -> DraftContent: ...


class TemplateDrafter:
    """Per-form Django templates with a default fallback.

    Text parts are rendered with autoescaping off (a company called ``O'Brien & Co`` must
    read as such in a plain-text email); ``body.html`` is autoescaped as usual.
    """

    name = "template"

    def draft(self, ctx: DraftContext) -> DraftContent:
        directory = self._directory_for(ctx.form_id)
        data = ctx.as_template_context()
        subject = " ".join(self._render_text(f"{directory}/subject.txt", data).split())
        body = self._render_text(f"{directory}/body.txt", data).strip() + "\n"
        try:
            body_html = get_template(f"{directory}/body.html").render(data).strip()
        except TemplateDoesNotExist:
            body_html = ""
        return DraftContent(subject=subject, body=body, body_html=body_html, template=directory)

    @staticmethod
    def _directory_for(form_id: str) -> str:
        if form_id and _SAFE_FORM_ID.match(form_id):
            candidate = f"{TEMPLATE_ROOT}/{form_id}"
            try:
                get_template(f"{candidate}/subject.txt")
                get_template(f"{candidate}/body.txt")
            except TemplateDoesNotExist:
                pass
            else:
                return candidate
        return DEFAULT_TEMPLATE_DIR

    @staticmethod
    def _render_text(name: str, data: dict[str, str]) -> str:
        # The backend wrapper always autoescapes; the engine-level template takes a Context
        # whose autoescape we control, so template authors need no {% autoescape off %}.
        template = get_template(name).template
        return template.render(Context(data, autoescape=False))


def _llm_drafter() -> Drafter:
    from outreach.llm.drafter import LlmDrafter

    return LlmDrafter()


DRAFTERS: dict[str, Any] = {"template": TemplateDrafter, "llm": _llm_drafter}


def get_drafter() -> Drafter:
    """The drafter named by the OUTREACH_DRAFTER setting (default ``template``)."""
    name = getattr(settings, "OUTREACH_DRAFTER", "template")
    try:
        return DRAFTERS[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"OUTREACH_DRAFTER={name!r} is not a known drafter; use one of {', '.join(DRAFTERS)}."
        ) from None
