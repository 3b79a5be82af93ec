"""Red-team findings on what a reader may learn about chains they may not view."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chains.models import Chain, Grant
from dashboard import queries
from tests import factories as f

HX = {"HX-Request": "true"}


@pytest.fixture
def reader(db: None, settings: Any) -> User:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("rae")
    Grant.objects.create(user=user, projects="acme/*", actions=["view"])
    return user


@pytest.fixture
def hidden(db: None) -> Chain:
    chain = f.chain("secret/vault", title="Rotate the payment keys", status="running")
    f.run(chain, "hsm", project="secret/hsm", status="running")
    return chain


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_hidden_chains_poll_answers_like_a_chain_that_does_not_exist(
    reader: User, hidden: Chain
) -> None:
    """The chain page's poll compared `?since=` with the chain's cursor before asking whether
    the reader may view the chain: the cursor of a chain that does not exist answered 204 for a
    missing id and 404 for a hidden one (an existence oracle), and a guessed cursor of a hidden
    chain (its state is a few small numbers) answered 204 while it held."""
    client = _client(reader)
    missing = hidden.pk + 1000
    nothing = queries.chain_version(missing)
    for cursor in (nothing, queries.chain_version(hidden.pk)):
        answers = [
            client.get(f"/chains/{pk}/?since={cursor}", headers=HX).status_code
            for pk in (missing, hidden.pk)
        ]
        assert answers[0] == answers[1], (cursor, answers)
        tags = [
            client.get(f"/chains/{pk}/", headers={**HX, "If-None-Match": f'"{cursor}"'})
            for pk in (missing, hidden.pk)
        ]
        assert tags[0].status_code == tags[1].status_code, cursor
    # The true cursor of the hidden chain tells the reader nothing.
    assert (
        client.get(
            f"/chains/{hidden.pk}/?since={queries.chain_version(hidden.pk)}", headers=HX
        ).status_code
        != 204
    )


def test_the_plan_pages_forge_error_does_not_name_a_target_the_reader_may_not_view(
    reader: User, monkeypatch: Any
) -> None:
    """The dry run asks the forge about the author's targets; a forge failure on one of them (a
    timeout, a 502) came back to the page as "The forge could not say: read repository
    secret/vault: …", naming a project the reader may not view."""
    from bots.forges.base import ForgeError
    from dashboard import views

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ForgeError("read repository secret/vault: GitLab said 502: bad gateway")

    monkeypatch.setattr(views, "dry_run", fail)
    repository = f.repository("acme/app")
    answer = _client(reader).get(f"/repositories/{repository.pk}/changes/4/plan/")
    assert answer.status_code == 502
    page = answer.content.decode()
    assert "secret/vault" not in page
    assert "forge" in page
