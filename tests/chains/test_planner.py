from __future__ import annotations

from chains.config import parse_config
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
