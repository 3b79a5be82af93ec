"""`POST /hooks/<slug>/`: verify, record once, enqueue after commit, answer 202."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from chains.models import Delivery, Forge
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forget_forges() -> None:
    from django.core.cache import caches

    caches["local"].clear()  # each test has its own database rows


@pytest.fixture
def forge() -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


def post(client: Client, body: bytes | str, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/hooks/gl/", data=body, content_type="application/json", headers=headers)


MR = json.dumps(load_fixture("gitlab", "merge_request__open"))


def test_accepts_and_enqueues_after_commit(
    client: Client, forge: Forge, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            client,
            MR,
            **{
                "X-Gitlab-Token": "hook-secret",
                "X-Gitlab-Event": "Merge Request Hook",
                "Idempotency-Key": "k-1",
            },
        )
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    delivery = Delivery.objects.get()
    assert (delivery.dedupe_key, delivery.event, delivery.outcome) == (
        "k-1",
        "Merge Request Hook",
        "queued",
    )
    assert delivery.payload["object_attributes"]["iid"] == 1
    assert len(callbacks) == 1


def test_a_repeat_is_a_no_op(
    client: Client, forge: Forge, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    headers = {
        "X-Gitlab-Token": "hook-secret",
        "X-Gitlab-Event": "Merge Request Hook",
        "Idempotency-Key": "k-2",
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        statuses = [post(client, MR, **headers).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    assert Delivery.objects.count() == 1
    assert len(callbacks) == 1


def test_falls_back_to_the_event_uuid(client: Client, forge: Forge) -> None:
    headers = {
        "X-Gitlab-Token": "hook-secret",
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Event-UUID": "uuid-9",
    }
    post(client, MR, **headers)
    post(client, MR, **headers)
    assert list(Delivery.objects.values_list("dedupe_key", flat=True)) == ["uuid-9"]


@pytest.mark.parametrize("token", [None, "", "wrong", "hook-secret2"])
def test_bad_or_missing_token_is_401_and_stores_nothing(
    client: Client, forge: Forge, token: str | None
) -> None:
    headers = {"X-Gitlab-Event": "Merge Request Hook", "Idempotency-Key": "k-3"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    response = post(client, MR, **headers)
    assert response.status_code == 401
    assert "hook-secret" not in response.content.decode()
    assert Delivery.objects.count() == 0


def test_not_json_is_400(client: Client, forge: Forge) -> None:
    response = post(
        client,
        "{not json",
        **{"X-Gitlab-Token": "hook-secret", "X-Gitlab-Event": "Merge Request Hook"},
    )
    assert response.status_code == 400
    assert Delivery.objects.count() == 0


def test_unhandled_authentic_event_gets_2xx(
    client: Client, forge: Forge, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(
            client,
            json.dumps(load_fixture("gitlab", "job__build")),
            **{"X-Gitlab-Token": "hook-secret", "X-Gitlab-Event": "Job Hook"},
        )
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert Delivery.objects.get().outcome == "ignored"
    assert callbacks == []


def test_unknown_forge_is_404(client: Client) -> None:
    assert post(client, MR, **{"X-Gitlab-Token": "x"}).status_code == 404


def test_get_is_refused(client: Client, forge: Forge) -> None:
    assert client.get("/hooks/gl/").status_code == 405


def test_secrets_are_encrypted_at_rest(forge: Forge) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT token, webhook_secret FROM chains_forge")
        token, secret = cursor.fetchone()
    assert "glpat-secret-token" not in token
    assert "hook-secret" not in secret
    assert Forge.objects.get().token == "glpat-secret-token"
