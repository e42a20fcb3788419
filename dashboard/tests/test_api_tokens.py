"""Issue #14: API tokens are stored hashed, shown once, expire and can be revoked; the admin
shows prefixes only; the API schema and docs are staff-only."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def create_token(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_created_token_is_printed_once_and_only_its_hash_is_stored(operator):
    token, message = create_token("--user", "olivia")

    assert len(token) == 64
    assert token not in message and token[:15] in message  # the prefix, to recognise it
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key FROM knox_authtoken")
        [(digest, token_key)] = cursor.fetchall()
    assert token_key == token[:15] and len(digest) == 128 and token not in digest
    assert api(token).get("/api/workflows/").status_code == 200


def test_a_token_works_until_revoked(operator):
    token, _ = create_token("--user", "olivia", "--expires-in", "never")
    assert AuthToken.objects.get().expiry is None
    assert api(token).get("/api/stats/").status_code == 200

    out = io.StringIO()
    call_command("create_api_token", "--user", "olivia", "--revoke", token[:10], stdout=out)

    assert "Revoked 1 token(s)" in out.getvalue()
    assert api(token).get("/api/stats/").status_code == 401


def test_a_token_works_until_it_expires(operator):
    token, message = create_token("--user", "olivia", "--expires-in", "2h")
    instance = AuthToken.objects.get()
    assert timedelta(minutes=119) < instance.expiry - timezone.now() <= timedelta(hours=2)
    assert "expires 20" in message
    assert api(token).get("/api/stats/").status_code == 200

    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    assert api(token).get("/api/stats/").status_code == 401
    assert not AuthToken.objects.exists()  # knox deletes the expired token on sight


def test_the_default_lifetime_is_api_token_ttl_days(operator, settings):
    create_token("--user", "olivia")
    lifetime = AuthToken.objects.get().expiry - timezone.now()
    assert timedelta(days=89) < lifetime <= timedelta(days=90)


@pytest.mark.parametrize("bad", ["0d", "5w", "soon"])
def test_bad_lifetimes_and_non_staff_users_are_refused(operator, django_user_model, bad):
    with pytest.raises(CommandError, match="--expires-in"):
        create_token("--user", "olivia", "--expires-in", bad)
    django_user_model.objects.create_user(username="pat")
    with pytest.raises(CommandError, match="not an active staff account"):
        create_token("--user", "pat")
    assert not AuthToken.objects.exists()


def test_the_admin_lists_prefixes_never_tokens_or_digests(admin_client, operator):
    token, _ = create_token("--user", "olivia")
    instance = AuthToken.objects.get()

    listing = admin_client.get("/admin/dashboard/apitoken/").content.decode()
    assert f'<a href="/admin/dashboard/apitoken/{instance.pk}/change/">{token[:15]}…</a>' in listing
    assert token not in listing
    # the digest (knox's primary key, a one-way hash) appears only inside URLs and form values
    assert f">{instance.digest}" not in listing and f"{instance.digest}<" not in listing

    delete = admin_client.get(f"/admin/dashboard/apitoken/{instance.pk}/delete/").content.decode()
    assert token not in delete and f"{token[:15]}… (olivia)" in delete
    assert admin_client.get("/admin/dashboard/apitoken/add/").status_code == 403
    assert admin_client.get("/admin/knox/authtoken/").status_code == 404

    admin_client.post(f"/admin/dashboard/apitoken/{instance.pk}/delete/", {"post": "yes"})
    assert api(token).get("/api/stats/").status_code == 401  # revoked from the admin


def test_the_plaintext_token_table_is_gone():
    assert "authtoken_token" not in connection.introspection.table_names()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/docs/?script="])
def test_schema_and_docs_refuse_anonymous_and_non_staff_users(path, django_user_model):
    anonymous = APIClient().get(path)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    pat = APIClient()
    pat.force_authenticate(django_user_model.objects.create_user(username="pat"))
    assert pat.get(path).status_code == 403


def test_docs_use_the_self_hosted_assets_and_no_inline_script(client, operator):
    client.force_login(operator)
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "<script>" not in page and "<style>" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/workflows/" in schema.content
