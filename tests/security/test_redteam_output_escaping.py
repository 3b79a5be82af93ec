"""Red-team finding: the reply mentions the commenter by the name the webhook gives, and only
checked that it is letters, digits, `-`, `_` and `.`. A webhook naming the author `all` or `here`
(someone holding only the webhook secret; neither forge lets a person take those names) made
Baton's first reply, posted before any permission check, notify everyone in the project."""

from __future__ import annotations

from typing import Any

import pytest

from bots.commands import handlers
from bots.events import CommentEvent
from bots.forges.base import RemoteProject
from bots.markdown import ZWJ
from tests import factories


class FakeClient:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def upsert_comment(self, project: str, number: int, body: str, comment_id: Any) -> str:
        self.bodies.append(body)
        return "reply-1"

    def get_project(self, path: str) -> RemoteProject:
        return RemoteProject(id="77", path=path, default_branch="main", web_url="", public=True)


@pytest.mark.django_db
@pytest.mark.parametrize("author", ["all", "here", "ALL", "everyone", "channel"])
def test_a_reply_never_mentions_everyone_through_the_authors_name(
    monkeypatch: pytest.MonkeyPatch, author: str
) -> None:
    fake = FakeClient()
    monkeypatch.setattr(handlers, "forge_for", lambda forge: fake)
    monkeypatch.setattr("bots.engine.planning.forge_for", lambda forge: fake)
    event = CommentEvent("acme/app", 7, author, "/baton help", f"c-{author}")
    handlers.handle_comment(factories.forge(), event, None)
    assert fake.bodies
    for body in fake.bodies:
        assert f"@{author}" not in body, body
        assert f"@{ZWJ}{author}" in body  # still named, as plain text
