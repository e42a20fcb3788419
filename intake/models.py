from __future__ import annotations

from django.db import models


def non_null_index(field: str, name: str) -> models.Index:
    """An index of a foreign key that is almost always NULL, without the NULLs: a row that
    has none costs no index entry (issue #16). ``= value`` lookups, the ORM's cascades and
    reverse relations included, still use it: they imply IS NOT NULL."""
    return models.Index(
        fields=[field], name=name, condition=models.Q(**{f"{field}__isnull": False})
    )


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
    lead = models.ForeignKey(
        "Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submissions",
        help_text="The lead this delivery started or joined (intake/identity.py).",
    )
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="Personal data erased (HubSpot privacy deletion)."
    )
    workflow_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=(
            "When it was stored or last replayed: never earlier than any of its workflows' "
            "created_at (NULL: not recorded), so the dashboard's date filter can narrow by "
            "form and date in one index before it looks at workflows (issue #16)."
        ),
    )

    class Meta:
        db_table = "form_submissions"
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["email"], name="submission_email_idx"),
            models.Index(fields=["form_id", "workflow_at"], name="submission_form_idx"),
            # No company B-tree: nothing filters on a whole company, and the search uses the
            # trigram index (intake migration 0006); it cost every insert (issue #16).
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
        # "#N" is a workflow's number everywhere an operator looks: other ids say what they are.
        return f"Submission {self.pk} ({self.email or self.object_id or self.shape})"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class Lead(models.Model):
    """One person's one enquiry, however many deliveries brought it (intake/identity.py).

    Its id is the id of the submission that started it, whose first workflow is the lead's
    workflow; every later delivery of the same lead is stored and linked here, and starts
    nothing. The database decides who is first: a lead is started by claiming its keys.
    """

    id = models.BigIntegerField(primary_key=True, help_text="The id of the first submission.")
    created_at = models.DateTimeField(auto_now_add=True)
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="duplicates",
        help_text="Found to be this lead once the CRM contact was known.",
        db_index=False,  # almost always NULL: the partial index below skips the NULLs
    )

    class Meta:
        db_table = "leads"
        ordering = ["-id"]
        indexes = [non_null_index("duplicate_of", "lead_duplicate_of_idx")]

    def __str__(self) -> str:
        return f"Lead {self.pk}"


class LeadKey(models.Model):
    """One identity of a lead; unique, so two deliveries of one lead cannot both start one.

    ``contact:<contact id>``, ``conversion:<HubSpot conversionId>`` or
    ``form:<form id>:<sha256 of the email>:<time bucket>`` (no personal data in a key).
    """

    key = models.CharField(max_length=200, primary_key=True)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="keys")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "lead_keys"

    def __str__(self) -> str:
        return self.key


class NonLeadOutcome(models.TextChoices):
    IGNORED = "ignored", "Ignored (not a lead)"
    REFUSED = "refused", "Refused (malformed)"
    APPLIED = "applied", "Applied (contact lifecycle)"


class NonLeadDelivery(models.Model):
    """A delivered event that is not a lead: ignored, refused as malformed, or a contact
    lifecycle event (merge, deletion, privacy deletion) that was applied. Kept for operators;
    never a workflow. Stored once per event (the dedupe key is unique)."""

    dedupe_key = models.CharField(max_length=128, unique=True)
    outcome = models.CharField(max_length=10, choices=NonLeadOutcome.choices)
    reason = models.TextField(blank=True, default="")
    event_type = models.CharField(max_length=100, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    portal_id = models.BigIntegerField(null=True, blank=True)
    signature_version = models.CharField(max_length=4, choices=SignatureVersion.choices)
    raw_payload = models.JSONField()
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "non_lead_deliveries"
        ordering = ["-received_at"]
        verbose_name_plural = "non-lead deliveries"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=NonLeadOutcome.values),
                name="non_lead_outcome_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.outcome} {self.event_type})"


class PurgedDeliveryKey(models.Model):
    """The dedupe key of a submission ``manage.py purge`` deleted. A v1/v2 signature has no
    time, so a captured request stays valid for ever; without its submission the same bytes
    would be a new delivery (and, later, a new lead). Ingest treats a key here as stored: a
    duplicate. Keys are hashes of the body, so nothing personal is kept."""

    dedupe_key = models.CharField(max_length=128, primary_key=True)
    purged_at = models.DateTimeField()

    class Meta:
        db_table = "purged_dedupe_keys"

    def __str__(self) -> str:
        return self.dedupe_key
