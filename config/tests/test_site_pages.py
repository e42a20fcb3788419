"""The site's own pages around the dashboard (issue #15): `/`, login and logout (also the
admin's), the favicon, and the 403/404/500 pages in the app's style."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

OLIVIA = {"username": "olivia", "password": "pw-olivia-123"}


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(**OLIVIA, is_staff=True)


def test_the_root_redirects_to_the_dashboard(client):
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/dashboard/")


def test_the_admins_view_site_link_is_the_dashboard(client, staff):
    client.force_login(staff)
    page = client.get("/admin/").content.decode()
    assert 'href="/dashboard/">View site</a>' in page


@pytest.mark.parametrize("url", ["/login/?next=/dashboard/", "/admin/login/?next=/admin/"])
def test_both_logins_are_the_apps_own_page(client, url):
    page = client.get(url).content.decode()

    assert "Log in to Leadline" in page
    assert 'class="topbar"' in page  # the dashboard's base template
    assert "Django administration" not in page
    assert 'name="next" value="' + url.split("next=")[1] + '"' in page


def test_logging_in_lands_on_next_and_logging_out_says_so(client, staff):
    response = client.post(
        "/login/?next=/dashboard/inbox/", {**OLIVIA, "next": "/dashboard/inbox/"}
    )
    assert (response.status_code, response["Location"]) == (302, "/dashboard/inbox/")

    response = client.post("/admin/logout/", follow=True)  # the base template's Log out
    assert response.redirect_chain[-1][0] == "/login/"
    assert "You are logged out." in response.content.decode()


def test_a_wrong_password_is_refused_on_the_apps_page(client, staff):
    response = client.post("/login/", {"username": "olivia", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_the_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_a_404_is_the_apps_page(client, staff):
    client.force_login(staff)
    response = client.get("/dashboard/workflows/999999/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "There is nothing at this address" in page and 'class="topbar"' in page


def _failing_view(exc: Exception):
    def view(request):
        raise exc

    return view


@pytest.fixture
def failing_url():
    """A URL whose view raises the given exception, for as long as the test runs."""
    from django.urls import clear_url_caches, path

    from config import urls

    def add(exc: Exception) -> str:
        urls.urlpatterns.append(path("__fails__/", _failing_view(exc)))
        clear_url_caches()
        return "/__fails__/"

    yield add
    urls.urlpatterns[:] = [p for p in urls.urlpatterns if str(p.pattern) != "__fails__/"]
    clear_url_caches()


def test_a_403_is_the_apps_page(client, django_user_model, failing_url):
    from django.core.exceptions import PermissionDenied

    client.force_login(django_user_model.objects.create_user("nina"))
    response = client.get(failing_url(PermissionDenied()))
    assert response.status_code == 403
    page = response.content.decode()
    assert "This account may not do that" in page and "You are logged in as nina" in page


@override_settings(DEBUG=False)
def test_a_500_is_the_apps_page(failing_url):
    url = failing_url(RuntimeError("boom"))
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page and 'class="topbar"' in page


@override_settings(DEBUG=False)
def test_a_500_shows_the_request_id_its_error_is_logged_with_and_nothing_of_the_error(
    failing_url,
):
    import io
    import json
    import logging

    from config.logging import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("django.request").addHandler(handler)
    url = failing_url(RuntimeError("boom: secret-token-123"))
    client = Client(raise_request_exception=False)
    try:
        response = client.get(url, headers={"X-Request-ID": "req-500-abcdef"})
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    assert response.status_code == 500 and response["X-Request-ID"] == "req-500-abcdef"
    page = response.content.decode()
    assert '<code id="request-id">req-500-abcdef</code>' in page
    assert "secret-token-123" not in page and "Traceback" not in page and "RuntimeError" not in page
    # The id on the page finds the error's log line.
    [logged] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert logged["level"] == "ERROR" and logged["request_id"] == "req-500-abcdef"
    # A made-up id is not echoed: a fresh one is shown instead, the same as the header's.
    odd = client.get(url, headers={"X-Request-ID": "<script>x</script>"})
    assert "<script>x" not in odd.content.decode()
    assert f'<code id="request-id">{odd["X-Request-ID"]}</code>' in odd.content.decode()
