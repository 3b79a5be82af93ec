"""What a reader may see is decided once, by the policy's ``visible_to``: filter choices, the
release ref picker, admin lists, and the cursors and ETags of polled lists are all computed over
what the reader may view. Before the fix the chain list's cursor was computed over every chain,
so `?q=` answered 204 or 200 depending on whether a hidden chain matched — a search oracle over
private projects, one character at a time — and the project filter listed every repository."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from chains.models import Chain, Grant, Repository, Run
from tests import factories as f

HX = {"HX-Request": "true"}


@pytest.fixture
def reader(db: None, settings: Any) -> User:
    """May view acme/* and nothing else."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = User.objects.create_user("rae")
    Grant.objects.create(user=user, projects="acme/*", actions=["view"])
    return user


@pytest.fixture
def hidden(db: None) -> Chain:
    """A chain in a project the reader may not view."""
    chain = f.chain(
        "secret/vault",
        title="Rotate the payment keys",
        source="rotate-keys",
        target="release/vault-9",
        status="running",
    )
    f.run(chain, "hsm", project="secret/hsm", status="running", ref="release/vault-9")
    return chain


@pytest.fixture
def shown(db: None) -> Chain:
    """A chain the reader may view."""
    chain = f.chain("acme/app", title="Add the widget", status="running")
    f.run(chain, "api", status="running")
    return chain


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _cursor(html: str) -> str:
    found = re.search(r'hx-get="[^"]*since=([0-9a-f]+|none)', html)
    assert found, "the live part polls with its cursor"
    return found.group(1)


def test_the_project_filter_lists_only_projects_the_reader_may_view(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    page = _client(reader).get("/").content.decode()
    assert "acme/app" in page
    assert "secret/vault" not in page and "secret/hsm" not in page
    nobody = User.objects.create_user("nob")
    page = _client(nobody).get("/").content.decode()
    options = re.findall(r"<option[^>]*>([^<]*)</option>", page)
    assert not any("/" in option for option in options), options


@pytest.mark.parametrize("probe", ["Rotate", "rotate-keys", "secret", "vault", "payment"])
def test_search_polls_do_not_tell_whether_a_hidden_chain_matches(
    reader: User, hidden: Chain, shown: Chain, probe: str
) -> None:
    client = _client(reader)
    # A search that matches nothing visible: its cursor is that of an empty list.
    empty = client.get("/?q=nothing-here", headers=HX)
    cursor, tag = _cursor(empty.content.decode()), empty["ETag"]
    for q in (probe, "no-such-words"):
        assert client.get(f"/?q={q}&since={cursor}", headers=HX).status_code == 204, q
        answer = client.get(f"/?q={q}", headers={**HX, "If-None-Match": tag})
        assert answer.status_code == 304, q
        assert answer["ETag"] == tag


def test_a_hidden_chain_changing_does_not_move_the_readers_cursor(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    client = _client(reader)
    cursor = _cursor(client.get("/", headers=HX).content.decode())
    Run.objects.filter(chain=hidden).update(status="failed")
    f.chain("secret/vault", title="Another private change")
    assert client.get(f"/?since={cursor}", headers=HX).status_code == 204


def test_a_hidden_repositorys_page_poll_says_nothing(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    """The repository page's poll of a hidden project answers as if it had no chains."""
    client = _client(reader)
    empty = Repository.objects.create(forge=hidden.forge, path="acme/empty")
    cursor = _cursor(client.get(f"/repositories/{empty.pk}/", headers=HX).content.decode())
    answer = client.get(f"/repositories/{hidden.repository_id}/?since={cursor}", headers=HX)
    assert answer.status_code == 204
    assert client.get(f"/repositories/{hidden.repository_id}/").status_code == 404


def test_release_polls_do_not_report_on_hidden_chains(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    client = _client(reader)
    nothing = client.get("/releases/?ref=release/none-such", headers=HX).content.decode()
    cursor = _cursor(nothing)
    # A ref only a hidden chain uses looks like a ref nobody uses ...
    answer = client.get(f"/releases/?ref=release/vault-9&shown=&since={cursor}", headers=HX)
    assert answer.status_code == 204
    # ... and naming a hidden chain in ?shown= does not follow its progress.
    url = f"/releases/?ref=release/vault-9&shown={hidden.pk}"
    before = _cursor(client.get(url, headers=HX).content.decode())
    Run.objects.filter(chain=hidden).update(status="success")
    assert client.get(f"{url}&since={before}", headers=HX).status_code == 204


def test_the_release_ref_picker_lists_only_refs_of_chains_the_reader_may_view(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    page = _client(reader).get("/releases/").content.decode()
    assert "release/vault-9" not in page
    assert f'value="{shown.target_branch}"' in page


def test_staff_see_only_visible_chains_and_repositories_in_the_admin(
    reader: User, hidden: Chain, shown: Chain
) -> None:
    reader.is_staff = True
    reader.save()
    reader.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_chain", "view_repository"])
    )
    client = _client(reader)
    chains = client.get("/admin/chains/chain/").content.decode()
    assert "acme/app" in chains and "secret/vault" not in chains
    repositories = client.get("/admin/chains/repository/").content.decode()
    assert "acme/app" in repositories and "secret/" not in repositories
    assert client.get(f"/admin/chains/chain/{hidden.pk}/change/").status_code in (302, 404)
