from __future__ import annotations

import pytest

from chains.conditions import Context
from chains.config import ConfigError, parse_config
from chains.planner import Change, expand, plan

CHANGE = Change(
    forge="gitlab",
    project="acme/app",
    project_url="http://forge/acme/app",
    number=7,
    url="http://forge/acme/app/-/merge_requests/7",
    source_branch="feature/x",
    target_branch="main",
    head_sha="a" * 40,
    upstream_ref="refs/merge-requests/7/head",
    title="Add x",
    author="alice",
)


def test_upstream_variables_reach_every_target() -> None:
    (run,) = plan(CHANGE, parse_config("downstream: [{project: acme/api}]")).runs
    assert run.variables == {
        "UPSTREAM_REF": "refs/merge-requests/7/head",
        "UPSTREAM_PROJECT": "acme/app",
        "UPSTREAM_PROJECT_URL": "http://forge/acme/app",
        "UPSTREAM_SHA": "a" * 40,
        "UPSTREAM_BRANCH": "feature/x",
        "UPSTREAM_TARGET_BRANCH": "main",
        "UPSTREAM_MR_IID": "7",
        "UPSTREAM_MR_URL": "http://forge/acme/app/-/merge_requests/7",
    }
    assert run.ref is None  # the target's default branch, resolved when sent
    assert (run.project, run.forge, run.is_child) == ("acme/api", None, False)


def test_precedence_target_over_global_and_upstream_over_both() -> None:
    text = """
variables: {STREAM: stable, LEVEL: global, UPSTREAM_SHA: forged}
downstream:
  - project: acme/api
    variables: {LEVEL: target, MSG: "from $UPSTREAM_BRANCH on ${STREAM}"}
"""
    (run,) = plan(CHANGE, parse_config(text)).runs
    assert run.variables["LEVEL"] == "target"
    assert run.variables["STREAM"] == "stable"
    assert run.variables["UPSTREAM_SHA"] == "a" * 40
    assert run.variables["MSG"] == "from feature/x on stable"


def test_masked_variables_are_kept_apart_and_never_expanded_into_others() -> None:
    text = """
variables: {TOKEN: {value: hunter2, masked: true}}
downstream: [{project: acme/api, variables: {LEAK: "$TOKEN"}}]
"""
    (run,) = plan(CHANGE, parse_config(text)).runs
    assert run.masked_variables == {"TOKEN": "hunter2"}
    assert "TOKEN" not in run.variables
    assert run.variables["LEAK"] == "$TOKEN"


def test_ref_expansion_and_child_pipeline_defaults() -> None:
    text = """
downstream:
  - {project: acme/api, ref: "release/$UPSTREAM_TARGET_BRANCH"}
  - {project: self}
  - {project: "github:acme/docs"}
"""
    api, child, docs = plan(CHANGE, parse_config(text)).runs
    assert api.ref == "release/main"
    assert (child.is_child, child.project, child.ref, child.key) == (
        True,
        "acme/app",
        "feature/x",
        "child",
    )
    assert (docs.forge, docs.project) == ("github", "acme/docs")


def test_expand_leaves_unknown_names() -> None:
    assert expand("$A-${B}-$C", {"A": "1", "B": "2"}) == "1-2-$C"


def plan_keys(text: str, change: Change = CHANGE, **kwargs: object) -> list[str]:
    return [run.key for run in plan(change, parse_config(text), **kwargs).runs]  # type: ignore[arg-type]


def test_on_branches_and_if_select_targets_and_say_why_not() -> None:
    text = """
downstream:
  - {key: always, project: acme/a}
  - {key: pushes, project: acme/b, on: [push]}
  - {key: releases, project: acme/c, branches: "release/* !release/old"}
  - {key: mains, project: acme/d, branches: [main]}
  - {key: docs, project: acme/e, if: 'changes("docs/**") || "docs" in labels'}
"""
    release = Change(**{**CHANGE.__dict__, "target_branch": "release/2.0"})
    result = plan(release, parse_config(text))
    assert [r.key for r in result.runs] == ["always", "releases"]
    reasons = dict(result.excluded)
    assert reasons["pushes"] == "runs on push, not on merge_request"
    assert reasons["mains"] == "branch 'release/2.0' does not match 'main'"
    assert reasons["docs"].startswith("if: ")
    labelled = Change(**{**release.__dict__, "labels": ("docs",)})
    assert "docs" in plan_keys(text, labelled)


def test_dependencies_and_their_failure_policy_are_planned() -> None:
    text = """
downstream:
  - {key: build, project: acme/build}
  - {key: test, project: acme/test, depends_on: build, soft_fail: true}
  - {key: deploy, project: acme/deploy, depends_on: [build, test], allow_dependency_failure: true}
  - {key: only-main, project: acme/x, branches: main, depends_on: nothing-left}
"""
    with pytest.raises(ConfigError):
        parse_config(text)  # nothing-left names no target
    text = text.replace("depends_on: nothing-left", "depends_on: build")
    runs = {r.key: r for r in plan(CHANGE, parse_config(text)).runs}
    assert runs["test"].depends_on == ("build",) and runs["test"].soft_fail
    assert runs["deploy"].depends_on == ("build", "test")
    assert runs["deploy"].allow_dependency_failure


def test_a_dependency_left_out_by_the_rules_is_no_dependency() -> None:
    text = """
downstream:
  - {key: a, project: acme/a, on: [push]}
  - {key: b, project: acme/b, depends_on: a}
"""
    (b,) = plan(CHANGE, parse_config(text)).runs
    assert b.depends_on == ()


def test_inherit_and_params_file_precedence() -> None:
    text = """
variables: {A: global, B: global, C: global}
downstream:
  - {key: none, project: x/a, inherit: {variables: false}}
  - {key: some, project: x/b, inherit: {variables: [B]}}
  - {key: file, project: x/c, params_file: ci/down.env, variables: {C: target}}
  - {key: missing, project: x/d, params_file: ci/nope.env}
"""
    params = {"ci/down.env": {"B": "file", "C": "file", "D": "file"}, "ci/nope.env": None}
    runs = {r.key: r for r in plan(CHANGE, parse_config(text), params=params).runs}
    assert not {"A", "B", "C"} & set(runs["none"].variables)
    assert runs["some"].variables["B"] == "global" and "A" not in runs["some"].variables
    file_vars = runs["file"].variables
    assert (file_vars["A"], file_vars["B"], file_vars["C"], file_vars["D"]) == (
        "global",
        "file",
        "target",
        "file",
    )
    assert runs["missing"].error == "params_file ci/nope.env not found at aaaaaaaaaaaa"


def test_upstream_entries_fire_only_for_upstream_triggers() -> None:
    text = "downstream: [{key: next, project: acme/next, on: [upstream]}]"
    assert plan_keys(text) == []
    upstream = Context(branch="main", source="upstream")
    assert plan_keys(text, context=upstream, upstream_extra={"UPSTREAM_PIPELINE_ID": "9"}) == [
        "next"
    ]
    (run,) = plan(
        CHANGE, parse_config(text), context=upstream, upstream_extra={"UPSTREAM_PIPELINE_ID": "9"}
    ).runs
    assert run.variables["UPSTREAM_PIPELINE_ID"] == "9"
