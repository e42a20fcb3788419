from __future__ import annotations

from django.db import models


class Shape(models.TextChoices):
    EVENT = "event", "Webhooks API event"
    WORKFLOW = "workflow", "Workflow webhook (contact)"
    FORMS = "forms", "Forms submission"


class SignatureVersion(models.TextChoices):
    V1 = "v1"
    V2 = "v2"
    V3 = "v3"
    POLL = "poll", "fetched by the Forms poll (not signed)"


class FormSubmission(models.Model):
    """One accepted HubSpot delivery item, stored exactly once (the dedupe key is unique)."""

    dedupe_key = models.CharField(max_length=128, unique=True)
    shape = models.CharField(max_length=16, choices=Shape.choices)
    signature_version = models.CharField(max_length=4, choices=SignatureVersion.choices)
    raw_payload = models.JSONField()
    email = models.CharField(max_length=254, blank=True, default="")
    email_error = models.CharField(max_length=300, blank=True, default="")
    first_name = models.CharField(max_length=200, blank=True, default="")
    last_name = models.CharField(max_length=200, blank=True, default="")
    company = models.CharField(max_length=300, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True, default="")
    form_id = models.CharField(max_length=128, blank=True, default="")
    page_uri = models.TextField(blank=True, default="")
    portal_id = models.BigIntegerField(null=True, blank=True)
    object_id = models.CharField(max_length=64, blank=True, default="")
    event_type = models.CharField(max_length=100, blank=True, default="")
    submitted_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "form_submissions"
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["email"], name="submission_email_idx"),
            models.Index(fields=["form_id", "received_at"], name="submission_form_idx"),
            models.Index(fields=["company"], name="submission_company_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(shape__in=Shape.values), name="submission_shape_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(signature_version__in=SignatureVersion.values),
                name="submission_signature_version_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.email or self.object_id or self.shape}"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)
