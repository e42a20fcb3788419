"""send_test_webhook posts a correctly signed, new submission to a running server."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from intake.management.commands.send_test_webhook import body_of, build_payload
from intake.models import FormSubmission
from intake.payloads import parse_body
from intake.tests.conftest import WEBHOOK_PATH
from workflows.models import Workflow


def send(url: str, **options) -> str:
    out = io.StringIO()
    call_command("send_test_webhook", url=url, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_it_posts_a_signed_forms_submission_that_is_stored(live_server, webhook_settings):
    output = send(live_server.url + WEBHOOK_PATH, email="ada@example.com")

    status, answer = output.strip().split(" ", 1)
    assert status == "202"
    assert json.loads(answer)["accepted"] == 1
    submission = FormSubmission.objects.get(email="ada@example.com")
    assert submission.shape == "forms" and submission.signature_version == "v3"
    assert submission.workflows.get().status == "pending"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signature", ["v2", "v1"])
def test_each_run_is_a_new_submission_whatever_the_signature(
    live_server, webhook_settings, signature
):
    output = send(
        live_server.url + WEBHOOK_PATH + "/", shape="workflow", signature=signature, count=2
    )

    assert output.count("202 ") == 2
    assert FormSubmission.objects.filter(shape="workflow").count() == 2


@pytest.mark.django_db(transaction=True)
def test_it_sends_an_event_batch(live_server, webhook_settings):
    output = send(live_server.url + WEBHOOK_PATH, shape="events", batch_size=25)

    assert output.startswith("202 ")
    assert Workflow.objects.count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_refused_delivery_prints_the_answer_and_fails(live_server, webhook_settings, settings):
    settings.PUBLIC_BASE_URL = "https://leads.example.com"  # the server expects another URL

    with pytest.raises(CommandError, match="1 of 1 requests were not accepted"):
        send(live_server.url + WEBHOOK_PATH)
    assert FormSubmission.objects.count() == 0


def test_it_refuses_to_run_without_a_secret(settings):
    settings.HUBSPOT_CLIENT_SECRET = ""

    with pytest.raises(CommandError, match="HUBSPOT_CLIENT_SECRET"):
        send("http://127.0.0.1:9/")


@pytest.mark.parametrize("shape", ["forms", "workflow", "events"])
def test_every_payload_it_builds_is_one_the_webhook_accepts(shape):
    payload = build_payload(shape=shape, email=None, form_id="f-1", portal_id=62515, batch_size=3)

    items = parse_body(json.dumps(body_of(payload)).encode())

    expected = {"forms": "forms", "workflow": "workflow", "events": "event"}[shape]
    assert [item.shape for item in items] == [expected] * len(items)
    assert all(item.email.endswith(".example") for item in items if shape != "events")
