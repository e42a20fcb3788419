"""The daily limit's halt ends at midnight in the account's time zone, as HubSpot's account
details name it (learnt ahead of time), over real HTTP against the sandbox."""

from __future__ import annotations

import logging

import pytest
from django.utils.timezone import now

from workflows.hubspot import forms, tasks
from workflows.hubspot.account import daily_reset_time_zone
from workflows.hubspot.client import (
    HubSpotClient,
    HubSpotPaused,
    daily_pause_from_settings,
    seconds_until_daily_reset,
)
from workflows.hubspot.models import HubSpotAccount
from workflows.hubspot.throttle import TokenBucket

PACIFIC = "America/Los_Angeles"


@pytest.fixture
def hubspot(hubspot_sandbox, settings):
    settings.HUBSPOT_ACCOUNT_TIME_ZONE = ""
    settings.HUBSPOT_DAILY_PAUSE_SECONDS = 0.0
    hubspot_sandbox.configure(time_zone=PACIFIC)
    return hubspot_sandbox


def daily_halt(sandbox) -> float:
    """Seconds a 429 DAILY halts calls, as a worker's client (from settings) decides them."""
    client = HubSpotClient(
        base_url=sandbox.url,
        token=sandbox.token,
        throttle=TokenBucket(None),  # in-process: the halt must not reach other tests
        daily_pause=daily_pause_from_settings,
    )
    sandbox.add_fault("owners.get", {"kind": "status", "status": 429, "policy": "DAILY"})
    with client, pytest.raises(HubSpotPaused) as caught:
        client.get_owner("1001")
    return caught.value.retry_after


@pytest.mark.django_db
def test_the_daily_halt_ends_at_midnight_in_the_time_zone_hubspot_names(hubspot):
    assert tasks.refresh_account() == f"time zone {PACIFIC}"

    halt = daily_halt(hubspot)

    assert abs(halt - seconds_until_daily_reset(PACIFIC)) < 5
    # Pacific midnight is 7 or 8 hours from UTC's, whatever the hour now.
    assert abs(halt - seconds_until_daily_reset("UTC")) > 6 * 3600
    # Learnt beforehand: nothing asked HubSpot for the account at the 429.
    assert [r.endpoint for r in hubspot.requests()] == ["account.details", "owners.get"]


@pytest.mark.django_db
def test_the_forms_poll_remembers_the_time_zone_from_the_details_it_reads(hubspot):
    with HubSpotClient(base_url=hubspot.url, token=hubspot.token) as client:
        assert forms.account_portal_id(client) == 62515

    account = HubSpotAccount.objects.get()
    assert (account.portal_id, account.time_zone) == (62515, PACIFIC)
    hubspot.configure(time_zone="Asia/Kolkata")
    tasks.refresh_account()
    assert HubSpotAccount.objects.get().time_zone == "Asia/Kolkata"


@pytest.mark.django_db
def test_an_operators_time_zone_overrides_hubspots(hubspot, settings):
    tasks.refresh_account()
    settings.HUBSPOT_ACCOUNT_TIME_ZONE = "Asia/Tokyo"

    assert daily_reset_time_zone() == ("Asia/Tokyo", "HUBSPOT_ACCOUNT_TIME_ZONE")
    assert abs(daily_halt(hubspot) - seconds_until_daily_reset("Asia/Tokyo")) < 5


@pytest.mark.django_db
def test_unknown_it_is_utc_and_a_log_line_says_so(hubspot, caplog):
    with caplog.at_level(logging.INFO, logger="leadline.hubspot"):
        halt = daily_halt(hubspot)

    assert abs(halt - seconds_until_daily_reset("UTC")) < 5
    assert "time zone is not known yet" in caplog.text
    assert "resets at midnight UTC" in caplog.text
    # A name HubSpot might send that this Python's zone database lacks (stored by hand: the
    # sandbox names only zones it knows).
    HubSpotAccount.objects.create(portal_id=1, time_zone="Mars/Olympus", fetched_at=now())
    assert daily_reset_time_zone()[0] == "UTC"


@pytest.mark.django_db
def test_the_pause_setting_still_wins(hubspot, settings):
    tasks.refresh_account()
    settings.HUBSPOT_DAILY_PAUSE_SECONDS = 7.0

    assert daily_halt(hubspot) == 7.0


@pytest.fixture
def published(monkeypatch):
    """What a starting worker's hook publishes (the task's apply_async, recorded)."""
    calls: list[dict] = []
    monkeypatch.setattr(tasks.refresh_account, "apply_async", lambda **kw: calls.append(kw))
    return calls


def test_a_starting_worker_asks_for_the_account_once(settings, published):
    from celery.signals import worker_ready

    settings.HUBSPOT_ACCESS_TOKEN, settings.HUBSPOT_ACCOUNT_TIME_ZONE = "token", ""
    worker_ready.send(sender=None)
    assert published == [{"retry": False}]


@pytest.mark.parametrize(
    ("token", "override"), [("", ""), ("token", PACIFIC)], ids=["no token", "time zone set"]
)
def test_a_starting_worker_asks_nothing_it_does_not_need(settings, published, token, override):
    from celery.signals import worker_ready

    settings.HUBSPOT_ACCESS_TOKEN, settings.HUBSPOT_ACCOUNT_TIME_ZONE = token, override
    worker_ready.send(sender=None)
    assert published == []


def test_a_worker_starts_even_when_the_broker_refuses_the_refresh(settings, monkeypatch, caplog):
    from celery.signals import worker_ready

    def refuse(**kwargs):
        raise ConnectionError("broker starting")

    settings.HUBSPOT_ACCESS_TOKEN, settings.HUBSPOT_ACCOUNT_TIME_ZONE = "token", ""
    monkeypatch.setattr(tasks.refresh_account, "apply_async", refuse)
    with caplog.at_level(logging.WARNING, logger="leadline.hubspot"):
        worker_ready.send(sender=None)
    assert "Could not enqueue the account refresh" in caplog.text
