"""Guards: named rules a model's draft must pass, or the template draft is used instead.

Each rule takes a ``GuardInput`` and returns None (passed) or a short reason (failed). The
*trusted* text is only what the lead cannot type (``drafter.trusted_text``): the owner's name,
email and signature, the lifecycle stage, and the template draft rendered with every lead-typed
field replaced by a placeholder. Links may also be on ``LLM_ALLOWED_LINK_DOMAINS``. Anything a
rule looks for (a link, an address, a phone number, a price, a date) is allowed only if it
appears there: one that comes only from what the lead typed (the message, the page URI, the
company, the names, the email) is refused, since whoever submits the form chooses all of them.
The greeting uses the lead's first name (``first_name``), and ``no_foreign_email`` also allows
``recipient``, the address the draft is sent to: telling the lead their own address is harmless.

| rule | refuses |
|---|---|
| ``no_foreign_link`` | a URL or domain not in the trusted text nor on LLM_ALLOWED_LINK_DOMAINS |
| ``no_foreign_email`` | an email address not in the trusted text, other than the recipient's |
| ``no_foreign_phone`` | a phone number not in the trusted text |
| ``no_invented_price`` | a price, percentage, discount or "free" offer not in the trusted text |
| ``no_invented_date`` | a date, weekday or deadline not in the trusted text |
| ``length_bounds`` | a subject outside 3-150 characters or on two lines; a body outside 40-3000 |
| ``addressed_to_lead`` | an opening line without the lead's first name (or with an address in it) |
| ``signed_by_owner`` | no owner signature near the end, when the lead has an owner |
| ``no_prompt_echo`` | eight or more consecutive words of the system prompt, or its data keys |
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SUBJECT_CHARS = (3, 150)
BODY_CHARS = (40, 3000)
ECHO_WORDS = 8


@dataclass(frozen=True)
class GuardInput:
    subject: str
    body: str
    first_name: str
    signature: str
    trusted: str
    system_prompt: str
    allowed_domains: tuple[str, ...] = field(default_factory=tuple)
    #: The lead's address, which the draft is sent to: allowed by no_foreign_email, and a fact
    #: for no other rule (the lead typed it).
    recipient: str = ""

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


@dataclass(frozen=True)
class GuardResult:
    rule: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "passed": self.passed, "detail": self.detail}


def _deobfuscate(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s*[\[(]\s*(?:\.|dot)\s*[\])]\s*", ".", text, flags=re.IGNORECASE)
    text = re.sub(r"\s*[\[(]\s*(?:@|at)\s*[\])]\s*", "@", text, flags=re.IGNORECASE)
    return re.sub(r"\bhxxp", "http", text, flags=re.IGNORECASE)


_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`)\]]+|\bwww\.[^\s<>\"'`)\]]+", re.IGNORECASE)
_TLDS = (
    "com|net|org|io|co|ai|app|dev|info|biz|me|us|uk|de|fr|es|it|nl|ru|cn|jp|xyz|top|link|"
    "click|site|online|shop|store|tk|ml|ga|cf|gq|ly|to|gg|ws|cc|tv|eu|ch|at|be|se|no|pl|br|in|"
    "au|ca|ir|su|pw|live|page|zip|mov|su"
)
_DOMAIN = re.compile(
    rf"\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})\b(?:/[^\s<>\"'`)\]]*)?",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\w/])\+?\(?\d[\d\s().-]{5,}\d(?![\w/])")
_ISO_DATE = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b")
_NUM_DATE = re.compile(r"\b\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?\b")

_PRICE = re.compile(
    r"[$€£¥₹]\s?\d[\d.,]*|\d[\d.,]*\s?(?:[$€£¥₹]|usd|eur|gbp|chf|dollars?|euros?|pounds?|"
    r"dólares|rubles?|рубл\w*)\b|\d+(?:[.,]\d+)?\s?(?:%|percent|per cent|prozent|por ciento|"
    r"pour cent|per cento|процент\w*)|\b(?:discounts?|rebates?|coupons?|promo codes?|rabatt\w*|"
    r"descuentos?|remises?|réductions?|sconto|sconti|desconto|скидк\w*|折扣|割引|free of charge|"
    r"for free|gratis|kostenlos|gratuit\w*|бесплатн\w*)\b",
    re.IGNORECASE,
)
_MONTHS = (
    "january|february|april|june|july|august|september|october|november|december|"
    "jan|feb|apr|jun|jul|aug|sept?|oct|nov|dec|"
    "januar|februar|märz|juni|juli|oktober|dezember|"
    "janvier|février|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre|"
    "gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|"
    "janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|dezembro|"
    "января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря"
)
_WEEKDAYS = (
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    "montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|"
    "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|"
    "lunes|martes|miércoles|jueves|viernes|sábado|domingo|"
    "lunedì|martedì|mercoledì|giovedì|venerdì|"
    "понедельник\\w*|вторник\\w*|среду|среда|четверг\\w*|пятниц\\w*"
)
_DATE_WORDS = re.compile(
    rf"\b(?:{_MONTHS}|{_WEEKDAYS}|tomorrow|morgen|demain|mañana|domani|завтра|deadline|"
    r"end of (?:the )?(?:week|month|quarter|year)|by (?:next|this) \w+)\b"
    r"|\b(?:May|March|Mars|Mai)\s+\d{1,2}\b|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:May|March|mars|mai)\b"
    r"|\b\d{1,2}(?:st|nd|rd|th)\b|\b20\d\d\b|明日|до \d",
    re.IGNORECASE,
)
_PROMPT_KEYS = ("lead_message", "template_draft", "reply_language")


def _norm(text: str) -> str:
    return " ".join(_deobfuscate(text).lower().split())


def _host(url: str) -> str:
    if "://" not in url:
        url = f"http://{url}"
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _allowed_host(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith(f".{d}") for d in domains)


def links_in(text: str) -> list[str]:
    text = _EMAIL.sub(" ", _deobfuscate(text))
    found = [m.group().rstrip(".,;:!?") for m in _URL.finditer(text)]
    text = _URL.sub(" ", text)
    found += [m.group().rstrip(".,;:!?") for m in _DOMAIN.finditer(text)]
    return found


def emails_in(text: str) -> list[str]:
    return [m.group().lower().rstrip(".") for m in _EMAIL.finditer(_deobfuscate(text))]


def _without_emails(text: str) -> str:
    """Deobfuscated text with its email addresses blanked: an address is no_foreign_email's
    business, not a phone number, price or date (``ana.2027@…`` is the recipient's address)."""
    return _EMAIL.sub(" ", _deobfuscate(text))


def phones_in(text: str) -> list[str]:
    text = _without_emails(text)
    text = _ISO_DATE.sub(" ", _NUM_DATE.sub(" ", text))
    phones = []
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 7 <= len(digits) <= 15:
            phones.append(digits)
    return phones


def no_foreign_link(g: GuardInput) -> str | None:
    trusted_hosts = {_host(link) for link in links_in(g.trusted)}
    for link in links_in(g.text):
        host = _host(link)
        if not host or not (host in trusted_hosts or _allowed_host(host, g.allowed_domains)):
            return f"link {link[:80]} is neither in the context nor on LLM_ALLOWED_LINK_DOMAINS"
    return None


def no_foreign_email(g: GuardInput) -> str | None:
    trusted = set(emails_in(g.trusted)) | set(emails_in(g.recipient))
    for address in emails_in(g.text):
        if address not in trusted:
            return f"email address {address[:80]} is not in the context"
    return None


def no_foreign_phone(g: GuardInput) -> str | None:
    trusted = set(phones_in(g.trusted))
    for digits in phones_in(g.text):
        if digits not in trusted:
            return f"phone number {digits} is not in the context"
    return None


def _not_in_trusted(pattern: re.Pattern[str], g: GuardInput) -> str | None:
    trusted = _norm(g.trusted)
    for match in pattern.finditer(_without_emails(g.text)):
        if " ".join(match.group().lower().split()) not in trusted:
            return match.group().strip()
    return None


def no_invented_price(g: GuardInput) -> str | None:
    found = _not_in_trusted(_PRICE, g)
    return f"price or discount {found!r} is not in the context" if found else None


def no_invented_date(g: GuardInput) -> str | None:
    found = _not_in_trusted(_DATE_WORDS, g) or _not_in_trusted(_NUM_DATE, g)
    found = found or _not_in_trusted(_ISO_DATE, g)
    return f"date {found!r} is not in the context" if found else None


def length_bounds(g: GuardInput) -> str | None:
    low, high = SUBJECT_CHARS
    if "\n" in g.subject.strip() or not low <= len(g.subject.strip()) <= high:
        return f"subject has {len(g.subject.strip())} characters (allowed {low}-{high}, one line)"
    low, high = BODY_CHARS
    if not low <= len(g.body.strip()) <= high:
        return f"body has {len(g.body.strip())} characters (allowed {low}-{high})"
    return None


def _opening(body: str) -> str:
    return next((line.strip() for line in body.splitlines() if line.strip()), "")


def addressed_to_lead(g: GuardInput) -> str | None:
    opening = _opening(g.body)
    if "@" in _deobfuscate(opening):
        return "the opening line names an email address"
    name = g.first_name.strip()
    if name and name.casefold() not in opening.casefold():
        return f"the opening line does not address the lead ({name})"
    return None


def signed_by_owner(g: GuardInput) -> str | None:
    signature = next((line.strip() for line in g.signature.splitlines() if line.strip()), "")
    if not signature:
        return None
    if signature.casefold() not in g.body.strip()[-400:].casefold():
        return f"not signed by the owner ({signature})"
    return None


def no_prompt_echo(g: GuardInput) -> str | None:
    text = _norm(g.text)
    for key in _PROMPT_KEYS:
        if key in text:
            return f"repeats the prompt's data key {key!r}"
    words = re.findall(r"\w+", g.system_prompt.lower())
    squashed = " ".join(re.findall(r"\w+", text))
    for i in range(len(words) - ECHO_WORDS + 1):
        if " ".join(words[i : i + ECHO_WORDS]) in squashed:
            return f"repeats the system prompt ({' '.join(words[i : i + ECHO_WORDS])!r} …)"
    return None


RULES: dict[str, Callable[[GuardInput], str | None]] = {
    "no_foreign_link": no_foreign_link,
    "no_foreign_email": no_foreign_email,
    "no_foreign_phone": no_foreign_phone,
    "no_invented_price": no_invented_price,
    "no_invented_date": no_invented_date,
    "length_bounds": length_bounds,
    "addressed_to_lead": addressed_to_lead,
    "signed_by_owner": signed_by_owner,
    "no_prompt_echo": no_prompt_echo,
}


def run(g: GuardInput) -> list[GuardResult]:
    """Every rule's result, in RULES order."""
    results = []
    for rule, check in RULES.items():
        failure = check(g)
        results.append(GuardResult(rule, failure is None, failure or ""))
    return results
