"""Bodies of HubSpot tasks and notes, built as HTML with every value escaped (issue #14).

HubSpot renders ``hs_task_body`` and ``hs_note_body`` as rich text. A lead's name, company,
message or the drafted text quoting them could otherwise carry markup (a link dressed as
"Approve", an image beacon) into the rep's CRM. Here the only markup is ours: each paragraph
is escaped text, line breaks become ``<br>``, and links are built from our own URLs.
"""

from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe


def paragraph(text: str) -> SafeString:
    """``text`` escaped as one paragraph; its line breaks kept as ``<br>``."""
    lines = str(text).replace("\r\n", "\n").split("\n")
    return mark_safe("<p>" + "<br>".join(escape(line) for line in lines) + "</p>")  # noqa: S308


def paragraphs(text: str) -> SafeString:
    """Escaped ``text`` with blank lines starting new paragraphs."""
    text = str(text).replace("\r\n", "\n")
    blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    return mark_safe("".join(paragraph(block) for block in blocks))  # noqa: S308


def link_paragraph(label: str, url: str) -> SafeString:
    """``label: <a href="url">url</a>``, both escaped; ``url`` must be one we built."""
    return format_html('<p>{}: <a href="{}">{}</a></p>', label, url, url)


def join(*parts: SafeString) -> str:
    return "".join(str(part) for part in parts)
