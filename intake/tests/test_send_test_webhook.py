"""send_test_webhook posts a correctly signed, new submission to a running server."""

from __future__ import annotations

import io
import json

import pytest
import requests
from django.core.management import CommandError, call_command

from config import runstate
from intake.management.commands import send_test_webhook
from intake.management.commands.send_test_webhook import _instance_secret, body_of, build_payload
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

    answer_line, *workflow_lines = output.strip().splitlines()
    status, answer = answer_line.split(" ", 1)
    assert status == "202"
    assert json.loads(answer)["accepted"] == 1
    submission = FormSubmission.objects.get(email="ada@example.com")
    assert submission.shape == "forms" and submission.signature_version == "v3"
    workflow = submission.workflows.get()
    assert workflow.status == "pending"
    # One number per lead: the workflow's, with the submission id labelled as such.
    assert workflow_lines == [
        f"  workflow #{workflow.pk}: {live_server.url}/dashboard/workflows/{workflow.pk}/",
        f"  (submission id {submission.pk})",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_joins_an_existing_lead_names_the_leads_workflow(
    live_server, webhook_settings
):
    send(live_server.url + WEBHOOK_PATH, email="ada@example.com")
    output = send(live_server.url + WEBHOOK_PATH, email="ada@example.com")  # same form fill

    answer_line, *lines = output.strip().splitlines()
    answer = json.loads(answer_line.split(" ", 1)[1])  # the JSON is still printed
    assert (answer["joined"], answer["workflow_ids"]) == (1, [])
    workflow = Workflow.objects.get()  # one lead, one workflow
    second = FormSubmission.objects.order_by("pk").last()
    assert answer["joined_leads"] == [{"submission_id": second.pk, "workflow_id": workflow.pk}]
    assert lines == [
        f"  submission {second.pk} joined an existing lead (no new workflow): workflow "
        f"#{workflow.pk}: {live_server.url}/dashboard/workflows/{workflow.pk}/"
    ]


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


@pytest.mark.parametrize(
    ("shape", "seeded"),
    [("workflow", ["owners", "contacts", "contacts", "contacts"]), ("forms", [])],
)
def test_the_sandbox_gets_the_owners_once_and_each_requests_contacts(
    monkeypatch, settings, shape, seeded
):
    settings.HUBSPOT_CLIENT_SECRET = "secret"
    posted = []
    monkeypatch.setattr(send_test_webhook, "_sandbox_url", lambda base: "http://127.0.0.1:9")
    monkeypatch.setattr(
        requests, "post", lambda url, json, timeout: posted.append(url.rsplit("/", 1)[1])
    )

    def accepted(*args) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = 202, b"{}"
        return response

    monkeypatch.setattr(send_test_webhook.Command, "_post", accepted)

    send("http://127.0.0.1:9/api/webhooks/hubspot/forms", shape=shape, count=3)

    assert posted == seeded


@pytest.fixture
def run_state(tmp_path, monkeypatch):
    """An empty var/ for config.runstate: no dev secret, no running `make run`."""
    monkeypatch.setattr(runstate, "VAR_DIR", tmp_path)
    monkeypatch.setattr(runstate, "RUN_DIR", tmp_path / "run")
    monkeypatch.setattr(runstate, "DEV_SECRET_FILE", tmp_path / "dev-client-secret")
    monkeypatch.delenv("PORT", raising=False)
    return tmp_path


def test_it_refuses_to_run_without_a_secret(settings, run_state):
    settings.HUBSPOT_CLIENT_SECRET = ""

    with pytest.raises(CommandError, match="HUBSPOT_CLIENT_SECRET"):
        send("http://127.0.0.1:9/")


@pytest.mark.django_db(transaction=True)
def test_it_finds_the_running_instance_and_its_dev_secret(live_server, settings, run_state):
    """The README's second command, as typed: no --url, no HUBSPOT_CLIENT_SECRET, no PORT."""
    settings.HUBSPOT_CLIENT_SECRET = runstate.dev_client_secret(create=True)
    settings.PUBLIC_BASE_URL = ""
    port = int(live_server.url.rsplit(":", 1)[1])
    (run_state / "run" / str(port)).mkdir(parents=True)
    runstate.write_instance(port, sandbox_url="", secret_file=str(runstate.DEV_SECRET_FILE))
    lock = open(run_state / "run" / str(port) / "lock", "w")  # noqa: SIM115
    runstate.lock_instance(lock.fileno())  # what run.sh's pre-flight holds while it runs
    try:
        out = io.StringIO()
        call_command("send_test_webhook", stdout=out)  # no --url: the running instance's port
    finally:
        lock.close()

    assert out.getvalue().startswith("202 "), out.getvalue()
    workflow = Workflow.objects.get()
    link = f"workflow #{workflow.pk}: http://127.0.0.1:{port}/dashboard/workflows/{workflow.pk}/"
    assert link in out.getvalue()
    # Without HUBSPOT_CLIENT_SECRET the command signs with the instance's secret file, or the
    # checkout's dev secret (a real second shell: tests/test_make_run.py).
    instance = runstate.running_instances()
    assert instance == []  # the lock is released: the instance has stopped
    assert _instance_secret({"secret_file": str(runstate.DEV_SECRET_FILE)}) == (
        settings.HUBSPOT_CLIENT_SECRET
    )
    assert _instance_secret({}) == settings.HUBSPOT_CLIENT_SECRET


def test_it_asks_which_instance_when_several_run(settings, run_state):
    held = []
    for port in (8100, 8200):
        (run_state / "run" / str(port)).mkdir(parents=True)
        runstate.write_instance(port, sandbox_url="", secret_file="")
        held.append(open(run_state / "run" / str(port) / "lock", "w"))  # noqa: SIM115
        runstate.lock_instance(held[-1].fileno())
    (run_state / "run" / "8300").mkdir()
    runstate.write_instance(8300, sandbox_url="", secret_file="")  # stopped: its lock is free
    try:
        with pytest.raises(CommandError, match="running on ports 8100, 8200: set PORT"):
            call_command("send_test_webhook", stdout=io.StringIO())
    finally:
        for handle in held:
            handle.close()


@pytest.mark.parametrize("shape", ["forms", "workflow", "events"])
def test_every_payload_it_builds_is_one_the_webhook_accepts(shape):
    payload = build_payload(shape=shape, email=None, form_id="f-1", portal_id=62515, batch_size=3)

    items = parse_body(json.dumps(body_of(payload)).encode())

    expected = {"forms": "forms", "workflow": "workflow", "events": "event"}[shape]
    assert [item.shape for item in items] == [expected] * len(items)
    assert all(item.email.endswith(".example") for item in items if shape != "events")
