"""What Leadline remembers about HubSpot itself: names for ids, the account's time zone, and
the Forms poll's progress."""

from __future__ import annotations

from django.db import models


class NameKind(models.TextChoices):
    FORM = "form", "Form"
    OWNER = "owner", "Owner"


class HubSpotName(models.Model):
    """The display name of a HubSpot form or owner, as HubSpot last told us.

    Refreshed when older than a day or missing (workflows.hubspot.names). ``name`` is empty
    when HubSpot answered 404: the id is then shown as it is, and asked about again next day.
    """

    kind = models.CharField(max_length=10, choices=NameKind.choices)
    hubspot_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    fetched_at = models.DateTimeField()

    class Meta:
        db_table = "hubspot_name"
        constraints = [
            models.UniqueConstraint(fields=["kind", "hubspot_id"], name="hubspot_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.hubspot_id}: {self.name or '?'}"


class HubSpotAccount(models.Model):
    """The HubSpot account the token belongs to, as GET /account-info/v3/details last said.

    Its time zone is when HubSpot's daily API limit resets (midnight there); it is learnt ahead
    of time (workflows.hubspot.account), since after a 429 DAILY HubSpot refuses every call.
    """

    portal_id = models.BigIntegerField(unique=True)
    time_zone = models.CharField(max_length=64)
    fetched_at = models.DateTimeField()

    class Meta:
        db_table = "hubspot_account"

    def __str__(self) -> str:
        return f"account {self.portal_id} ({self.time_zone})"


class FormHighWater(models.Model):
    """The newest submission time the Forms poll has fully read for one form.

    The next run pages newest-first and stops at the first submission at or before this mark
    (less an overlap, so a submission HubSpot lists a little late is still seen).
    """

    form_id = models.CharField(max_length=64, unique=True)
    submitted_at_ms = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "hubspot_form_high_water"

    def __str__(self) -> str:
        return f"{self.form_id} ≤ {self.submitted_at_ms}"


class ReconcileRun(models.Model):
    """One run of the Forms poll (beat job or ``manage.py reconcile_forms``)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    dry_run = models.BooleanField(default=False)
    forms = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    known = models.PositiveIntegerField(default=0)
    ingested = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "hubspot_reconcile_run"
        indexes = [models.Index(fields=["-started_at"], name="hubspot_run_started_idx")]

    def __str__(self) -> str:
        return f"reconcile {self.started_at:%Y-%m-%d %H:%M} ok={self.ok}"
