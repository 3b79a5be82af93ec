"""Token (django-rest-knox) and session authentication; anonymous requests are 401."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from chains.models import AuditEvent
from tests.api.conftest import People, World

API = "/api/v1"


def test_a_token_made_with_create_api_token_works(world: World, people: People) -> None:
    out = StringIO()
    call_command("create_api_token", "vic", stdout=out, stderr=StringIO())
    key = out.getvalue().split()[2]  # "Generated token <key> for user vic"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"{API}/chains/{world.app.pk}/").status_code == 200


@pytest.mark.parametrize(
    "header", ["Token not-a-key", "Token", "Bearer abc", "Token a b", "Basic dmljOnB3"]
)
def test_a_bad_credential_is_401(world: World, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(f"{API}/chains/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_inactive_user_is_401(world: World, people: People) -> None:
    user = people.users["viewer"]
    assert user is not None
    user.is_active = False
    user.save()
    assert people["viewer"].get(f"{API}/chains/").status_code == 401


def test_a_session_reads_and_acts_with_its_csrf_token(world: World, people: People) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(people.users["operator"])
    assert client.get(f"{API}/chains/{world.app.pk}/").status_code == 200
    refused = client.post(f"{API}/chains/{world.app.pk}/rerun/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    csrf = "k" * 32  # the browser's cookie and header must agree
    client.cookies["csrftoken"] = csrf
    accepted = client.post(f"{API}/chains/{world.app.pk}/rerun/", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 202
    assert AuditEvent.objects.get().surface == "api"
