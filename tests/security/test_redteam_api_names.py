"""Red-team finding: the API named hidden runs in the texts of runs the reader may view.

The chain page replaces the names of runs in projects the reader may not view (path, key, label)
in a visible run's `error` and `depends_on`, and shows earlier attempts' errors the same way;
`GET /api/v1/chains/<id>/`, `/api/v1/runs/` and `/api/v1/runs/<id>/` returned them as stored, so
`depends_on: ["vault-deploy"]` and "… → secret/vault → …" told the reader what the dashboard hid.
The chain's own `error` is scrubbed the same way."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from chains.models import Chain, Grant, RunAttempt
from tests import factories

SECRETS = ("vault-deploy", "Vault rollout", "secret/vault")


@pytest.fixture
def chain(db: None) -> Chain:
    chain = factories.chain(
        "acme/app", number=4, error="Vault rollout did not start: secret/vault said no"
    )
    factories.run(
        chain,
        "vault-deploy",
        label="Vault rollout",
        project="secret/vault",
        status="failed",
    )
    web = factories.run(
        chain,
        "web",
        status="waiting",
        depends_on=["vault-deploy"],
        error="refused: this would trigger a cycle acme/app → secret/vault → acme/app",
    )
    RunAttempt.objects.create(run=web, number=1, status="failed", error="vault-deploy failed")
    return chain


@pytest.fixture
def client(db: None) -> Client:
    reader = get_user_model().objects.create_user("vera")
    Grant.objects.create(user=reader, projects="acme/**", actions=["view"])
    client = Client()
    client.force_login(reader)
    return client


def _leaks(text: str) -> list[str]:
    return [name for name in SECRETS if name.lower() in text.lower()]


def test_the_api_does_not_name_a_hidden_run_in_a_visible_runs_texts(
    chain: Chain, client: Client
) -> None:
    web = chain.runs.get(key="web")
    for url in (
        f"/api/v1/chains/{chain.pk}/",
        f"/api/v1/runs/?chain={chain.pk}",
        f"/api/v1/runs/{web.pk}/",
        "/api/v1/chains/",
    ):
        answer = client.get(url)
        assert answer.status_code == 200, url
        text = json.dumps(answer.json(), ensure_ascii=False)
        assert _leaks(text) == [], (url, text)
    shown = client.get(f"/api/v1/runs/{web.pk}/").json()
    assert shown["depends_on"] == ["a private project"]
    assert "refused: this would trigger a cycle acme/app" in shown["error"]


def test_the_chain_page_does_not_name_a_hidden_run_in_the_chains_error(
    chain: Chain, client: Client
) -> None:
    page = client.get(f"/chains/{chain.pk}/").content.decode()
    assert _leaks(page) == []
