"""Cycles are found by project (forge and path), whatever ref each lap runs on, and refused
before anything is sent, with the loop in words: A → B → A on the default branch, and
A → B → C → A across forges."""

from __future__ import annotations

from bots.engine.planning import cycle_path
from chains.models import Chain, Forge, Run
from chains.status import Status
from tests.engine.conftest import APP, Engine


def _run(chain: Chain, key: str) -> Run:
    return chain.runs.select_related("repository").get(key=key)


def test_a_loop_back_on_the_default_branch_is_refused_before_dispatch(engine: Engine) -> None:
    # acme/app's change runs acme/api, whose own file triggers acme/app on its default branch
    # (main): not the ref the change came from, but the same project.
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    engine.config(
        "downstream:\n  - {key: back, project: acme/app, on: [upstream]}\n",
        project="acme/api",
        ref="main",
    )
    chain = engine.open_change()
    back = _run(chain, "back")
    assert back.parent_id == _run(chain, "api").pk
    assert back.status == Status.FAILED
    assert back.error == "refused: this would trigger a cycle acme/app → acme/api → acme/app"
    engine.pipeline(_run(chain, "api"), Status.SUCCESS)
    assert engine.fake.created(APP) == []  # never sent, not even once
    chain.refresh_from_db()
    assert chain.status == Status.FAILED


def test_a_loop_through_three_projects_on_two_forges_is_refused_with_its_path(
    engine: Engine,
) -> None:
    github = Forge.objects.create(
        kind=Forge.Kind.GITHUB,
        slug="gh",
        name="GitHub",
        api_url="https://gh.example.com/api/v3",
        token="ghp-engine",
        webhook_secret="hook-secret",
        bot_username="baton-bot",
    )
    engine.config("downstream:\n  - {key: b, project: 'gh:acme/docs'}\n")
    engine.config(
        "downstream:\n  - {key: c, project: 'gl:acme/web', on: [upstream]}\n",
        project="acme/docs",
        ref="main",
    )
    engine.config(
        "downstream:\n  - {key: a, project: 'gl:acme/app', on: [upstream]}\n",
        project="acme/web",
        ref="main",
    )
    chain = engine.open_change()
    b = _run(chain, "b")
    assert b.repository.forge == github
    engine.forge, gitlab = github, engine.forge  # the pipeline event comes from GitHub
    engine.pipeline(b, Status.SUCCESS)
    engine.forge = gitlab
    c = _run(chain, "c")
    assert c.status == Status.PENDING and c.repository.forge == gitlab
    a = _run(chain, "a")
    assert (a.parent_id, a.depth, a.status) == (c.pk, 3, Status.FAILED)
    assert a.error == (
        "refused: this would trigger a cycle gl:acme/app → gh:acme/docs → gl:acme/web → gl:acme/app"
    )
    engine.pipeline(c, Status.SUCCESS)
    assert engine.fake.created(APP) == []
    assert [p.project for p in engine.fake.created()] == ["acme/docs", "acme/web"]


def test_a_chain_may_pass_the_same_ref_of_other_projects_and_run_child_pipelines(
    engine: Engine,
) -> None:
    # No project repeats: acme/api and acme/web both run on main, and acme/api's own child
    # pipeline (project: self) is not a loop.
    engine.config("downstream:\n  - {key: api, project: acme/api}\n")
    engine.config(
        "downstream:\n  - {key: web, project: acme/web, on: [upstream]}\n"
        "  - {key: unit, project: self, on: [upstream]}\n",
        project="acme/api",
        ref="main",
    )
    chain = engine.open_change()
    web, unit = _run(chain, "web"), _run(chain, "unit")
    assert web.error == "" and unit.error == ""
    engine.pipeline(_run(chain, "api"), Status.SUCCESS)
    assert sorted(p.project for p in engine.fake.created()) == ["acme/api", "acme/api", "acme/web"]


def test_projects_compare_by_forge_and_path_in_any_case_not_by_ref() -> None:
    path = [(1, "gl", "acme/app"), (2, "gh", "acme/docs")]
    assert cycle_path(path, 1, "gl", "Acme/App") == "gl:acme/app → gh:acme/docs → gl:Acme/App"
    assert cycle_path(path, 2, "gh", "acme/docs") == "acme/docs → acme/docs"
    assert cycle_path(path, 2, "gh", "acme/app") == ""  # the same path on another forge
    assert cycle_path([(1, "gl", "acme/app")], 1, "gl", "acme/api") == ""
