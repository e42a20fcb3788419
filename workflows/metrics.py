"""Prometheus series for the workflow engine (exposed at /metrics; see docs/operations.md)."""

from prometheus_client import Counter, Histogram

STEP_SECONDS = Histogram(
    "leadline_step_duration_seconds",
    "Duration of one workflow step attempt",
    ["step", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STEP_RETRIES = Counter("leadline_step_retries_total", "Step attempts scheduled for retry", ["step"])
WORKFLOW_FAILURES = Counter(
    "leadline_workflow_failures_total", "Workflows moved to failed", ["step", "reason"]
)
SWEPT = Counter("leadline_sweeper_requeued_total", "Workflows re-enqueued by the sweeper", ["kind"])
OUTBOX_PUBLISHED = Counter(
    "leadline_outbox_published_total", "Workflows the outbox relay published to Celery"
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "leadline_outbox_publish_failures_total",
    "Outbox relay batches the broker did not take whole (retried with a backoff)",
)
