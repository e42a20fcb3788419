"""Prometheus metrics for the webhook. Outcomes are a fixed, small set of label values."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter("leadline_webhooks_total", "Webhook requests by outcome", ["outcome"])
INGEST_LATENCY = Histogram(
    "leadline_webhook_ingest_seconds",
    "Time from receiving an accepted webhook to answering 202 (store and enqueue included)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS = Counter(
    "leadline_webhook_items_total",
    "Delivered items by what became of them: lead (started a workflow), joined (an existing "
    "lead), duplicate (stored before), ignored (not a lead), refused (malformed), applied "
    "(a contact merge, deletion or privacy deletion)",
    ["route"],
)
