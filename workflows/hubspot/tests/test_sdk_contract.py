"""Contract tests: HubSpot's official Python SDK (hubspot-api-client, pinned in
requirements-dev.txt) drives the sandbox over HTTP and reads every answer into its own models.

The SDK is generated from HubSpot's public OpenAPI specs, so it is outside truth: where the
SDK and the sandbox disagree, the sandbox is wrong. Every call workflows/hubspot/client.py
makes is here (contacts search/get/create, tasks and notes create/search, owners get, forms
get), and the ones the sandbox offers for the SDK (contacts list, tasks/notes get, owners
list, v4 associations, forms list). The Forms submissions endpoint (form-integrations v1) has
no SDK model; its shape is pinned in test_sandbox.py against HubSpot's documented fields.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    PublicAssociationsForObject as NoteAssociation,
)
from hubspot.crm.objects.notes import (
    PublicObjectId as NoteTarget,
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
from hubspot.crm.owners import CollectionResponsePublicOwnerForwardPaging, PublicOwner
from hubspot.marketing.forms import (
    CollectionResponseFormDefinitionBaseForwardPaging,
    HubSpotFormConfiguration,
    HubSpotFormDefinition,
)

from workflows.hubspot.client import task_marker_token

RATE_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining")
CONTACT_PROPS = ["email", "firstname", "lastname", "company", "hubspot_owner_id"]


@pytest.fixture
def sdk(sandbox) -> HubSpot:
    # retry=None: the SDK's urllib3 retries would hide what the sandbox answered.
    return HubSpot(access_token=sandbox.token, host=sandbox.url)


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


def test_note_create_get_and_search(sdk, contact):
    note = sdk.crm.objects.notes.basic_api.create(
        NoteInput(
            properties={"hs_note_body": "Sent", "hs_timestamp": datetime.now(UTC).isoformat()},
            associations=[
                NoteAssociation(
                    to=NoteTarget(id=contact["id"]),
                    types=[
                        NoteAssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=202
                        )
                    ],
                )
            ],
        )
    )

    fetched = sdk.crm.objects.notes.basic_api.get_by_id(note.id, properties=["hs_note_body"])
    assert fetched.properties["hs_note_body"] == "Sent"
    found = sdk.crm.objects.notes.search_api.do_search({"filterGroups": [], "limit": 10})
    assert [n.id for n in found.results] == [note.id]
    linked = sdk.crm.associations.v4.basic_api.get_page("contacts", contact["id"], "notes")
    assert [str(r.to_object_id) for r in linked.results] == [note.id]


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


def test_forms_get_and_list(sdk, sandbox):
    sandbox.seed_form(id="5e0c7a1b-1111-4222-8333-444455556666", name="Demo request")

    info = sdk.marketing.forms.forms_api.get_by_id_with_http_info(
        "5e0c7a1b-1111-4222-8333-444455556666", _preload_content=False
    )
    api_client = sdk.marketing.forms.forms_api.api_client
    # The spec types the answer FormDefinitionBase; a formType "hubspot" form is the full
    # HubSpotFormDefinition, whose every required field must deserialise.
    form = api_client.deserialize(info, "HubSpotFormDefinition")
    assert isinstance(form, HubSpotFormDefinition)
    assert isinstance(form.configuration, HubSpotFormConfiguration)
    assert form.name == "Demo request" and form.form_type == "hubspot"
    assert form.field_groups[0].fields[0].name == "email"

    page = sdk.marketing.forms.forms_api.get_page(limit=1)
    assert isinstance(page, CollectionResponseFormDefinitionBaseForwardPaging)
    rest = sdk.marketing.forms.forms_api.get_page(limit=1, after=page.paging.next.after)
    assert {f.name for f in page.results + rest.results} == {"Contact us", "Demo request"}


@pytest.mark.parametrize(
    ("rule", "status", "check"),
    [
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

    with pytest.raises(Exception) as caught:
        sdk.crm.owners.owners_api.get_by_id(1001)

    assert caught.value.status == status and check(caught.value)
