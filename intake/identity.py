"""One lead, one workflow: the identity keys of a delivery, and claiming them.

A lead reaches Leadline up to four ways: a Webhooks API event (contact id only), a workflow
"Send a webhook" body (contact id, email, sometimes the form and its conversionId), a
Forms-style post (form, email, time) and the Forms API poll (form, email, time,
conversionId, and the contact id the poll looked up by email). Each delivery names the keys
it knows:

- ``contact:<contact id>`` where the contact id is known (events, workflow bodies, polled
  submissions whose contact the poll found: NormalisedItem.contact_id; the pipeline adds it
  once ``resolve_contact`` has found the contact);
- ``conversion:<conversionId>`` where HubSpot's conversion id is known;
- ``form:<hash of form id + email>:<bucket>`` for form data, for the time bucket of
  FORM_WINDOW_SECONDS it falls in and the neighbouring bucket it is nearer to, so two
  deliveries less than half a window apart always share a key.

Keys are the primary key of ``lead_keys``: the delivery that inserts a key first (INSERT …
ON CONFLICT DO NOTHING, in the transaction that stores the submission) starts the lead and
its workflow; one that finds a key taken joins that lead: stored and linked, no workflow.
The database decides, so two concurrent deliveries cannot both start the lead. Keys carry no
personal data (emails are hashed), and contact ids are the portal of HUBSPOT_ACCESS_TOKEN's.

So deliveries that share a key make one workflow row: any mix of events, workflow bodies and
the poll (its search finding the contact); a Forms-style post with the poll or with a
workflow body that carries the form fill; a Forms-style post and an event with the poll
between them (joining the post's lead, the poll brings the contact key along). The one
remaining case is a Forms-style post and an event (or a workflow body without form data)
that both arrive before anything links them: they share no key, and nothing at the door can
link them without a HubSpot call inside the webhook request. Each starts a workflow; at
``resolve_contact`` the second to claim the contact key (lead_claim_contact) ends as a
recorded duplicate, before any draft or task. A polled submission whose search missed or
failed is stored without the contact key and ends the same way. docs/hubspot-app.md
("One lead, one workflow") says this for operators.

Conversion and form keys name one form fill, so they hold for good. A contact enquires again
later, so its key holds for LEAD_CONTACT_WINDOW_HOURS (default 72, HubSpot's longest retry
span): a delivery of that contact after the window starts a new lead and takes the key over.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from intake.models import FormSubmission, Lead, LeadKey
from intake.payloads import NormalisedItem
from workflows.models import Workflow

FORM_WINDOW_SECONDS = 600
_ROWS_PER_STATEMENT = 300


def contact_key(contact_id: str) -> str:
    return f"contact:{contact_id}"


def email_and_error(item: NormalisedItem) -> tuple[str, str]:
    """The email to store and why it is missing, if it is: one longer than its column is not
    stored (intake/services.py), so it makes no form key either (lead_keys)."""
    max_length = FormSubmission._meta.get_field("email").max_length
    if len(item.email) > max_length:
        return "", f"email longer than {max_length} characters ({item.email[:40]}...)"
    return item.email, item.email_error


def lead_keys(item: NormalisedItem) -> list[str]:
    """The item's identity keys, strongest first (a contact id beats a conversion id beats
    form data when two keys name different leads)."""
    keys = []
    contact = item.object_id if item.shape in ("event", "workflow") else item.contact_id
    if contact:
        keys.append(contact_key(contact))
    if item.conversion_id:
        keys.append("conversion:" + _digest(item.conversion_id))
    # An email too long for its column is not stored, so not a key either.
    email, _ = email_and_error(item)
    if email and item.form_id and item.submitted_at:
        person = _digest(f"{item.form_id}\n{email}")
        seconds = item.submitted_at.timestamp()
        bucket, offset = divmod(int(seconds), FORM_WINDOW_SECONDS)
        neighbour = bucket - 1 if offset < FORM_WINDOW_SECONDS / 2 else bucket + 1
        keys += [f"form:{person}:{bucket}", f"form:{person}:{neighbour}"]
    return keys


def items_of_contacted_leads(items: Sequence[NormalisedItem]) -> set[str]:
    """Dedupe keys of the items that would join a lead which already holds a contact key.

    Such an item needs no contact id of its own (the Forms poll skips its search): its
    conversion or form key joins it to that lead, and the lead's contact key already meets
    the contact's events. An item whose keys a lead without a contact key holds (a Forms-style
    post not resolved yet) is not among them: given its contact id, it joins that lead and
    brings the contact key with it (leads_join moves won keys), so a later event joins too.
    """
    keys = {item.dedupe_key: lead_keys(item) for item in items}
    holders = dict(
        LeadKey.objects.filter(key__in={k for ks in keys.values() for k in ks}).values_list(
            "key", "lead_id"
        )
    )
    if not holders:
        return set()
    contacted = set(
        LeadKey.objects.filter(
            lead_id__in=set(holders.values()), key__startswith="contact:"
        ).values_list("lead_id", flat=True)
    )
    return {
        dedupe_key
        for dedupe_key, ks in keys.items()
        if any(holders.get(k) in contacted for k in ks)
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass
class Claims:
    #: Submissions that started a lead (lead id == submission id): these get a workflow.
    started: list[int] = field(default_factory=list)
    #: Submission id -> the lead it joined.
    joined: dict[int, int] = field(default_factory=dict)


def leads_claim(new: Sequence[tuple[int, NormalisedItem]]) -> Claims:
    """Start or join the lead of each newly stored submission; call inside its transaction.

    Every submission first starts a lead of its own and claims its keys, all in one INSERT
    in key order (so concurrent batches take the same locks in the same order). A key that
    is taken (by another delivery, committed or not: the INSERT waits for it) means the
    submission joins the holder of its strongest taken key (leads_join). The portable path;
    PostgreSQL does the same inside intake/services.py's one statement.
    """
    claims = Claims()
    if not new:
        return claims
    Lead.objects.bulk_create([Lead(id=sid) for sid, _ in new])
    keys = {sid: lead_keys(item) for sid, item in new}
    won = _insert_keys(sorted((key, sid) for sid, item_keys in keys.items() for key in item_keys))
    claims.started = [sid for sid, _ in new if all(won.get(k) == sid for k in keys[sid])]
    FormSubmission.objects.filter(pk__in=claims.started).update(lead_id=F("id"))
    claims.joined = leads_join({sid: keys[sid] for sid, _ in new if sid not in claims.started})
    return claims


def leads_join(candidates: dict[int, list[str]]) -> dict[int, int]:
    """Submissions (id -> its keys, in submission order) that lost a key to another lead:
    each joins the holder of its strongest lost key, its won keys move there, and its own
    lead row goes. Returns submission id -> the lead it joined. Both storage paths use it."""
    if not candidates:
        return {}
    holders = dict(
        LeadKey.objects.filter(
            key__in={k for keys in candidates.values() for k in keys}
        ).values_list("key", "lead_id")
    )
    moved: dict[int, int] = {}
    for sid, keys in sorted(candidates.items()):
        lost = [k for k in keys if holders.get(k) != sid]
        target = holders[lost[0]]
        target = moved.get(target, target)  # an earlier submission of this batch joined too
        moved[sid] = target
        LeadKey.objects.filter(lead_id=sid).update(lead_id=target)
    originals = dict(
        Lead.objects.filter(pk__in=set(moved.values()), duplicate_of__isnull=False).values_list(
            "pk", "duplicate_of_id"
        )
    )
    joined = {sid: originals.get(lead, lead) for sid, lead in moved.items()}
    by_lead: dict[int, list[int]] = defaultdict(list)
    for sid, lead in joined.items():
        by_lead[lead].append(sid)
    for lead, sids in by_lead.items():
        FormSubmission.objects.filter(pk__in=sids).update(lead_id=lead)
    Lead.objects.filter(pk__in=joined).delete()
    return joined


#: ON CONFLICT clause of every key claim: a contact key older than the contact window is
#: taken over (the contact enquires again); any other taken key stays with its lead.
CLAIM_CONFLICT = (
    "ON CONFLICT (key) DO UPDATE SET lead_id = excluded.lead_id, created_at = excluded.created_at "
    "WHERE substr(lead_keys.key, 1, 8) = 'contact:' AND lead_keys.created_at < %s "
    "RETURNING key, lead_id"
)


def contact_window_start() -> datetime:
    """Contact keys claimed before this no longer hold: a new enquiry starts a new lead."""
    return timezone.now() - timedelta(hours=settings.LEAD_CONTACT_WINDOW_HOURS)


def _insert_keys(rows: list[tuple[str, int]]) -> dict[str, int]:
    """Claim the (key, lead) rows that are free (or an expired contact key); returns key ->
    lead of the rows claimed. One row per key and statement (DO UPDATE may touch a row
    once): the smallest lead id wins a key that two rows want."""
    first: dict[str, int] = {}
    for key, sid in sorted(rows):
        first.setdefault(key, sid)
    unique = list(first.items())
    won: dict[str, int] = {}
    created = LeadKey._meta.get_field("created_at")
    now = created.get_db_prep_save(timezone.now(), connection)
    expired = created.get_db_prep_save(contact_window_start(), connection)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for start in range(0, len(unique), _ROWS_PER_STATEMENT):
            chunk = unique[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {quote(LeadKey._meta.db_table)} (key, lead_id, created_at) "  # noqa: S608
                f"VALUES {values} {CLAIM_CONFLICT}",
                [*(param for key, sid in chunk for param in (key, sid, now)), expired],
            )
            won.update(cursor.fetchall())
    return won


@dataclass(frozen=True)
class ContactClaim:
    lead_id: int
    holder_id: int

    @property
    def is_duplicate(self) -> bool:
        return self.holder_id != self.lead_id


def lead_claim_contact(*, lead_id: int, contact_id: str) -> ContactClaim:
    """Claim ``contact:<id>`` for a lead once its contact is known (the pipeline's resolve
    step). If another lead holds it, this lead is marked its duplicate and the caller ends
    its workflow; the key's holder is the one lead that goes on. Idempotent."""
    won = _insert_keys([(contact_key(contact_id), lead_id)])  # one statement: atomic alone
    if won:
        return ContactClaim(lead_id, lead_id)
    with transaction.atomic():
        holder = LeadKey.objects.get(key=contact_key(contact_id)).lead_id
        original = Lead.objects.filter(pk=holder).values_list("duplicate_of_id", flat=True).first()
        if holder == lead_id or original == lead_id:
            return ContactClaim(lead_id, lead_id)
        Lead.objects.filter(pk=lead_id).update(duplicate_of=holder)
        return ContactClaim(lead_id, holder)


def workflows_of_leads(lead_ids: set[int]) -> dict[int, int]:
    """Lead id -> its workflow: the first non-replay run of the submission that started it."""
    found: dict[int, int] = {}
    rows = (
        Workflow.objects.filter(submission_id__in=lead_ids, replay_of__isnull=True)
        .order_by("-id")
        .values_list("submission_id", "id")
    )
    for lead_id, workflow_id in rows:
        found[lead_id] = workflow_id  # ascending wins: the first run
    return found
