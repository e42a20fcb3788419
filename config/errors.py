"""The server error page (``handler500`` in config/urls.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import TemplateDoesNotExist, loader
from django.views.decorators.csrf import requires_csrf_token


@requires_csrf_token
def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """Django's ``server_error`` plus the request's id, so the operator can quote it and the
    error's log lines can be found by it (config.logging.RequestIdMiddleware sets it: the
    caller's X-Request-ID only if it looks like an id, else a fresh uuid). Like Django's, it
    renders without the request or the context processors (the error may be the database's)
    and shows nothing of the error itself: no message, no traceback, no setting."""
    request_id = getattr(request, "request_id", "")
    try:
        template = loader.get_template(template_name)
    except TemplateDoesNotExist:
        return HttpResponseServerError(b"<h1>Server Error (500)</h1>", content_type="text/html")
    return HttpResponseServerError(template.render({"request_id": request_id}))
