"""Security plumbing of issue #14: what error reports show, bad Host answers, client addresses.

- ``SafeReporterFilter`` (DEFAULT_EXCEPTION_REPORTER_FILTER): Django hides settings whose
  *names* look secret; this also masks, in every setting, request.META value and frame
  variable, the userinfo of a URL, its token-like path segments and token-like query values.
  ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``EMAIL_URL`` and ``ALERT_WEBHOOK_URL`` (whose path
  is the Slack credential) are URL-shaped and not secret-named, so without this the debug page
  and error e-mails showed them in clear.
- ``BadHostMiddleware``: a request whose Host is not in ALLOWED_HOSTS gets a plain-text 400,
  whatever DEBUG says (Django's own answer under DEBUG is a debug page listing settings).
- ``client_address``: the caller's address, taking X-Forwarded-For only from a proxy in
  TRUSTED_PROXY_CIDRS; no other header (X-Real-IP, Forwarded) is ever read.
"""

from __future__ import annotations

import logging
import re
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "********"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>\\]+")
#: Query keys whose values are credentials whatever they look like.
_SECRET_QUERY_KEY = re.compile(
    r"(token|key|secret|sig|signature|pass|pwd|auth|code|credential|session)", re.IGNORECASE
)


def _token_like(value: str) -> bool:
    """A path segment or query value that may be a credential: long, or letters with digits."""
    return len(value) >= 20 or (
        len(value) >= 8 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    )


def mask_url(url: str) -> str:
    """``url`` with its userinfo, token-like path segments and query values masked.

    Scheme, host, port and harmless path segments stay, so a masked DATABASE_URL still says
    which server it points at: ``postgres://********@db:5432/leadline``.
    """
    try:
        parts = urlsplit(url)
        host_port = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host_port}" if "@" in parts.netloc else parts.netloc
    path = "/".join(MASK if _token_like(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(
        f"{key}={MASK if (_SECRET_QUERY_KEY.search(key) or _token_like(value)) else value}"
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    fragment = MASK if parts.fragment else ""
    if (netloc, path, query, fragment) == (parts.netloc, parts.path, parts.query, parts.fragment):
        return url  # nothing to mask (urlunsplit would also turn "filesystem://" into "…:")
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def mask_urls_in(text: str) -> str:
    """Every URL inside ``text`` masked by :func:`mask_url`; the rest unchanged."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


class SafeReporterFilter(SafeExceptionReporterFilter):
    """Django's filter plus URL masking of settings, request.META and frame variables."""

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):  # str subclasses too (lazy settings values)
            return mask_urls_in(str(cleansed))
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, mask_urls_in(value) if isinstance(value, str) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]


security_log = logging.getLogger("django.security.DisallowedHost")


class BadHostMiddleware:
    """First in MIDDLEWARE: an unknown Host gets ``400 Bad Request`` in plain text.

    Django would raise DisallowedHost later and, under DEBUG, answer with the debug page. The
    offending host is attacker text: it is not echoed and not logged.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            if request.path_info in _PROBES:
                # Load balancers and the container's own health check probe by IP, which is
                # never in ALLOWED_HOSTS: the probes answer whatever the Host, here, before
                # any later middleware asks for the host again. They build no URL from it.
                from config import health

                return getattr(health, _PROBES[request.path_info])(request)
            security_log.warning("Request refused: Host header not in ALLOWED_HOSTS")
            return HttpResponse(
                "Bad Request (400)\n", status=400, content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)


#: The probes' paths and their views in config.health.
_PROBES = {"/healthz": "healthz", "/readyz": "readyz"}

Network = IPv4Network | IPv6Network


def parse_cidrs(name: str, values: list[str]) -> list[Network]:
    """``values`` as networks, or ImproperlyConfigured naming ``name`` and the bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)."
            ) from None
    return networks


def _in(address, networks: list[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(request: HttpRequest, trusted_proxies: list[Network]):
    """The caller's IP address, or None when it cannot be known.

    REMOTE_ADDR, unless it is a trusted proxy: then X-Forwarded-For is read from the right,
    skipping trusted proxies, and the first other address is the client. A trusted proxy
    that sent no X-Forwarded-For relayed an unknown client: None. X-Real-IP and Forwarded
    are never read, from anyone.
    """
    try:
        remote = ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    if not _in(remote, trusted_proxies):
        return remote
    forwarded = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in forwarded if h]):
        try:
            address = ip_address(hop)
        except ValueError:
            return None
        if not _in(address, trusted_proxies):
            return address
    return None


def address_in(address, networks: list[Network]) -> bool:
    return address is not None and _in(address, networks)


def axes_client_ip(request: HttpRequest) -> str:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the same trust rule as /metrics.

    A trusted proxy that did not say who its client was counts as itself, so a flood through
    it still locks out (the proxy) rather than escaping the limit.
    """
    from django.conf import settings

    address = client_address(request, settings.TRUSTED_PROXY_NETWORKS)
    return str(address) if address is not None else request.META.get("REMOTE_ADDR", "")


def axes_lockout(request: HttpRequest, *args: object, **kwargs: object):
    """django-axes' AXES_LOCKOUT_CALLABLE: a page that says what is locked (the address, not
    the account), for how long, and what to do; axes' own answer was "Account locked"."""
    from django.conf import settings
    from django.shortcuts import render

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


class SafeExceptionReporter(ExceptionReporter):
    """DEFAULT_EXCEPTION_REPORTER: the whole debug page and error e-mail pass through
    :func:`mask_urls_in` as well, so a URL quoted in an exception message is masked too."""

    def get_traceback_html(self):
        return mask_urls_in(str(super().get_traceback_html()))

    def get_traceback_text(self):
        return mask_urls_in(str(super().get_traceback_text()))
