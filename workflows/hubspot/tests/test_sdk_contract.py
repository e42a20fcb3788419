"""Contract tests: HubSpot's official Python SDK (hubspot-api-client, pinned in
requirements-dev.txt) drives the sandbox over HTTP and reads every answer into its own models.

The SDK is generated from HubSpot's public OpenAPI specs, so it is outside truth: where the
SDK and the sandbox disagree, the sandbox is wrong. Client-side validation is on (the SDK's
default is off, which lets a model with missing required fields or an unknown enum value
through): every model the SDK reads or a test builds is checked against the spec's required
fields and enums. Every call workflows/hubspot/client.py makes is here (contacts search/get/
create, tasks and notes create/search by marker, owners get, also archived, forms get, account
details), and the ones the sandbox offers for the SDK (contacts list, tasks/notes get, owners
list, v4 associations, forms list), and the requests Leadline's own client sends are read
into the SDK's request models. The SDK has no client for account details: that answer is
checked against HubSpot's spec (data/specs/). The Forms submissions endpoint
(form-integrations v1) has no SDK model; its shape is pinned in test_sandbox.py against
HubSpot's documented fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hubspot.crm.associations.v4
import hubspot.crm.contacts
import hubspot.crm.objects.notes
import hubspot.crm.objects.tasks
import hubspot.crm.owners
import hubspot.marketing.forms
import jsonschema
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    CollectionResponseMultiAssociatedObjectWithLabelForwardPaging,
)
from hubspot.crm.contacts import (
    ApiException,
    CollectionResponseSimplePublicObjectWithAssociationsForwardPaging,
    CollectionResponseWithTotalSimplePublicObjectForwardPaging,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObject,
    SimplePublicObjectInputForCreate,
    SimplePublicObjectWithAssociations,
)
from hubspot.crm.objects.notes import (
    AssociationSpec as NoteAssociationSpec,
)
from hubspot.crm.objects.notes import (
    Filter as NoteFilter,
)
from hubspot.crm.objects.notes import (
    FilterGroup as NoteFilterGroup,
)
from hubspot.crm.objects.notes import (
    PublicAssociationsForObject as NoteAssociation,
)
from hubspot.crm.objects.notes import (
    PublicObjectId as NoteTarget,
)
from hubspot.crm.objects.notes import (
    PublicObjectSearchRequest as NoteSearch,
)
from hubspot.crm.objects.notes import (
    SimplePublicObjectInputForCreate as NoteInput,
)
from hubspot.crm.objects.tasks import (
    AssociationSpec,
    PublicAssociationsForObject,
    PublicObjectId,
)
from hubspot.crm.objects.tasks import (
    PublicObjectSearchRequest as TaskSearch,
)
from hubspot.crm.objects.tasks import (
    SimplePublicObject as TaskObject,
)
from hubspot.crm.objects.tasks import (
    SimplePublicObjectInputForCreate as TaskInput,
)
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.owners import (
    CollectionResponsePublicOwnerForwardPaging,
    Error,
    PublicOwner,
)
from hubspot.marketing.forms import (
    CollectionResponseFormDefinitionBaseForwardPaging,
    HubSpotFormConfiguration,
    HubSpotFormDefinition,
)
from urllib3.util.retry import Retry

from workflows.hubspot.client import CONTACT_PROPERTIES, HubSpotClient, task_marker_token

RATE_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining")
CONTACT_PROPS = ["email", "firstname", "lastname", "company", "hubspot_owner_id"]
SPECS = Path(__file__).parent / "data" / "specs"
#: Every SDK package these tests use: models built here validate too, not only those the SDK
#: reads from an answer.
SDK_PACKAGES = (
    hubspot.crm.associations.v4,
    hubspot.crm.contacts,
    hubspot.crm.objects.notes,
    hubspot.crm.objects.tasks,
    hubspot.crm.owners,
    hubspot.marketing.forms,
)


@pytest.fixture(autouse=True)
def validating_models():
    for package in SDK_PACKAGES:
        configuration = package.Configuration()
        configuration.client_side_validation = True
        package.Configuration.set_default(configuration)
    yield
    for package in SDK_PACKAGES:
        package.Configuration.set_default(None)


@pytest.fixture
def sdk(sandbox) -> HubSpot:
    # client_side_validation reaches every API client's Configuration (the SDK sets each key
    # given here on it); its default is False. retry=Retry(0): urllib3's default would itself
    # retry a 429 or 503 that carries Retry-After, hiding what the sandbox answered.
    return HubSpot(
        access_token=sandbox.token,
        host=sandbox.url,
        client_side_validation=True,
        retry=Retry(0),
    )


class _Body:
    """What ApiClient.deserialize reads: the JSON text of a body (answer or recorded request)."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)


def read_as(api: Any, body: Any, model: str) -> Any:
    """`body` read into the SDK model named `model` by the API's client (validating)."""
    return api.api_client.deserialize(_Body(body), model)


@pytest.fixture
def contact(sandbox) -> dict:
    return sandbox.seed_contact(
        email="ada@acme.test", firstname="Ada", lastname="Lovelace", company="Acme"
    )


def headers_of(info) -> dict[str, str]:
    return {k.lower(): v for k, v in info[2].items()}


def test_get_contact_with_repeated_properties_returns_every_one(sdk, contact):
    found = sdk.crm.contacts.basic_api.get_by_id(contact["id"], properties=CONTACT_PROPS)

    assert isinstance(found, SimplePublicObjectWithAssociations)
    assert found.properties["firstname"] == "Ada"
    assert found.properties["lastname"] == "Lovelace"
    assert found.properties["company"] == "Acme"
    assert set(CONTACT_PROPS) <= set(found.properties)


def test_get_contact_answers_rate_limit_headers(sdk, contact):
    info = sdk.crm.contacts.basic_api.get_by_id_with_http_info(contact["id"])

    assert info[1] == 200
    assert all(h.lower() in headers_of(info) for h in RATE_HEADERS)


def test_missing_contact_is_a_404_the_sdk_raises(sdk):
    with pytest.raises(ApiException) as caught:
        sdk.crm.contacts.basic_api.get_by_id("424242")

    assert caught.value.status == 404


def test_create_contact_answers_a_simple_public_object_without_associations(sdk):
    info = sdk.crm.contacts.basic_api.create_with_http_info(
        SimplePublicObjectInputForCreate(properties={"email": "new@acme.test"}, associations=[])
    )

    created = info[0]
    assert info[1] == 201 and isinstance(created, SimplePublicObject)
    assert created.properties["email"] == "new@acme.test"
    assert created.properties.get("hubspot_owner_id") is None  # no owner rule, no owner


def test_contacts_list_pages_with_after(sdk, sandbox):
    for n in range(3):
        sandbox.seed_contact(email=f"p{n}@acme.test")

    first = sdk.crm.contacts.basic_api.get_page(limit=2, properties=["email"])
    assert isinstance(first, CollectionResponseSimplePublicObjectWithAssociationsForwardPaging)
    rest = sdk.crm.contacts.basic_api.get_page(limit=2, after=first.paging.next.after)

    emails = [c.properties["email"] for c in first.results + rest.results]
    assert sorted(emails) == ["p0@acme.test", "p1@acme.test", "p2@acme.test"]
    assert rest.paging is None


def test_search_contact_by_email_has_no_rate_limit_headers(sdk, contact):
    request = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(
                filters=[Filter(property_name="email", operator="EQ", value="ada@acme.test")]
            )
        ],
        properties=CONTACT_PROPS,
        limit=1,
    )
    info = sdk.crm.contacts.search_api.do_search_with_http_info(request)

    found = info[0]
    assert isinstance(found, CollectionResponseWithTotalSimplePublicObjectForwardPaging)
    assert found.total == 1 and found.results[0].id == contact["id"]
    assert not any(h.lower() in headers_of(info) for h in RATE_HEADERS)


def _task_input(contact_id: str, marker: str) -> TaskInput:
    return TaskInput(
        properties={
            "hs_timestamp": datetime.now(UTC).isoformat(),
            "hs_task_subject": "Follow up with Ada",
            "hs_task_body": f"Call back\n\nLeadline reference: {task_marker_token(marker)}",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "MEDIUM",
            "hs_task_type": "TODO",
        },
        associations=[
            PublicAssociationsForObject(
                to=PublicObjectId(id=contact_id),
                types=[
                    AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=204)
                ],
            )
        ],
    )


def test_task_create_get_search_and_the_v4_association_read(sdk, contact):
    info = sdk.crm.objects.tasks.basic_api.create_with_http_info(
        _task_input(contact["id"], "workflow-1")
    )
    created = info[0]
    assert info[1] == 201 and isinstance(created, TaskObject)
    assert not hasattr(created, "associations")  # HubSpot's create answer carries none

    fetched = sdk.crm.objects.tasks.basic_api.get_by_id(
        created.id, properties=["hs_task_subject", "hs_task_status"], associations=["contacts"]
    )
    assert fetched.properties["hs_task_subject"] == "Follow up with Ada"
    assert fetched.properties["hs_task_status"] == "NOT_STARTED"
    assert fetched.associations["contacts"].results[0].id == contact["id"]

    token = task_marker_token("workflow-1")
    search = TaskSearch(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": token}
                ]
            }
        ],
        properties=["hs_task_body"],
        limit=10,
    )
    found = sdk.crm.objects.tasks.search_api.do_search(search)
    assert [t.id for t in found.results] == [created.id]

    linked = sdk.crm.associations.v4.basic_api.get_page("tasks", created.id, "contacts")
    assert isinstance(linked, CollectionResponseMultiAssociatedObjectWithLabelForwardPaging)
    [link] = linked.results
    assert str(link.to_object_id) == contact["id"]
    assert link.association_types[0].type_id == 204
    assert link.association_types[0].category == "HUBSPOT_DEFINED"


def _note_input(contact_id: str, body: str) -> NoteInput:
    return NoteInput(
        properties={"hs_note_body": body, "hs_timestamp": datetime.now(UTC).isoformat()},
        associations=[
            NoteAssociation(
                to=NoteTarget(id=contact_id),
                types=[
                    NoteAssociationSpec(
                        association_category="HUBSPOT_DEFINED", association_type_id=202
                    )
                ],
            )
        ],
    )


def test_note_create_get_and_search_by_marker(sdk, contact):
    token = task_marker_token("workflow-1")
    note = sdk.crm.objects.notes.basic_api.create(
        _note_input(contact["id"], f"Sent\n\nLeadline reference: {token}")
    )
    sdk.crm.objects.notes.basic_api.create(_note_input(contact["id"], "Another note"))

    fetched = sdk.crm.objects.notes.basic_api.get_by_id(note.id, properties=["hs_note_body"])
    assert fetched.properties["hs_note_body"].startswith("Sent")
    search = NoteSearch(
        filter_groups=[
            NoteFilterGroup(
                filters=[
                    NoteFilter(property_name="hs_note_body", operator="CONTAINS_TOKEN", value=token)
                ]
            )
        ],
        properties=["hs_note_body"],
        limit=10,
    )
    found = sdk.crm.objects.notes.search_api.do_search(search)
    assert [n.id for n in found.results] == [note.id] and found.total == 1
    linked = sdk.crm.associations.v4.basic_api.get_page("contacts", contact["id"], "notes")
    assert len(linked.results) == 2 and note.id in [str(r.to_object_id) for r in linked.results]


def test_owners_get_and_list(sdk, sandbox):
    sandbox.seed_owner(id="1002", email="blake@acme.test", firstName="Blake", lastName="Rep")

    owner = sdk.crm.owners.owners_api.get_by_id(1001)
    assert isinstance(owner, PublicOwner)
    assert (owner.first_name, owner.last_name, owner.email) == (
        "Avery",
        "Owner",
        "avery@example.com",
    )

    page = sdk.crm.owners.owners_api.get_page(limit=1)
    assert isinstance(page, CollectionResponsePublicOwnerForwardPaging)
    rest = sdk.crm.owners.owners_api.get_page(limit=1, after=page.paging.next.after)
    assert [o.id for o in page.results + rest.results] == ["1001", "1002"]
    by_email = sdk.crm.owners.owners_api.get_page(email="blake@acme.test")
    assert [o.id for o in by_email.results] == ["1002"]


def test_an_archived_owner_reads_as_a_public_owner_only_with_archived_true(sdk, sandbox):
    sandbox.seed_owner(
        id="1003", email="gone@acme.test", firstName="Gale", userId=2003, archived=True
    )

    with pytest.raises(OwnersApiException) as caught:
        sdk.crm.owners.owners_api.get_by_id(1003)
    assert caught.value.status == 404

    owner = sdk.crm.owners.owners_api.get_by_id(1003, archived=True)
    assert isinstance(owner, PublicOwner) and owner.archived is True
    assert (owner.user_id, owner.user_id_including_inactive) == (None, 2003)
    archived = sdk.crm.owners.owners_api.get_page(archived=True)
    assert [o.id for o in archived.results] == ["1003"]


#: The spec's oneOf members, by the value that tells them apart (forms.json): a field by its
#: fieldType, the legal consent options by their type.
FIELD_MODELS = {
    "email": "EmailField",
    "single_line_text": "SingleLineTextField",
    "multi_line_text": "MultiLineTextField",
}
CONSENT_MODELS = {"none": "LegalConsentOptionsNone"}


def test_forms_get_and_list(sdk, sandbox, monkeypatch):
    from hubspot.marketing.forms.models import (
        CollectionResponseFormDefinitionBaseForwardPagingResultsInner as ListedForm,
    )
    from hubspot.marketing.forms.models import FieldGroup, FormDefinitionBase

    sandbox.seed_form(id="5e0c7a1b-1111-4222-8333-444455556666", name="Demo request")
    api = sdk.marketing.forms.forms_api
    # Two parts of a form are a oneOf that the SDK flattens into one class, which a valid
    # member fails: a field (its `validation` typed NumberFieldValidation, so an email field's
    # EmailFieldValidation is refused) and legalConsentOptions (typed as the implicit-consent
    # member, so {"type": "none"} is refused). Those two are read as the member the spec
    # (forms.json) names for the value that tells them apart; every other part as the SDK types it.
    for form_model in (HubSpotFormDefinition, FormDefinitionBase, ListedForm):
        monkeypatch.setitem(
            form_model.openapi_types, "legal_consent_options", CONSENT_MODELS["none"]
        )
    monkeypatch.setitem(FieldGroup.openapi_types, "fields", "list[object]")

    def fields_of(form) -> list:
        return [
            read_as(api, field, FIELD_MODELS[field["fieldType"]])
            for group in form.field_groups
            for field in group.fields
        ]

    info = api.get_by_id_with_http_info(
        "5e0c7a1b-1111-4222-8333-444455556666", _preload_content=False
    )
    # The spec types the answer FormDefinitionBase; a formType "hubspot" form is the full
    # HubSpotFormDefinition, whose every required field must deserialise.
    raw = json.loads(info.data)
    assert raw["legalConsentOptions"] == {"type": "none"}
    form = read_as(api, raw, "HubSpotFormDefinition")
    assert isinstance(form, HubSpotFormDefinition)
    assert isinstance(form.configuration, HubSpotFormConfiguration)
    assert form.name == "Demo request" and form.form_type == "hubspot"
    assert form.legal_consent_options.type == "none"
    fields = fields_of(form)
    assert [f.name for f in fields][:2] == ["email", "firstname"]
    assert fields[0].validation.blocked_email_domains == []

    page = api.get_page(limit=1)
    assert isinstance(page, CollectionResponseFormDefinitionBaseForwardPaging)
    rest = api.get_page(limit=1, after=page.paging.next.after)
    assert {f.name for f in page.results + rest.results} == {"Contact us", "Demo request"}
    assert all(fields_of(f) for f in page.results + rest.results)


@pytest.mark.parametrize(
    ("rule", "status", "check"),
    [
        (
            {"kind": "status", "status": 429, "retry_after": 1},
            429,
            lambda e: json.loads(e.body)["policyName"] == "TEN_SECONDLY_ROLLING"
            and e.headers["Retry-After"] == "1",
        ),
        ({"kind": "status", "status": 500}, 500, lambda e: "INTERNAL_ERROR" in e.body),
        ({"kind": "status", "status": 502}, 502, lambda e: "INTERNAL_ERROR" in e.body),
        ({"kind": "status", "status": 423}, 423, lambda e: e.body and "LOCKED" in e.body),
        (
            {"kind": "status", "status": 477, "retry_after": 5},
            477,
            lambda e: e.headers["Retry-After"] == "5",
        ),
        (
            {"kind": "status", "status": 429, "policy": "DAILY"},
            429,
            lambda e: '"policyName": "DAILY"' in e.body,
        ),
    ],
)
def test_injected_faults_reach_the_sdk_as_hubspot_sends_them(sdk, sandbox, rule, status, check):
    sandbox.add_fault("owners.get", {**rule, "times": 1})

    with pytest.raises(OwnersApiException) as caught:
        sdk.crm.owners.owners_api.get_by_id(1001)

    assert caught.value.status == status and check(caught.value)
    # HubSpot's error body (spec model Error: message, correlationId, category required).
    error = read_as(sdk.crm.owners.owners_api, json.loads(caught.value.body), "Error")
    assert isinstance(error, Error) and error.correlation_id


def test_validation_is_on_so_a_model_missing_required_fields_is_refused(sdk):
    api = sdk.crm.owners.owners_api
    assert api.api_client.configuration.client_side_validation

    with pytest.raises(ValueError, match="must not be `None`"):
        read_as(api, {"id": "1"}, "PublicOwner")  # no type, archived, createdAt, updatedAt
    with pytest.raises(ValueError, match="must be one of"):
        TaskInput(
            properties={},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id="1"),
                    types=[AssociationSpec(association_category="NOPE", association_type_id=1)],
                )
            ],
        )


def test_account_details_match_hubspots_portal_information_response(sdk, sandbox):
    sandbox.configure(time_zone="America/Los_Angeles")
    spec = json.loads((SPECS / "accountInfo.json").read_text())
    schema = {"$ref": "#/components/schemas/PortalInformationResponse", **spec}

    # The SDK's own transport (its Bearer auth), though it has no account-info model.
    answer = sdk.api_request(
        {"method": "GET", "path": "/account-info/v3/details", "base_url": sandbox.url}
    )

    assert answer.status_code == 200
    details = answer.json()
    jsonschema.validate(details, schema)  # required fields, types, accountType's enum
    assert details["timeZone"] == "America/Los_Angeles"
    assert details["utcOffset"] in ("-07:00", "-08:00")
    assert details["utcOffsetMilliseconds"] in (-7 * 3_600_000, -8 * 3_600_000)


#: Each request body Leadline's client sends, by endpoint: the SDK package whose API reads it
#: and the spec's request model.
REQUEST_MODELS = {
    "contacts.search": ("contacts", "PublicObjectSearchRequest"),
    "tasks.create": ("tasks", "SimplePublicObjectInputForCreate"),
    "tasks.search": ("tasks", "PublicObjectSearchRequest"),
    "notes.create": ("notes", "SimplePublicObjectInputForCreate"),
    "notes.search": ("notes", "PublicObjectSearchRequest"),
}


def test_every_request_leadlines_client_sends_reads_into_the_sdks_request_models(sdk, sandbox):
    """A typical workflow's calls by workflows/hubspot/client.py, each body read into the SDK's
    model (validating: required fields, enums, types) and written back unchanged (no field
    the model lacks, none of another type); each GET's path and query as the SDK's own."""
    sandbox.seed_contact(email="ada@acme.test", firstname="Ada", id="501", hubspot_owner_id="1001")
    sandbox.seed_owner(id="1003", email="gone@acme.test", archived=True)
    apis = {
        "contacts": sdk.crm.contacts.search_api,
        "tasks": sdk.crm.objects.tasks.search_api,
        "notes": sdk.crm.objects.notes.search_api,
    }
    with HubSpotClient(base_url=sandbox.url, token=sandbox.token) as client:
        contact = client.search_contact_by_email("ada@acme.test")
        client.get_contact(contact["id"])
        client.get_owner("1001")
        client.get_owner("1003")  # 404, then archived=true
        client.find_task_by_marker("workflow-9")
        client.create_task(
            contact_id=contact["id"],
            owner_id="1001",
            subject="Follow up with Ada",
            body="<p>Review and approve</p>",
            due_at=datetime.now(UTC),
            marker="workflow-9",
        )
        client.find_note_by_marker("workflow-9")
        client.create_note(contact_id=contact["id"], body="Sent by hand", marker="workflow-9")
    sent = sandbox.requests()
    assert {r.endpoint for r in sent} == {*REQUEST_MODELS, "contacts.get", "owners.get"}

    for request in [r for r in sent if r.method == "POST"]:
        package, model = REQUEST_MODELS[request.endpoint]
        read = read_as(apis[package], request.json, model)
        assert apis[package].api_client.sanitize_for_serialization(read) == request.json

    sandbox.state.requests.clear()
    sdk.crm.contacts.basic_api.get_by_id(contact["id"], properties=list(CONTACT_PROPERTIES))
    sdk.crm.owners.owners_api.get_by_id(1001)
    with pytest.raises(OwnersApiException):
        sdk.crm.owners.owners_api.get_by_id(1003)
    sdk.crm.owners.owners_api.get_by_id(1003, archived=True)

    def gets(requests) -> list[tuple[str, dict]]:
        # The SDK writes a boolean as Python does ("True"); HubSpot reads either.
        return [
            (r.path, {k: [v.casefold() for v in vs] for k, vs in r.query.items()})
            for r in requests
            if r.method == "GET"
        ]

    assert gets(sent) == gets(sandbox.requests())
