"""``Repository.update_from``: the one way a repository row takes in a forge's project answer."""

from __future__ import annotations

import pytest

from bots.forges.base import RemoteProject
from chains.models import Forge, Repository

pytestmark = pytest.mark.django_db


def _repository() -> Repository:
    forge = Forge.objects.create(
        name="GitLab",
        slug="gl",
        kind="gitlab",
        api_url="https://gitlab.example.com",
        token="t",
        webhook_secret="s",
    )
    return Repository.objects.create(forge=forge, path="acme/app", visibility="public")


def test_the_answer_is_saved_and_only_what_changed_is_written() -> None:
    repo = _repository()
    remote = RemoteProject(id="42", path="acme/app", default_branch="trunk", web_url="https://x/a")
    assert repo.update_from(remote) == ["remote_id", "web_url", "default_branch", "visibility"]
    repo.refresh_from_db()
    assert (repo.remote_id, repo.web_url, repo.default_branch, repo.visibility) == (
        "42",
        "https://x/a",
        "trunk",
        "private",  # not public on the forge any more: redacted from now on
    )
    assert repo.update_from(remote) == []


def test_an_empty_value_in_the_answer_keeps_what_is_known() -> None:
    repo = _repository()
    repo.update_from(
        RemoteProject(id="42", path="acme/app", default_branch="", web_url="", public=True)
    )
    repo.refresh_from_db()
    assert repo.remote_id == "42" and repo.visibility == "public" and repo.default_branch == ""
