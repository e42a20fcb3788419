"""What each delivered item is: a lead, a contact lifecycle event, or something to ignore.

Object ids are unique only within one object type, so only contact events may ever become a
contact lookup: a deal id can name an unrelated contact. Everything that is not a lead, and
not one of the contact lifecycle events Leadline acts on, is acknowledged and kept as an
ignored delivery an operator can inspect; it never becomes a workflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from intake.payloads import NormalisedItem


class Route:
    LEAD = "lead"
    IGNORED = "ignored"
    PRIVACY_DELETION = "privacy_deletion"
    MERGE = "merge"
    DELETION = "deletion"


#: Contact events Leadline acts on whatever LEAD_EVENT_TYPES says.
LIFECYCLE = {
    "contact.privacyDeletion": Route.PRIVACY_DELETION,
    "contact.merge": Route.MERGE,
    "contact.deletion": Route.DELETION,
}


@dataclass(frozen=True)
class Decision:
    route: str
    reason: str = ""


def validate_lead_event_types(values: Iterable[str]) -> list[str]:
    """LEAD_EVENT_TYPES as settings keep it; ImproperlyConfigured names a bad entry.

    An entry is ``contact.<action>`` or ``contact.propertyChange:<property>``. Only contact
    events can be leads: any other object's id would be looked up as a contact id.
    """
    checked = []
    for value in values:
        entry = value.strip()
        if not entry:
            continue
        if not entry.startswith("contact.") or entry.split(":")[0] in LIFECYCLE:
            raise ImproperlyConfigured(
                f"LEAD_EVENT_TYPES: {entry!r} cannot start a lead; use contact.creation, "
                "contact.propertyChange or contact.propertyChange:<property>"
            )
        checked.append(entry)
    return checked


def decide(item: NormalisedItem, lead_event_types: Iterable[str]) -> Decision:
    """The route of one item. Workflow bodies and Forms posts are always leads."""
    if item.shape != "event":
        return Decision(Route.LEAD)
    subscription = item.subscription
    if subscription in LIFECYCLE:
        return Decision(LIFECYCLE[subscription])
    wanted = set(lead_event_types)
    if subscription in wanted or f"{subscription}:{item.property_name}" in wanted:
        return Decision(Route.LEAD)
    kind, _, action = subscription.partition(".")
    if kind != "contact":
        return Decision(Route.IGNORED, f"{kind} events are not leads ({item.event_type})")
    if action == "associationChange":
        return Decision(Route.IGNORED, "association changes are not leads")
    detail = f" of {item.property_name}" if item.property_name else ""
    return Decision(Route.IGNORED, f"{subscription}{detail} is not in LEAD_EVENT_TYPES")
