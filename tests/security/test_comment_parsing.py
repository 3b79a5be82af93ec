"""Only commands a reader sees as commands run: not those in HTML comments, `<pre>` blocks or
indented code (fenced code and quotes were already ignored); edited comments run nothing on
either forge; a comment carries out at most BATON_MAX_COMMANDS commands."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bots.commands import handlers
from bots.commands.parser import parse_comment
from bots.events import CommentEvent
from bots.inbound import github, gitlab
from chains.models import Forge
from tests.conftest import load_fixture
from tests.fakes.forge import FakeForge


@pytest.mark.parametrize(
    "body",
    [
        "<!-- /baton retry -->",
        "Looks good.\n<!--\n/baton cancel all\n-->",
        "<!-- hidden until the end\n/baton retry all",
        "    /baton retry",
        "\t/baton cancel",
        "<pre>\n/baton retry all\n</pre>",
        '<PRE class="log">\n/baton run api\n</PRE>',
        "```\n/baton retry\n```",
        "> /baton retry",
    ],
)
def test_hidden_or_code_commands_do_not_run(body: str) -> None:
    assert parse_comment(body) == ([], [])


def test_visible_commands_next_to_hidden_ones_still_run() -> None:
    body = "<!-- /baton cancel all -->\n/baton retry api\n<pre>/baton run x</pre>\n/baton status"
    commands, mistakes = parse_comment(body)
    assert [(c.verb, c.args) for c in commands] == [("retry", ("api",)), ("status", ())]
    assert mistakes == []


def test_a_tag_that_only_starts_like_pre_hides_nothing() -> None:
    commands, _ = parse_comment("<preview>\n/baton status")
    assert [c.verb for c in commands] == ["status"]


def test_scanning_is_linear_on_hostile_bodies() -> None:
    started = time.monotonic()
    parse_comment("<!---->" * 100_000 + "<pre")
    parse_comment("<pre" + "x" * 500_000)
    assert time.monotonic() - started < 5


def test_an_edited_gitlab_note_runs_nothing() -> None:
    payload = load_fixture("gitlab", "note__merge_request")
    payload["object_attributes"]["note"] = "/baton retry all"
    assert isinstance(gitlab.parse("Note Hook", payload), CommentEvent)
    payload["object_attributes"]["action"] = "update"
    assert gitlab.parse("Note Hook", payload) is None


def test_an_edited_github_comment_runs_nothing() -> None:
    payload = load_fixture("github", "issue_comment__created_on_pr")
    payload["comment"]["body"] = "/baton retry all"
    assert isinstance(github.parse("issue_comment", payload), CommentEvent)
    payload["action"] = "edited"
    assert github.parse("issue_comment", payload) is None


# --- commands per comment ----------------------------------------------------------------------


@pytest.fixture
def client(fake_forge: FakeForge) -> FakeForge:
    """The forge, faked: acme/app is public, as on a hook."""
    fake_forge.add_project("acme/app", public=True, id="77")
    return fake_forge


@pytest.fixture
def forge(db: None) -> Forge:
    return Forge.objects.create(
        kind="gitlab",
        slug="gl",
        name="GitLab",
        api_url="http://127.0.0.1:1",
        token="t",
        webhook_secret="s",
    )


def test_a_hundred_plan_lines_make_at_most_the_cap(
    forge: Forge, client: FakeForge, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    calls: list[str] = []

    def plan(*args: Any) -> str:
        calls.append("plan")  # each real `/baton plan` reads the MR, the file and more
        return "the plan"

    monkeypatch.setitem(handlers.HANDLERS, "plan", plan)
    event = CommentEvent("acme/app", 7, "alice", "\n".join(["/baton plan"] * 100), "c-1")
    handlers.handle_comment(forge, event, None)
    assert len(calls) == settings.BATON_MAX_COMMANDS == 5
    assert "at most 5 commands per comment; 95 more were left out" in client.bodies[-1]


def test_a_long_reply_is_cut_with_a_note(
    forge: Forge, client: FakeForge, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BATON_MAX_REPLY_CHARS = 2000
    monkeypatch.setitem(handlers.HANDLERS, "status", lambda *a: "| row |\n" * 5000)
    event = CommentEvent("acme/app", 7, "alice", "/baton status", "c-2")
    handlers.handle_comment(forge, event, None)
    reply = client.bodies[-1]
    assert len(reply) <= 2000
    assert "cut: this reply had" in reply


def test_a_huge_line_is_not_echoed_whole(forge: Forge, client: FakeForge) -> None:
    body = "/baton " + "x" * 50_000 + "\n/baton retry " + "k" * 50 + " " + "y" * 50_000
    handlers.handle_comment(forge, CommentEvent("acme/app", 7, "alice", body, "c-3"), None)
    assert all(len(reply) < 5_000 for reply in client.bodies)
