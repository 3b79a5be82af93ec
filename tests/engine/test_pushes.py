"""Pushes and tags into chains: only the targets whose `on:` names the event run, with
`UPSTREAM_REF` the pushed ref and no change number; statuses go on the pushed commit and no comment
is written; a new push to a branch supersedes the chain of the previous push to that branch only;
the release view lists push and tag chains under their branch or tag."""

from __future__ import annotations

from bots.engine.pushes import handle_push
from bots.events import PushEvent
from chains.models import Chain, Delivery, Run
from chains.planner import Change
from chains.status import Status
from dashboard import queries
from tests.engine.conftest import APP, NEWER_SHA, SHA, Engine

CONFIG = """\
downstream:
  - {key: review, project: acme/docs}
  - {key: build, project: acme/api, ref: main, on: [push], branches: "main release/*"}
  - {key: publish, project: acme/web, ref: main, on: [tag], branches: "v*"}
  - {key: keep, project: acme/docs, ref: main, on: [push], interruptible: false}
"""


def push_event(
    ref: str = "refs/heads/main", sha: str = SHA, pusher: str = "alice", files: tuple = ()
) -> PushEvent:
    kind = "tag" if ref.startswith("refs/tags/") else "push"
    return PushEvent(
        kind=kind,
        change=Change(
            forge="gl",
            project=APP,
            project_url=f"https://forge.test/{APP}",
            number=None,
            url="",
            source_branch=ref.removeprefix("refs/heads/") if kind == "push" else "",
            target_branch="",
            head_sha=sha,
            upstream_ref=ref,
            title="Release notes",
            author=pusher,
        ),
        project_id="",
        pusher=pusher,
        public=False,
        changed_files=files,
    )


def push(engine: Engine, event: PushEvent, delivery: Delivery | None = None) -> str:
    detail = engine.step(handle_push, engine.forge, event, delivery)
    engine.drain()
    return str(detail)


def test_a_branch_push_runs_the_push_targets_with_the_branch_ref(engine: Engine) -> None:
    engine.config(CONFIG)
    detail = push(engine, push_event())
    chain = Chain.objects.get()
    assert detail == f"chain {chain.pk} with 2 runs for push to main"
    assert chain.change_number is None
    assert (chain.trigger_action, chain.upstream_ref, chain.head_sha) == (
        "push",
        "refs/heads/main",
        SHA,
    )
    assert chain.reason == "push to main by alice"
    assert set(engine.runs(chain)) == {"build", "keep"}
    [build] = engine.fake.created("acme/api")
    assert build.variables["UPSTREAM_REF"] == "refs/heads/main"
    assert build.variables["UPSTREAM_BRANCH"] == "main"
    assert build.variables["UPSTREAM_SHA"] == SHA
    for absent in ("UPSTREAM_MR_IID", "UPSTREAM_MR_URL", "UPSTREAM_TARGET_BRANCH"):
        assert absent not in build.variables
    # Statuses on the pushed commit; there is no change, so no summary comment.
    assert {s["sha"] for s in engine.fake.statuses} == {SHA}
    assert {c for c, _ in engine.fake.contexts()} == {"baton/build", "baton/keep", "baton"}
    assert engine.fake.called("upsert_comment") == []


def test_a_tag_runs_the_tag_targets_with_the_tag_ref(engine: Engine) -> None:
    engine.config(CONFIG)
    push(engine, push_event("refs/tags/v1.2.0"))
    chain = Chain.objects.get()
    assert chain.trigger_action == "tag" and chain.target_branch == "v1.2.0"
    assert set(engine.runs(chain)) == {"publish"}
    [publish] = engine.fake.created("acme/web")
    assert publish.variables["UPSTREAM_REF"] == "refs/tags/v1.2.0"
    assert "UPSTREAM_BRANCH" not in publish.variables


def test_branches_filter_applies_to_the_pushed_branch_and_the_tag_name(engine: Engine) -> None:
    engine.config(CONFIG)
    push(engine, push_event("refs/heads/feature/x"))
    chain = Chain.objects.get()
    assert set(engine.runs(chain)) == {"keep"}  # build runs on main and release/* only
    detail = push(engine, push_event("refs/tags/nightly-3"))
    assert detail == "tag nightly-3: no target runs on tag"  # publish: v* only
    assert Chain.objects.count() == 1


def test_a_push_with_no_target_for_it_starts_no_chain(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: review, project: acme/docs}\n")
    assert push(engine, push_event()) == "push to main: no target runs on push"
    engine.config("downstream: [", ref=NEWER_SHA)
    detail = push(engine, push_event(sha=NEWER_SHA))
    assert detail.startswith("push to main: .baton.yml is invalid")
    assert not Chain.objects.exists()
    assert engine.fake.statuses == []


def test_a_new_push_supersedes_the_previous_push_to_the_same_branch_only(engine: Engine) -> None:
    engine.config(CONFIG)
    engine.config(CONFIG, ref=NEWER_SHA)
    first = Chain.objects.get(pk=_chain(engine, push_event()))
    other = Chain.objects.get(pk=_chain(engine, push_event("refs/heads/release/1")))
    old = engine.runs(first)
    for run in old.values():
        engine.pipeline(run, Status.RUNNING)
    second = Chain.objects.get(pk=_chain(engine, push_event(sha=NEWER_SHA)))
    first.refresh_from_db()
    other.refresh_from_db()
    assert first.superseded_by_id == second.pk
    assert other.superseded_by_id is None  # another branch is another line of pushes
    build, keep = (Run.objects.get(pk=old[k].pk) for k in ("build", "keep"))
    assert build.status == Status.CANCELED  # interruptible
    assert keep.status == Status.RUNNING  # interruptible: false
    assert [c.args[1] for c in engine.fake.called("cancel_pipeline")] == [build.remote_id]


def test_the_same_push_delivered_twice_starts_one_chain(engine: Engine, settings: object) -> None:
    settings.BATON_REPEAT_WINDOW = 60.0  # type: ignore[attr-defined]
    engine.config(CONFIG)
    deliveries = [
        Delivery.objects.create(
            forge=engine.forge, event="Push Hook", dedupe_key=f"push-{n}", payload={}
        )
        for n in range(2)
    ]
    push(engine, push_event(), deliveries[0])
    assert push(engine, push_event(), deliveries[1]).startswith("a repeat of chain")
    assert Chain.objects.count() == 1


def test_the_pusher_needs_permission_to_trigger(engine: Engine) -> None:
    engine.config(CONFIG)
    push(engine, push_event(pusher="mallory"))
    chain = Chain.objects.get()
    assert chain.runs_for == "mallory"
    assert all(r.status == Status.FAILED and "mallory may not" in r.error for r in chain.runs.all())
    assert engine.fake.created() == []


def test_changes_conditions_see_the_files_the_push_names(engine: Engine) -> None:
    engine.config(
        "downstream:\n"
        "  - {key: docs, project: acme/docs, ref: main, on: [push], if: 'changes(\"docs/**\")'}\n"
        "  - {key: api, project: acme/api, ref: main, on: [push], if: 'changes(\"api/**\")'}\n"
    )
    push(engine, push_event(files=("docs/index.md",)))
    assert set(engine.runs(Chain.objects.get())) == {"docs"}


def test_the_release_view_lists_push_and_tag_chains_by_their_ref(engine: Engine) -> None:
    engine.config(CONFIG)
    tag = _chain(engine, push_event("refs/tags/v1.2.0"))
    branch = _chain(engine, push_event())  # the newest chain for main (the tag's ran on main too)
    assert [c.pk for c in queries.release("main").chains] == [branch]
    assert [c.pk for c in queries.release("v1.2.0").chains] == [tag]
    assert {"main", "v1.2.0"} <= set(queries.recent_refs(engine.author))


def _chain(engine: Engine, event: PushEvent) -> int:
    detail = push(engine, event)
    assert detail.startswith("chain "), detail
    return int(detail.split()[1])


def test_a_push_keeps_the_default_branch_its_hook_names(engine: Engine) -> None:
    """The upstream row is kept up to date the one way changes keep it (planning's
    ``upstream_repository``): a project first seen through a push needs no look-up of its
    default branch when it becomes a target."""
    from dataclasses import replace

    from chains.models import Repository

    engine.config(CONFIG)
    push(engine, replace(push_event(), default_branch="trunk"))
    assert Repository.objects.get(forge=engine.forge, path=APP).default_branch == "trunk"


def _config_reads(engine: Engine) -> list[tuple[str, str]]:
    """The upstream's `.baton.yml` reads (a triggered project's own file is read too)."""
    return [
        (c.args[0], c.args[2])
        for c in engine.fake.called("read_file")
        if c.args[:2] == (APP, ".baton.yml")
    ]


def test_a_push_and_the_change_hook_of_the_same_commit_read_the_file_once(
    engine: Engine,
) -> None:
    """One `git push` to a change's branch sends a push hook and a change hook: the file at that
    commit cannot differ between them, so the forge is asked once."""
    engine.config(CONFIG)
    push(engine, push_event(ref="refs/heads/feature"))
    chain = engine.open_change()
    assert {r.key for r in chain.runs.all()} == {"review"}
    assert _config_reads(engine) == [(APP, SHA)]
    engine.config(CONFIG, ref=NEWER_SHA)
    engine.open_change(number=8, sha=NEWER_SHA)  # another commit: read again
    assert _config_reads(engine) == [(APP, SHA), (APP, NEWER_SHA)]


def test_a_file_on_a_branch_is_read_every_time(engine: Engine) -> None:
    """A change from a fork reads the target branch's file, which moves: never remembered."""
    engine.config(CONFIG, ref="main")
    engine.open_change(number=1, from_fork=True)
    engine.open_change(number=2, from_fork=True)
    assert _config_reads(engine) == [(APP, "main"), (APP, "main")]


def test_a_push_delivery_handled_again_after_its_chain_was_written_starts_nothing(
    engine: Engine,
) -> None:
    engine.config(CONFIG)
    delivery = Delivery.objects.create(
        forge=engine.forge, event="Push Hook", dedupe_key="push-again", payload={}
    )
    first = push(engine, push_event(), delivery)
    again = push(engine, push_event(), delivery)
    assert first.startswith("chain ") and again == "chain exists already"
    assert Chain.objects.get().delivery_id == delivery.pk
    assert len(engine.fake.created()) == 2  # build and keep, once each
