"""/metrics: Prometheus text format for every web and worker process, plus queue gauges.

Counters and histograms live beside the code they measure (intake/metrics.py,
workflows/metrics.py, outreach/metrics.py). With PROMETHEUS_MULTIPROC_DIR set (scripts/run.sh,
docker-compose) each process writes its samples there and this view merges them, so a
scrape sees all gunicorn workers and Celery workers, not just the one that answered. The
queue gauges are read from the database at scrape time, so they are right whichever process
answers and need no background updater.
"""

from __future__ import annotations

import glob
import hmac
import os
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import intake.metrics  # noqa: F401 - register the series even before the first webhook
import outreach.metrics  # noqa: F401
import workflows.metrics  # noqa: F401
from config.security import address_in, client_address
from workflows.models import Status, Workflow
from workflows.relay import outbox_lag_seconds


class QueueCollector(Collector):
    """Backlog gauges computed from the workflows table (each query uses an index)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        oldest_pending = Workflow.objects.filter(status=Status.PENDING).aggregate(
            oldest=Min("created_at")
        )["oldest"]
        waiting = Workflow.objects.filter(status=Status.AWAITING_APPROVAL).aggregate(
            oldest=Min("submission__received_at"), count=Count("pk")
        )
        yield _gauge(
            "leadline_pending_oldest_age_seconds",
            "Age of the oldest workflow still pending (0 when none)",
            _age(now, oldest_pending),
        )
        yield _gauge(
            "leadline_outbox_lag_seconds",
            "Age of the oldest workflow the outbox relay has not published yet (0 when none)",
            outbox_lag_seconds(now),
        )
        yield _gauge(
            "leadline_approvals_waiting",
            "Workflows awaiting a human approval",
            waiting["count"],
        )
        yield _gauge(
            "leadline_approvals_oldest_age_seconds",
            "Time since the oldest waiting lead was received (0 when none)",
            _age(now, waiting["oldest"]),
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


class _Merged(Collector):
    """Samples of every process (this container's and METRICS_EXTRA_DIRS'), summed."""

    def __init__(self, files: list[str]) -> None:
        self.files = files

    def collect(self):
        return multiprocess.MultiProcessCollector.merge(self.files, accumulate=True)


def render_metrics() -> bytes:
    if settings.PROMETHEUS_MULTIPROC_DIR:
        dirs = [settings.PROMETHEUS_MULTIPROC_DIR, *settings.METRICS_EXTRA_DIRS]
        files = [f for d in dirs for f in glob.glob(os.path.join(d, "*.db"))]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(files))
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector())
    return process_metrics + generate_latest(queue)


def is_allowed(request: HttpRequest) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>``, or a caller in METRICS_ALLOWED_CIDRS.

    The caller's address is REMOTE_ADDR, or X-Forwarded-For when REMOTE_ADDR is a proxy in
    TRUSTED_PROXY_CIDRS (config.security.client_address); no other header counts. A request
    relayed by a trusted proxy without X-Forwarded-For has no known caller and needs the token.
    """
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip(), token)
    caller = client_address(request, settings.TRUSTED_PROXY_NETWORKS)
    return address_in(caller, settings.METRICS_ALLOWED_NETWORKS)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not is_allowed(request):
        response = HttpResponse(
            "metrics: a caller in METRICS_ALLOWED_CIDRS or Authorization: Bearer <METRICS_TOKEN>\n"
        )
        response.status_code = 403
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
