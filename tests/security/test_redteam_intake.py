"""Red-team findings on webhook bodies: a well-signed delivery never gets a 5xx.

Python's JSON decoder accepts `NaN`, `Infinity` and `-Infinity` (and `1e999`, which overflows to
infinity), but PostgreSQL's jsonb holds no such numbers: storing the delivery failed and intake
answered 500, which forges count toward disabling the hook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from chains.models import Delivery, Forge
from tests.conftest import load_fixture

HEADERS = {"X-Gitlab-Token": "hook-secret", "X-Gitlab-Event": "Merge Request Hook"}


@pytest.fixture
def forge(db: None) -> Forge:
    # The webhook's forge cache is emptied by tests/conftest.py before each test.
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="glpat-secret-token",
        webhook_secret="hook-secret",
    )


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_is_400_in_words_not_a_500(
    client: Client, forge: Forge, number: str, django_capture_on_commit_callbacks: Any
) -> None:
    body = json.dumps(load_fixture("gitlab", "merge_request__open"))
    body = body.replace("{", '{"weight": ' + number + ", ", 1)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/hooks/gl/", data=body, content_type="application/json", headers=HEADERS
        )
    assert response.status_code == 400, response.content[:200]
    assert "number" in response.json()["error"]
    assert not Delivery.objects.exists()
