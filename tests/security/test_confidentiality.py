"""A public change that triggers a private project never names it: not in commit statuses, the
summary comment, `/baton plan`, refusal or "unknown key" replies, nor in "did not succeed" texts;
a re-run keeps the upstream public; a `.baton.yml` naming projects that do not exist adds no rows.

The forge is a small fake at the adapter edge (what it is asked, and what it answers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from bots.commands.handlers import handle_comment
from bots.engine import mirroring, planning
from bots.engine.tracking import release
from bots.events import ChangeAction, ChangeEvent, CommentEvent
from bots.forges import registry
from bots.forges.base import ForgeError, RemoteChange, RemoteProject
from chains.models import Chain, Forge, Grant, Identity, Repository
from chains.planner import Change
from chains.redaction import PRIVATE, hides, scrub
from chains.status import Status
from tests.fakes.forge import COMMIT_STATE

SECRETS = ("secret/vault", "vault-deploy", "Vault rollout")
CONFIG = """\
downstream:
  - {key: web, project: acme/web}
  - {key: vault-deploy, label: "Vault rollout", project: secret/vault}
  - {key: after, project: acme/web, ref: other, depends_on: [vault-deploy]}
"""


@dataclass
class FakeForge:
    """What Baton asks a GitLab of: the file, the change, projects; statuses and comments."""

    config: str
    projects: dict[str, bool] = field(default_factory=dict)  # path -> public
    statuses: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)
    asked_for_projects: list[str] = field(default_factory=list)
    kind: str = "gitlab"

    def budgets(self, action: str, project: str, ref: str = "") -> list[Any]:
        return []

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        return self.config if project == "acme/app" and path == ".baton.yml" else None

    def changed_files(self, project: str, number: int) -> list[str]:
        return []

    def public_email(self, username: str) -> str | None:
        return None

    def can_write(self, project: str, username: str) -> bool:
        return False

    def change_ref(self, number: int) -> str:
        return f"refs/merge-requests/{number}/head"

    def get_change(self, project: str, number: int) -> RemoteChange:
        return RemoteChange(
            number=number,
            url=f"https://forge.test/{project}/-/merge_requests/{number}",
            title="A change",
            author="alice",
            source_branch="feature",
            target_branch="main",
            head_sha="a" * 40,
            from_fork=False,
            state="opened",
            open=True,
        )

    def get_project(self, project: str) -> RemoteProject:
        self.asked_for_projects.append(project)
        if project not in self.projects:
            raise ForgeError("404 Project Not Found", permanent=True, status_code=404)
        return RemoteProject(
            id=str(len(project)),
            path=project,
            default_branch="main",
            web_url=f"https://forge.test/{project}",
            public=self.projects[project],
        )

    def commit_state(self, status: str) -> str:
        return COMMIT_STATE[Status(status)]  # as tests/fakes/forge.py (GitLab's states)

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        return shown == wanted

    def set_commit_status(self, project: str, sha: str, **status: Any) -> None:
        self.statuses.append({"project": project, "sha": sha, **status})

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        comment_id = comment_id or str(len(self.comments) + 1)
        self.comments[comment_id] = body
        return comment_id


@dataclass
class World:
    record: Forge
    fake: FakeForge


@pytest.fixture
def world(db: None) -> Iterator[World]:
    record = Forge.objects.create(
        kind="gitlab",
        slug="lab",
        name="GitLab",
        api_url="https://forge.test",
        token="t",
        webhook_secret="w",
    )
    fake = FakeForge(CONFIG, projects={"acme/web": True, "secret/vault": False})
    key = (record.pk, record.api_url, record.token, record.app_installation)
    registry._clients[key] = fake  # type: ignore[assignment]
    Repository.objects.create(forge=record, path="acme/web", visibility="public")
    Repository.objects.create(forge=record, path="secret/vault", visibility="private")
    alice = get_user_model().objects.create_user("alice-user")
    Identity.objects.create(forge=record, username="alice", user=alice)
    Grant.objects.create(
        user=alice, projects="acme/**", actions=["view", "trigger", "retry", "cancel"]
    )
    yield World(record, fake)
    registry._clients.pop(key, None)


def _opened(public: bool | None = True) -> ChangeEvent:
    change = Change(
        forge="lab",
        project="acme/app",
        project_url="https://forge.test/acme/app",
        number=7,
        url="https://forge.test/acme/app/-/merge_requests/7",
        source_branch="feature",
        target_branch="main",
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/7/head",
        title="A change",
        author="alice",
    )
    return ChangeEvent(ChangeAction.OPENED, change, project_id="1", public=public)


def _chain_and_mirror(world: World, event: ChangeEvent | None = None) -> Chain:
    planning.handle_change(world.record, event or _opened(), None)
    chain = Chain.objects.filter(change_number=7, superseded_by=None).get()
    release(chain.pk)  # "after" waited for the refused vault run: it is skipped
    _mirror(chain.pk)
    return chain


def _mirror(chain_id: int) -> None:
    """Mirror the chain as it stands. Its runs were planned a while ago: one still queued (no
    worker sends here) no longer holds the mirror back for its send."""
    Chain.objects.get(pk=chain_id).runs.update(created_at=timezone.now() - timedelta(minutes=5))
    mirroring.mirror(chain_id)


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s.lower() in text.lower()]


def _comment(world: World, body: str, comment_id: str) -> str:
    handle_comment(world.record, CommentEvent("acme/app", 7, "alice", body, comment_id), None)
    reply_id = max(world.fake.comments, key=int)
    return world.fake.comments[reply_id]


def test_statuses_on_a_public_change_do_not_name_a_private_target(world: World) -> None:
    chain = _chain_and_mirror(world)
    runs = {r.key: r for r in chain.runs.all()}
    assert runs["vault-deploy"].status == "failed"  # alice has no grant on secret/*
    assert runs["after"].status == "skipped"
    contexts = {s["context"] for s in world.fake.statuses}
    assert contexts == {"baton", "baton/web", "baton/after", "baton/private-1"}
    for status in world.fake.statuses:
        assert _leaks(status["context"] + " " + status["description"]) == [], status
    private = next(s for s in world.fake.statuses if s["context"] == "baton/private-1")
    assert private["description"] == f"{PRIVATE}: failed"
    assert private["target_url"] == ""
    after = next(s for s in world.fake.statuses if s["context"] == "baton/after")
    assert after["description"] == f"not run: {PRIVATE} did not succeed"


def test_the_summary_comment_does_not_name_a_private_target(world: World) -> None:
    _chain_and_mirror(world)
    (summary,) = world.fake.comments.values()
    assert _leaks(summary) == []
    assert f"| {PRIVATE} | — | — |" in summary
    assert "| web | acme/web |" in summary


def test_baton_plan_does_not_name_a_private_target_nor_say_why(world: World) -> None:
    _chain_and_mirror(world)
    reply = _comment(world, "/baton plan", "c1")
    assert "| web | acme/web |" in reply
    assert f"| {PRIVATE} | {PRIVATE} | — |" in reply
    assert _leaks(reply) == [], reply


def test_an_unknown_key_reply_lists_only_the_runs_the_change_may_know(world: World) -> None:
    _chain_and_mirror(world)
    reply = _comment(world, "/baton retry nope", "c2")
    assert f"no run called nope; the runs are web, after and 1 in {PRIVATE}" in reply
    assert _leaks(reply) == [], reply


def test_a_guessed_key_of_a_hidden_run_is_not_confirmed(world: World) -> None:
    """Red team: `/baton cancel vault-deploy` answered "may not cancel a private project" where
    a wrong guess answered "no run called …", and the reply's scrubbing replaced a right guess
    by "a private project": either way a commenter who may not view the project learned the
    hidden run's key. Now both read alike."""
    _chain_and_mirror(world)
    right = _comment(world, "/baton cancel vault-deploy", "c3a").split("Not done: ", 1)[1]
    wrong = _comment(world, "/baton cancel nope-nope123", "c3b").split("Not done: ", 1)[1]
    assert right.replace("vault-deploy", "nope-nope123") == wrong, (right, wrong)


def test_a_refusal_does_not_name_the_private_project(world: World) -> None:
    _chain_and_mirror(world)
    reply = _comment(world, "/baton retry failed", "c3")
    assert f"alice may not retry {PRIVATE} this touches" in reply
    assert "secret/vault" not in reply and "no grant" not in reply


def test_a_rerun_keeps_the_upstream_public_and_still_redacts(world: World) -> None:
    chain = _chain_and_mirror(world)
    planning.rerun_change(chain.pk, "alice")
    upstream = Repository.objects.get(path="acme/app")
    assert upstream.visibility == "public"
    newer = Chain.objects.filter(change_number=7, superseded_by=None).get()
    assert newer.pk != chain.pk
    release(newer.pk)
    _mirror(newer.pk)
    (summary,) = world.fake.comments.values()  # edited in place
    assert "re-run" in summary
    assert _leaks(summary) == [], summary


def test_a_hook_saying_private_is_still_heard(world: World) -> None:
    _chain_and_mirror(world)
    planning.handle_change(world.record, _opened(public=False), None)
    assert Repository.objects.get(path="acme/app").visibility == "private"


def test_a_file_naming_many_missing_projects_adds_no_repositories(world: World) -> None:
    ghosts = "".join(f"  - {{key: g{i}, project: acme/ghost-{i}}}\n" for i in range(150))
    strangers = "".join(f"  - {{key: s{i}, project: elsewhere/p-{i}}}\n" for i in range(150))
    world.fake.config = "downstream:\n" + ghosts + strangers
    before = Repository.objects.count()
    planning.handle_change(world.record, _opened(), None)
    chain = Chain.objects.get(change_number=7)
    assert chain.runs.count() == 300
    assert chain.runs.exclude(status="failed").count() == 0
    # the upstream itself (seen through the hook) and one row for every unknown target
    assert Repository.objects.count() == before + 2
    assert not Repository.objects.filter(path__startswith="acme/ghost-").exists()
    assert not Repository.objects.filter(path__startswith="elsewhere/").exists()
    # the forge is asked only about what alice may trigger
    assert sorted(world.fake.asked_for_projects) == sorted(f"acme/ghost-{i}" for i in range(150))
    ghost = chain.runs.get(key="g3")
    assert ghost.error.startswith("acme/ghost-3 could not be found on GitLab")
    stranger = chain.runs.get(key="s3")
    assert stranger.error.startswith("alice may not trigger elsewhere/p-3")


def test_a_permitted_target_the_forge_confirms_becomes_a_row_with_its_visibility(
    world: World,
) -> None:
    world.fake.projects["acme/new"] = False
    world.fake.config = "downstream:\n  - {key: new, project: acme/new}\n"
    planning.handle_change(world.record, _opened(), None)
    assert Repository.objects.get(path="acme/new").visibility == "private"


def test_a_plan_page_dry_run_adds_no_repositories(world: World) -> None:
    world.fake.config = "downstream:\n  - {key: g, project: acme/ghost}\n"
    planning.ensure_repository(world.record, "acme/app", public=True)
    before = Repository.objects.count()
    planning.dry_run(world.record, "acme/app", 7, None, lambda *_: planning.Verdict(True, "yes"))
    assert Repository.objects.count() == before


def test_scrub_replaces_whole_names_only() -> None:
    text = "not run: vault-deploy did not succeed; vault-deployer and secret/vault/x stay"
    assert scrub(text, {"vault-deploy", "secret/vault"}) == (
        f"not run: {PRIVATE} did not succeed; vault-deployer and secret/vault/x stay"
    )


@pytest.mark.parametrize(
    ("upstream", "target", "hidden"),
    [
        ("public", "public", False),
        ("public", "internal", True),
        ("public", "private", True),
        ("internal", "private", True),
        ("private", "private", False),
        ("public", "unknown", True),
    ],
)
def test_what_a_change_may_name(upstream: str, target: str, hidden: bool) -> None:
    assert hides(Repository(visibility=upstream), Repository(visibility=target)) is hidden


def test_the_repository_page_does_not_name_an_upstream_its_reader_may_not_view(db: None) -> None:
    from django.test import Client

    from tests import factories

    upstream = factories.chain("hidden/launcher", number=3)
    factories.run(upstream, "vault", project="secret/vault")
    reader = get_user_model().objects.create_user("vera")
    Grant.objects.create(user=reader, projects="secret/**", actions=["view"])
    client = Client()
    client.force_login(reader)
    vault = Repository.objects.get(path="secret/vault")
    page = client.get(f"/repositories/{vault.pk}/").content.decode()
    assert PRIVATE in page
    assert "hidden/launcher" not in page
    assert f"/chains/{upstream.pk}/" not in page
    admin = get_user_model().objects.create_superuser("ada")
    client.force_login(admin)
    assert "hidden/launcher" in client.get(f"/repositories/{vault.pk}/").content.decode()


def test_the_chain_page_does_not_name_a_private_run_in_a_visible_runs_texts(db: None) -> None:
    from django.test import Client

    from tests import factories

    chain = factories.chain("acme/app", number=4)
    factories.run(
        chain,
        "vault-deploy",
        label="Vault rollout",
        project="secret/vault",
        status="failed",
        web_url="https://gl.example.com/x",
    )
    factories.run(
        chain,
        "web",
        status="waiting",
        depends_on=["vault-deploy"],
        error="refused: this would trigger a cycle acme/app → secret/vault → acme/app",
    )
    reader = get_user_model().objects.create_user("vera")
    Grant.objects.create(user=reader, projects="acme/**", actions=["view"])
    client = Client()
    client.force_login(reader)
    page = client.get(f"/chains/{chain.pk}/").content.decode()
    assert "refused: this would trigger a cycle acme/app" in page
    assert _leaks(page) == []


def test_a_comment_on_a_project_baton_has_not_seen_asks_the_forge_how_visible_it_is(
    world: World,
) -> None:
    world.fake.projects["acme/app"] = True
    reply = _comment(world, "/baton plan", "c9")
    assert Repository.objects.get(path="acme/app").visibility == "public"
    assert f"| {PRIVATE} | {PRIVATE} | — |" in reply
    assert _leaks(reply) == [], reply


def test_a_refusal_from_the_engine_does_not_name_the_private_run_it_stopped_at(
    world: World,
) -> None:
    chain = _chain_and_mirror(world)
    web = chain.runs.get(key="web")
    web.status = "success"  # retried with what it set off: refused while that runs
    web.save(update_fields=["status"])
    vault = chain.runs.get(key="vault-deploy")
    vault.parent, vault.depth, vault.status = web, 2, "running"
    vault.save(update_fields=["parent", "depth", "status"])
    reply = _comment(world, "/baton retry web", "c4")
    # Refused (by the policy before the engine, since alice may not retry the private run it set
    # off), in words that name the private run only as a private project.
    assert f"{PRIVATE}" in reply.split("Not done: ", 1)[1]
    assert _leaks(reply) == [], reply


def test_what_a_private_project_set_off_is_not_named_either(world: World) -> None:
    from chains.models import Run

    chain = _chain_and_mirror(world)
    vault = chain.runs.get(key="vault-deploy")
    web = Repository.objects.get(path="acme/web")
    Run.objects.create(
        chain=chain,
        parent=vault,
        depth=2,
        key="vault-web-sync",
        label="Vault web sync",
        repository=web,
        status="queued",
    )
    world.fake.statuses.clear()
    _mirror(chain.pk)
    (summary,) = world.fake.comments.values()
    written = summary + " ".join(f"{s['context']} {s['description']}" for s in world.fake.statuses)
    assert "vault-web-sync" not in written and "Vault web sync" not in written
    assert {s["context"] for s in world.fake.statuses} >= {"baton/private-2"}
