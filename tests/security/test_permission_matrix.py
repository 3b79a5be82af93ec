"""Every verb, persona and surface gets the same verdict from the one policy (issue 9, finding 4).

The chain starts in acme/app and its runs span acme/* (granted to the team member) and secret/*
(granted to nobody but the administrator). Before the fix the dashboard checked only the chain's
or the run's own project (cancel chain, retry failed, retry with downstream) and `/baton retry`
checked each named run alone, so the team member could act on runs in secret/*; the API refused.

Surfaces: a dashboard POST (htmx), the REST API, and a `/baton` comment on the change (a forge
account linked through Identity to the same Baton user, with the same name). Each case starts from
a fresh world; nothing is ever sent to a forge (work is queued only after commit, and these tests
never commit)."""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from bots.commands import handlers
from bots.engine import planning
from bots.events import CommentEvent
from bots.forges.base import RemoteChange
from chains.models import AuditEvent, Chain, Grant, Identity, Run
from chains.status import Status
from tests import factories as f
from tests.fakes.forge import FakeForge

PERSONAS = ("anonymous", "outsider", "viewer", "member", "admin")


@dataclass
class World:
    chain: Chain
    runs: dict[str, Run]


@pytest.fixture
def world(db: None) -> World:
    chain = f.chain("acme/app", number=7, status=Status.RUNNING)
    runs: dict[str, Run] = {}
    runs["api"] = f.run(chain, "api", project="acme/api", status=Status.FAILED)
    runs["vault"] = f.run(chain, "vault", project="secret/vault", status=Status.FAILED)
    runs["build"] = f.run(chain, "build", project="acme/build", status=Status.SUCCESS)
    runs["pkg"] = f.run(
        chain, "pkg", project="secret/pkg", status=Status.SUCCESS, parent=runs["build"]
    )
    runs["web"] = f.run(chain, "web", project="acme/web", status=Status.RUNNING)
    runs["ship"] = f.run(
        chain, "ship", project="secret/ship", status=Status.RUNNING, parent=runs["web"]
    )
    runs["docs"] = f.run(chain, "docs", project="acme/docs", status=Status.RUNNING)
    return World(chain, runs)


@pytest.fixture
def people(db: None, fast_passwords: None) -> dict[str, User | None]:
    """The personas of tests/factories.py on acme/*, their forge accounts linked."""
    return {p: f.persona(p, on=f.forge()) for p in PERSONAS}


# verb: (dashboard URL, API URL, comment, persona verdicts in PERSONAS order)
Case = tuple[str, str, str, tuple[bool, ...]]
NOBODY_BUT_ADMIN = (False, False, False, False, True)
TEAM = (False, False, False, True, True)
CASES: dict[str, Any] = {
    "view": (
        lambda w: ("GET", f"/chains/{w.chain.pk}/"),
        lambda w: ("GET", f"/api/v1/chains/{w.chain.pk}/"),
        "/baton status",
        (False, False, True, True, True),
    ),
    "retry run (granted project)": (
        lambda w: ("POST", f"/runs/{w.runs['api'].pk}/retry/"),
        lambda w: ("POST", f"/api/v1/runs/{w.runs['api'].pk}/retry/"),
        "/baton retry api",
        TEAM,
    ),
    "retry run (ungranted project)": (
        lambda w: ("POST", f"/runs/{w.runs['vault'].pk}/retry/"),
        lambda w: ("POST", f"/api/v1/runs/{w.runs['vault'].pk}/retry/"),
        "/baton retry vault",
        NOBODY_BUT_ADMIN,
    ),
    "retry subtree": (
        lambda w: ("POST", f"/runs/{w.runs['build'].pk}/retry-subtree/"),
        lambda w: ("POST", f"/api/v1/runs/{w.runs['build'].pk}/retry-subtree/"),
        "/baton retry build",
        NOBODY_BUT_ADMIN,
    ),
    "cancel run (granted only)": (
        lambda w: ("POST", f"/runs/{w.runs['docs'].pk}/cancel/"),
        lambda w: ("POST", f"/api/v1/runs/{w.runs['docs'].pk}/cancel/"),
        "/baton cancel docs",
        TEAM,
    ),
    "cancel run (propagates to an ungranted project)": (
        lambda w: ("POST", f"/runs/{w.runs['web'].pk}/cancel/"),
        lambda w: ("POST", f"/api/v1/runs/{w.runs['web'].pk}/cancel/"),
        "/baton cancel web",
        NOBODY_BUT_ADMIN,
    ),
    "cancel chain": (
        lambda w: ("POST", f"/chains/{w.chain.pk}/cancel/"),
        lambda w: ("POST", f"/api/v1/chains/{w.chain.pk}/cancel/"),
        "/baton cancel all",
        NOBODY_BUT_ADMIN,
    ),
    "retry failed": (
        lambda w: ("POST", f"/chains/{w.chain.pk}/retry-failed/"),
        lambda w: ("POST", f"/api/v1/chains/{w.chain.pk}/retry-failed/"),
        "/baton retry failed",
        NOBODY_BUT_ADMIN,
    ),
    "rerun": (
        lambda w: ("POST", f"/chains/{w.chain.pk}/rerun/"),
        lambda w: ("POST", f"/api/v1/chains/{w.chain.pk}/rerun/"),
        "/baton retry all",
        NOBODY_BUT_ADMIN,
    ),
}


@dataclass
class Answer:
    allowed: bool
    words: str  # the refusal in words ("" when allowed or not even shown)


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _dashboard(world: World, user: User | None, verb: str) -> Answer:
    method, url = CASES[verb][0](world)
    client = _client(user)
    if method == "GET":
        response = client.get(url)
        assert response.status_code in (200, 302, 404), response.status_code
        return Answer(response.status_code == 200, "")
    response = client.post(url, headers={"HX-Request": "true"})
    if "HX-Redirect" in response:  # sent to sign in
        return Answer(False, "")
    text = html.unescape(response.content.decode())
    if response.status_code == 403:
        found = re.search(r"You may not do that: (.*?)\.\s*(?:<button|</)", text)
        assert found is not None, text
        return Answer(False, found.group(1))
    assert response.status_code in (200, 404), response.status_code
    return Answer(response.status_code == 200, "")


def _api(world: World, user: User | None, verb: str) -> Answer:
    method, url = CASES[verb][1](world)
    client = _client(user)
    response = client.get(url) if method == "GET" else client.post(url)
    if response.status_code == 403:
        return Answer(False, response.json()["detail"])
    assert response.status_code in (200, 202, 401, 404), response.content
    return Answer(response.status_code in (200, 202), "")


_comments = itertools.count(1)


def _comment(world: World, user: User | None, verb: str, fake: FakeForge) -> Answer:
    # acme/app is private, like the targets, so a reply on its change may name what the policy's
    # words name (redaction on public changes is tested in test_confidentiality.py).
    if "acme/app" not in fake.projects:
        fake.add_project("acme/app", public=False, id="77")
    author = user.username if user is not None else "stranger"  # no linked Baton user
    event = CommentEvent("acme/app", 7, author, CASES[verb][2], f"c{next(_comments)}")
    handlers.handle_comment(world.chain.forge, event, None)
    reply = fake.bodies[-1]
    if "Not done: " in reply:
        return Answer(False, reply.split("Not done: ", 1)[1].strip())
    return Answer(True, "")


VERBS = sorted(CASES)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("surface", ["dashboard", "api", "comment"])
def test_every_surface_gives_the_policy_verdict(
    world: World,
    people: dict[str, User | None],
    persona: str,
    verb: str,
    surface: str,
    fake_forge: FakeForge,
    django_capture_on_commit_callbacks: Any,
) -> None:
    expected = CASES[verb][3][PERSONAS.index(persona)]
    before = {r.pk: (r.status, r.attempt, r.cancel_requested) for r in Run.objects.all()}
    user = people[persona]
    with django_capture_on_commit_callbacks(execute=False) as queued:
        if surface == "dashboard":
            answer = _dashboard(world, user, verb)
        elif surface == "api":
            answer = _api(world, user, verb)
        else:
            answer = _comment(world, user, verb, fake_forge)
    assert answer.allowed is expected, answer
    if not expected and verb != "view":
        # All or nothing: no run changed, nothing queued for a forge, nothing audited.
        after = {r.pk: (r.status, r.attempt, r.cancel_requested) for r in Run.objects.all()}
        assert after == before
        assert not queued
        assert not AuditEvent.objects.filter(action__startswith="run.").exists()
        assert not AuditEvent.objects.filter(action="chain.rerun").exists()
    if answer.words:
        # A refusal never names a project its reader may not view.
        assert "secret/" not in answer.words


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "view"])
@pytest.mark.parametrize("persona", ["viewer", "member"])
def test_the_refusal_is_in_the_same_words_everywhere(
    world: World,
    people: dict[str, User | None],
    persona: str,
    verb: str,
    fake_forge: FakeForge,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Personas who may view the chain are refused in the policy's words, the same on the
    dashboard, the API and in a comment reply."""
    if CASES[verb][3][PERSONAS.index(persona)]:
        pytest.skip("allowed")
    user = people[persona]
    with django_capture_on_commit_callbacks(execute=False):
        words = {
            "dashboard": _dashboard(world, user, verb).words,
            "api": _api(world, user, verb).words,
            "comment": _comment(world, user, verb, fake_forge).words,
        }
    assert words["api"], words
    assert words["dashboard"] == words["api"] == words["comment"], words
    assert words["api"].startswith(f"{user.username} may not ")  # type: ignore[union-attr]


class ChangeForge(FakeForge):
    """The change as a forge has it: its `.baton.yml` now also names a private target."""

    CONFIG = (
        "downstream:\n  - {key: api, project: acme/api}\n  - {key: vault, project: secret/vault}\n"
    )

    def get_change(self, project: str, number: int) -> RemoteChange:
        return RemoteChange(
            number=number,
            url=f"https://gl.example.com/{project}/-/merge_requests/{number}",
            title="Add the widget",
            author="alice",
            source_branch="feature/x",
            target_branch="main",
            head_sha="c0ffee" * 6 + "abcd",
            from_fork=False,
            state="opened",
            open=True,
        )

    def change_ref(self, number: int) -> str:
        return f"refs/merge-requests/{number}/head"

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        return self.CONFIG if path == ".baton.yml" else None

    def changed_files(self, project: str, number: int) -> list[str]:
        return []


def test_a_dashboard_rerun_runs_for_the_baton_user_not_a_forge_account_of_that_name(
    db: None, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Baton user mia may trigger acme/* only; the forge account called mia belongs to an
    administrator. A re-run from the dashboard must plan with mia's grants (the Baton user who
    pressed the button), so the private target is refused; before the fix it was planned with the
    forge account's (the administrator's) and sent."""
    forge = f.forge()
    mia = User.objects.create_user("mia")
    Grant.objects.create(user=mia, projects="acme/*", actions=["view", "trigger"])
    Identity.objects.create(forge=forge, username="mia", user=User.objects.create_superuser("ada"))
    # The change's author may trigger everything: a re-run needs mia's grants as well as hers.
    alice = User.objects.create_user("alice")
    Grant.objects.create(user=alice, projects="*", actions=["view", "trigger"])
    Identity.objects.create(forge=forge, username="alice", user=alice)
    chain = f.chain("acme/app", number=7, status="failed")
    f.run(chain, "api", project="acme/api", status="failed")
    fake = ChangeForge()
    monkeypatch.setattr("bots.engine.planning.forge_for", lambda forge: fake)
    monkeypatch.setattr("bots.permissions.forge_for", lambda forge: fake)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr("bots.tasks.rerun_chain.apply_async", lambda args, **kw: sent.append(args))

    with django_capture_on_commit_callbacks(execute=True):
        response = _client(mia).post(f"/chains/{chain.pk}/rerun/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    (args,) = sent
    with django_capture_on_commit_callbacks(execute=False):
        planning.rerun_change(args[0], args[1], user_id=args[2])

    new = Chain.objects.get(superseded_by=None, repository=chain.repository)
    assert new.pk != chain.pk
    assert new.runs_for_user == mia and new.actor == "mia" and new.reason == "re-run by mia"
    assert new.runs_for == new.author == "alice"
    runs = {run.key: run for run in new.runs.all()}
    assert runs["api"].error == ""
    assert "mia may not trigger secret/vault" in runs["vault"].error


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "view"])
def test_an_object_the_person_may_not_view_is_not_found_on_the_dashboard_and_the_api(
    world: World, people: dict[str, User | None], verb: str
) -> None:
    """404, as for an id that does not exist: never a 403 that confirms it, or names it."""
    user = people["outsider"]
    for surface in (0, 1):
        _, url = CASES[verb][surface](world)
        response = _client(user).post(url, headers={"HX-Request": "true"})
        assert response.status_code == 404, (surface, response.status_code)
        assert b"acme/" not in response.content and b"secret/" not in response.content
