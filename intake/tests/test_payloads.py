import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.payloads import NormalisedItem, PayloadError, parse_body, parse_forms_api_submission

HUBSPOT = Path(__file__).resolve().parents[3] / "shared" / "hubspot"


def sample(name: str) -> bytes:
    return (HUBSPOT / name).read_bytes()


def only(items: list[NormalisedItem]) -> NormalisedItem:
    assert len(items) == 1
    return items[0]


def event(**overrides: object) -> dict:
    return {
        "eventId": 7,
        "portalId": 62515,
        "occurredAt": 1764201600000,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 5101,
    } | overrides


def as_body(value: object) -> bytes:
    return json.dumps(value).encode()


def form(*fields: tuple[str, object], **extra: object) -> bytes:
    return as_body({"fields": [{"name": n, "value": v} for n, v in fields], **extra})


def test_contact_creation_event_is_normalised() -> None:
    item = only(parse_body(sample("events-contact-creation.json")))
    assert item.shape == "event"
    assert item.event_type == "contact.creation"
    assert item.object_id == "123"
    assert item.portal_id == 62515
    assert item.submitted_at == datetime(2019, 7, 26, 4, 0, tzinfo=UTC)
    assert (item.email, item.email_error) == ("", "")
    assert item.raw == json.loads(sample("events-contact-creation.json"))[0]
    assert item.dedupe_key.startswith("evt:")
    assert len(item.dedupe_key) <= 128


def test_event_batch_accepts_both_type_spellings() -> None:
    items = parse_body(sample("events-batch.json"))
    assert [(i.event_type, i.object_id) for i in items] == [
        ("contact.creation", "5101"),
        ("contact.propertyChange", "5101"),
        ("contact.creation", "5102"),
    ]
    assert [i.submitted_at for i in items] == [
        datetime(2025, 11, 27, 0, 0, 0, tzinfo=UTC),
        datetime(2025, 11, 27, 0, 0, 1, tzinfo=UTC),
        datetime(2025, 11, 27, 0, 0, 5, tzinfo=UTC),
    ]
    assert {i.portal_id for i in items} == {62515}
    assert [i.raw["eventId"] for i in items] == [1001, 1002, 1001]


def test_events_sharing_an_event_id_get_distinct_keys() -> None:
    items = parse_body(sample("events-batch.json"))
    assert items[0].raw["eventId"] == items[2].raw["eventId"]
    assert len({i.dedupe_key for i in items}) == 3


def test_redelivered_event_keeps_its_key() -> None:
    first = only(parse_body(as_body([event(attemptNumber=0)])))
    retry = only(parse_body(as_body([event(attemptNumber=4)])))
    assert first.dedupe_key == retry.dedupe_key


def test_property_changes_to_different_values_get_distinct_keys() -> None:
    change = event(subscriptionType="contact.propertyChange", propertyName="lifecyclestage")
    body = as_body([change | {"propertyValue": "lead"}, change | {"propertyValue": "sql"}])
    items = parse_body(body)
    assert items[0].dedupe_key != items[1].dedupe_key


def test_separator_inside_a_property_value_cannot_collide() -> None:
    change = event(subscriptionType="contact.propertyChange")
    items = parse_body(
        as_body(
            [
                change | {"propertyName": "a|b", "propertyValue": "c"},
                change | {"propertyName": "a", "propertyValue": "b|c"},
            ]
        )
    )
    assert items[0].dedupe_key != items[1].dedupe_key


def test_workflow_v3_contact_is_normalised() -> None:
    item = only(parse_body(sample("workflow-contact-v3.json")))
    assert item.shape == "workflow"
    assert item.email == "ada.lovelace@example.com"
    assert item.email_error == ""
    assert (item.first_name, item.last_name) == ("Ada", "Lovelace")
    assert item.company == "Analytical Engines Ltd"
    assert item.phone == "+44 20 7946 0000"
    assert item.message == "We'd like a demo for a team of 40 next week."
    assert item.object_id == "5101"
    assert item.portal_id is None
    assert item.form_id == ""
    assert item.page_uri == ""
    assert item.submitted_at == datetime(2026, 11, 27, 9, 14, 3, 211000, tzinfo=UTC)
    assert item.event_type == ""
    assert item.raw == json.loads(sample("workflow-contact-v3.json"))
    assert item.dedupe_key.startswith("workflow:")


def test_workflow_legacy_contact_is_normalised() -> None:
    item = only(parse_body(sample("workflow-contact-legacy.json")))
    assert item.shape == "workflow"
    assert item.email == "jose.nunez@example.org"
    assert (item.first_name, item.last_name) == ("José", "Núñez")
    assert item.company == "Ñandú Logística"
    assert item.phone == ""
    assert item.message == "¿Tienen integración con SAP?"
    assert item.object_id == "5102"
    assert item.portal_id == 62515
    assert item.form_id == "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"
    assert item.page_uri == "https://www.example.com/contact?utm_source=ads"
    assert item.submitted_at == datetime(2025, 11, 27, 9, 20, tzinfo=UTC)
    assert item.raw == json.loads(sample("workflow-contact-legacy.json"))


def test_forms_submission_is_normalised() -> None:
    item = only(parse_body(sample("forms-submission.json")))
    assert item.shape == "forms"
    assert item.email == "grace@navy.example.mil"
    assert (item.first_name, item.last_name) == ("Grace", "Hopper")
    assert item.company == "Compiler Works"
    assert item.message == "Interested in pricing for 3 sites."
    assert item.phone == ""
    assert item.portal_id == 62515
    assert item.form_id == "4f2b7c1e-9a3d-4b8e-8f6a-2c1d0e9b7a55"
    assert item.page_uri == "https://www.example.com/pricing"
    assert item.submitted_at == datetime(2025, 11, 27, 9, 20, tzinfo=UTC)
    assert item.object_id == ""
    assert item.raw == json.loads(sample("forms-submission.json"))
    assert item.dedupe_key.startswith("forms:")


@pytest.mark.parametrize(
    "name",
    [
        "events-contact-creation.json",
        "events-batch.json",
        "workflow-contact-v3.json",
        "workflow-contact-legacy.json",
        "forms-submission.json",
    ],
)
def test_same_body_twice_gives_the_same_keys(name: str) -> None:
    first = [i.dedupe_key for i in parse_body(sample(name))]
    again = [i.dedupe_key for i in parse_body(sample(name))]
    assert first == again
    assert all(len(key) <= 128 for key in first)


def test_key_ignores_json_formatting_but_not_content() -> None:
    body = json.loads(sample("workflow-contact-v3.json"))
    compact = only(parse_body(json.dumps(body, separators=(",", ":")).encode()))
    pretty = only(parse_body(json.dumps(body, indent=4, sort_keys=True).encode()))
    assert compact.dedupe_key == pretty.dedupe_key
    body["properties"]["lastmodifieddate"] = "2026-11-28T00:00:00Z"
    assert only(parse_body(as_body(body))).dedupe_key != compact.dedupe_key


def test_forms_take_portal_and_form_from_the_query_string() -> None:
    body = form(("email", "a@example.com"))
    item = only(parse_body(body, query={"portalId": "62515", "formId": "f-1"}))
    assert (item.portal_id, item.form_id) == (62515, "f-1")
    other = only(parse_body(body, query={"portal_id": "62515", "form_id": "f-2"}))
    assert (other.portal_id, other.form_id) == (62515, "f-2")
    assert item.dedupe_key != other.dedupe_key


def test_body_ids_win_over_the_query_string() -> None:
    body = form(("email", "a@example.com"), portalId=1, formId="body-form")
    item = only(parse_body(body, query={"portalId": "2", "formGuid": "query-form"}))
    assert (item.portal_id, item.form_id) == (1, "body-form")


def test_forms_map_alternative_field_names() -> None:
    item = only(
        parse_body(
            form(
                ("EMAIL", " Mixed@Example.COM "),
                ("mobilephone", "+1 555 0100"),
                ("what_can_we_help_you_with", "A quote"),
            )
        )
    )
    assert item.email == "mixed@example.com"
    assert item.phone == "+1 555 0100"
    assert item.message == "A quote"


def test_invalid_email_is_kept_with_a_reason() -> None:
    item = only(parse_body(form(("email", "not-an-email"), ("firstname", "Ann"))))
    assert item.email == ""
    assert item.email_error == "invalid email 'not-an-email'"
    assert item.first_name == "Ann"


def test_missing_email_is_reported() -> None:
    item = only(parse_body(as_body({"id": "9", "properties": {"firstname": "Ann"}})))
    assert (item.email, item.email_error) == ("", "missing email")


def test_text_fields_drop_characters_postgres_cannot_store() -> None:
    item = only(parse_body(b'{"fields":[{"name":"firstname","value":"A\\u0000n\\ud800n"}]}'))
    assert item.first_name == "An?n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[NaN]", "not valid JSON"),
        (b"[]", "empty array"),
        (b'{"hello": "world"}', "expected a Webhooks API event array"),
        (b'"just a string"', "expected a Webhooks API event array"),
        (b"[1, 2]", "event 0 is not an object"),
        (b'[{"objectId": 1}]', "lacks subscriptionType"),
        (b'[{"subscriptionType": "contact.creation", "objectId": {}}]', "lacks objectId"),
        (b'{"fields": ["email"]}', "form field 0"),
    ],
)
def test_unacceptable_bodies_are_rejected(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_body(body)


def test_a_field_that_is_not_an_object_is_named_in_the_forms_shapes_own_words() -> None:
    with pytest.raises(PayloadError) as posted:
        parse_body(b'{"fields": [{"name": "email", "value": "a@b.co"}, "x"]}')
    assert str(posted.value) == "form field 1 is not a {name, value} object"
    with pytest.raises(PayloadError) as polled:
        parse_forms_api_submission({"values": ["x"]}, portal_id=1, form_id="f")
    assert str(polled.value) == "Forms API value 0 is not a {name, value} object"


def test_more_than_max_events_is_rejected() -> None:
    parse_body(as_body([event(objectId=n) for n in range(100)]))
    with pytest.raises(PayloadError, match="101 events"):
        parse_body(as_body([event(objectId=n) for n in range(101)]))
    with pytest.raises(PayloadError, match="3 events"):
        parse_body(as_body([event(objectId=n) for n in range(3)]), max_events=2)


@pytest.mark.parametrize("depth", [40, 900, 100_000])
def test_deeply_nested_body_is_rejected(depth: int) -> None:
    with pytest.raises(PayloadError, match="nested"):
        parse_body(b"[" * depth + b"]" * depth)
    nested = b'{"properties": {"email": ' + b"[" * depth + b"]" * depth + b"}}"
    with pytest.raises(PayloadError, match="nested"):
        parse_body(nested)


def test_items_are_immutable() -> None:
    item = only(parse_body(sample("forms-submission.json")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.email = "x@example.com"  # type: ignore[misc]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
EVENTISH = st.fixed_dictionaries(
    {"subscriptionType": st.text(), "objectId": JSON},
    optional={"portalId": JSON, "occurredAt": JSON, "eventId": JSON, "propertyValue": JSON},
)
SHAPED = st.one_of(
    st.lists(EVENTISH, max_size=3),
    st.fixed_dictionaries({"properties": st.dictionaries(st.text(), JSON)}, optional={"id": JSON}),
    st.fixed_dictionaries(
        {"fields": st.lists(JSON, max_size=4)},
        optional={"submittedAt": JSON, "context": JSON, "portalId": JSON, "formId": JSON},
    ),
)


@given(
    body=st.one_of(st.binary(max_size=200), JSON.map(as_body), SHAPED.map(as_body)),
    query=st.dictionaries(st.sampled_from(["portalId", "formId", "x"]), st.text(), max_size=3),
)
def test_parse_body_only_returns_items_or_raises_payload_error(
    body: bytes, query: dict[str, str]
) -> None:
    try:
        items = parse_body(body, query=query)
    except PayloadError:
        return
    assert items
    for item in items:
        assert isinstance(item, NormalisedItem)
        assert len(item.dedupe_key) <= 128
        assert item.submitted_at is None or item.submitted_at.tzinfo is not None
        assert "\x00" not in item.first_name + item.email + item.message


def test_a_privacy_deletion_and_its_deletion_are_two_events() -> None:
    # One GDPR delete in HubSpot sends both, for the same contact at the same time: the
    # deletion must not be taken for a redelivery of the privacy deletion (or the erasure
    # would be dropped as a duplicate when the deletion is stored first).
    both = [event(subscriptionType=t) for t in ("contact.deletion", "contact.privacyDeletion")]
    items = parse_body(as_body(both))
    assert items[0].dedupe_key != items[1].dedupe_key


def test_objects_of_two_types_with_one_id_are_two_events() -> None:
    # Object ids are unique only within a type: a contact 42 and a deal 42.
    generic = event(subscriptionType="object.creation", objectId=42)
    items = parse_body(as_body([generic | {"objectTypeId": t} for t in ("0-1", "0-3")]))
    assert items[0].dedupe_key != items[1].dedupe_key


def test_a_workflow_custom_body_is_a_workflow_lead() -> None:
    # "Send a webhook" set to *Customize request body*: the chosen properties, flat, under
    # the keys the HubSpot user typed.
    body = {
        "Email": "Ada@Example.com",
        "First Name": "Ada",
        "last-name": "Lovelace",
        "company": "Analytical Engines",
        "message": "A demo, please.",
        "hs_object_id": "5101",
        "portalId": 62515,
    }
    item = only(parse_body(as_body(body)))
    assert item.shape == "workflow"
    assert (item.email, item.first_name, item.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert (item.company, item.message) == ("Analytical Engines", "A demo, please.")
    assert (item.object_id, item.portal_id) == ("5101", 62515)
    assert item.raw == body


@pytest.mark.parametrize(
    "body",
    [
        {"hello": "world"},  # names no email and no record
        {"email": "ada@example.com", "fields": "x", "extra": {"nested": 1}},  # not flat
    ],
)
def test_a_flat_object_without_a_lead_is_no_custom_body(body) -> None:
    with pytest.raises(PayloadError, match="custom body"):
        parse_body(as_body(body))


def test_a_custom_body_is_recognised_by_its_content_whenever_it_comes_again() -> None:
    # A HubSpot retry (up to 3 days later) or a replayed capture is the same delivery; a
    # window in the key once let a retry across its edge start a second lead.
    body = as_body({"email": "ada@example.com", "firstname": "Ada"})
    assert only(parse_body(body)).dedupe_key == only(parse_body(body)).dedupe_key
    other = as_body({"email": "ada@example.com", "recent_conversion_date": "1764493200000"})
    assert only(parse_body(other)).dedupe_key != only(parse_body(body)).dedupe_key
