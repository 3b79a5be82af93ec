"""Finding 1 of issue 9: a project path, file path or ref that walks out of the repository the
policy checked (``acme/api/../../victim/prod-deploy``, ``params_file: ../x``) is refused where it
enters (`.baton.yml`, admin rules, webhooks) and once more in the forge adapters, before any
request goes out."""

from __future__ import annotations

import copy

import pytest
import responses
from django.core.exceptions import ValidationError

from bots.events import MalformedPayload
from bots.forges.base import ForgeError
from bots.forges.github import GitHubForge
from bots.forges.gitlab import GitLabForge
from bots.inbound import github as github_inbound
from bots.inbound import gitlab as gitlab_inbound
from chains.config import ConfigError, parse_config
from chains.models import Rule
from chains.planner import Change, plan
from tests.conftest import load_fixture

GITHUB_API = "http://github.test:80/api/v3"
GITLAB_URL = "http://gitlab.test"

BAD_PROJECTS = [
    "acme/api/../../victim/prod-deploy",
    "acme/./api",
    "acme//api",
    "/acme/api",
    "acme/api/",
    "acme/api%2F..%2F..%2Fvictim%2Fprod",
    "acme/api%2f..%2fvictim",
    "acme/%2E%2E/victim",
    "acme\\..\\victim/prod",
    "acme/api\x00/victim",
    "acme/api\n/victim",
    "github:acme/../victim/prod",
]
BAD_FILES = [
    "../x",
    "ci/../../victim/secrets.env",
    "./ci.env",
    "ci//x.env",
    "/etc/passwd",
    "ci%2F..%2F..%2Fx",
    "%2e%2e/x",
    "ci\\..\\x",
    "ci/x\x00.env",
    "ci/\x1bx.env",
]
BAD_REFS = [
    "main/../../victim",
    "..",
    "refs/heads/../x",
    "main%2F..%2Fx",
    "a\\b",
    "main\x00",
    "./main",
    "feature//x",
]


def _target(field: str, value: str) -> str:
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    quoted = quoted.replace("\x00", "\\0").replace("\n", "\\n").replace("\x1b", "\\e")
    extra = "" if field == "project" else f'    {field}: "{quoted}"\n'
    project = f'"{quoted}"' if field == "project" else "acme/api"
    return f"# header\ndownstream:\n  - key: t\n    project: {project}\n{extra}"


@pytest.mark.parametrize("value", BAD_PROJECTS)
def test_project_paths_that_leave_the_repository_are_refused_at_parse_time(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_target("project", value))
    assert caught.value.field == "downstream[0].project"
    assert caught.value.line == 4
    assert "line 4: downstream[0].project:" in str(caught.value)


@pytest.mark.parametrize("field", ["params_file", "workflow"])
@pytest.mark.parametrize("value", BAD_FILES)
def test_file_paths_that_leave_the_repository_are_refused(field: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_target(field, value))
    assert caught.value.field == f"downstream[0].{field}"
    assert caught.value.line == 5


@pytest.mark.parametrize("value", BAD_REFS)
def test_bad_refs_are_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_target("ref", value))
    assert (caught.value.field, caught.value.line) == ("downstream[0].ref", 5)


def test_ordinary_paths_still_parse() -> None:
    config = parse_config(
        "downstream:\n"
        "  - {key: a, project: group/sub/api, ref: release/1.2, params_file: ci/down.env}\n"
        "  - {key: b, project: 'github:acme/.github', workflow: .github/workflows/x.yml}\n"
        "  - {key: c, project: acme/docs, ref: $UPSTREAM_TARGET_BRANCH}\n"
    )
    assert [t.project for t in config.downstream] == [
        "group/sub/api",
        "github:acme/.github",
        "acme/docs",
    ]


def test_admin_rules_go_through_the_same_validator() -> None:
    rule = Rule(name="r", projects="acme/**", config=_target("project", BAD_PROJECTS[0]))
    with pytest.raises(ValidationError) as caught:
        rule.clean()
    assert "line 4: downstream[0].project" in str(caught.value)
    with pytest.raises(ConfigError):
        parse_config(_target("params_file", "../x"), standalone=False)


def test_a_variable_that_expands_to_a_traversal_fails_the_run_not_the_forge() -> None:
    config = parse_config("downstream:\n  - {key: a, project: acme/api, ref: $UPSTREAM_BRANCH}\n")
    change = Change(
        forge="gitlab",
        project="acme/app",
        project_url="",
        number=1,
        url="",
        source_branch="x/../../y",  # as if it got past the webhook check
        target_branch="main",
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/1/head",
    )
    (run,) = plan(change, config).runs
    assert "ref" in run.error and ".." in run.error


# -- the adapters refuse a bad path even if one gets past parsing -----------------------------


@responses.activate
@pytest.mark.parametrize("project", [*BAD_PROJECTS[:9], "acme/api/extra"])
def test_github_adapter_sends_nothing_for_a_traversing_project(project: str) -> None:
    forge = GitHubForge(GITHUB_API, "ghp_x", timeout=2)
    with pytest.raises(ForgeError) as caught:
        forge.create_pipeline(project, "main", {"BATON_RUN_ID": "1"})
    assert caught.value.permanent
    assert "refused" in caught.value.message
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("path", BAD_FILES)
def test_github_adapter_reads_no_file_outside_the_repository(path: str) -> None:
    forge = GitHubForge(GITHUB_API, "ghp_x", timeout=2)
    with pytest.raises(ForgeError, match="refused"):
        forge.read_file("acme/api", path, "main")
    assert len(responses.calls) == 0


@responses.activate
def test_github_adapter_refuses_bad_refs_workflows_and_ids() -> None:
    forge = GitHubForge(GITHUB_API, "ghp_x", timeout=2)
    with pytest.raises(ForgeError, match="refused"):
        forge.create_pipeline("acme/api", "main/../../x", {"BATON_RUN_ID": "1"})
    with pytest.raises(ForgeError, match="refused"):
        forge.create_pipeline("acme/api", "main", {}, workflow="../../victim/x.yml")
    with pytest.raises(ForgeError, match="refused"):
        forge.get_pipeline("acme/api", "../../../victim/prod/actions/runs/1")
    with pytest.raises(ForgeError, match="refused"):
        forge.upsert_comment("acme/api", 1, "hi", "1/../../../../victim/x")
    with pytest.raises(ForgeError, match="refused"):
        forge.can_write("acme/api", "../../../victim/prod")
    assert len(responses.calls) == 0


@responses.activate
def test_github_request_path_must_name_the_checked_repository() -> None:
    forge = GitHubForge(GITHUB_API, "ghp_x", timeout=2)
    with pytest.raises(ForgeError, match="does not name"):
        forge._send("x", "GET", "/repos/victim/prod/actions/runs", project="acme/api")
    with pytest.raises(ForgeError, match="no repository was checked"):
        forge._send("x", "GET", "/repos/victim/prod", project=None)
    with pytest.raises(ForgeError, match="dot segment"):
        forge._send("x", "GET", "/repos/acme/api/../../victim/prod", project="acme/api")
    with pytest.raises(ForgeError, match="dot segment"):
        forge._send("x", "GET", "/repos/acme/api/%2e%2e/x", project="acme/api")
    assert len(responses.calls) == 0


@responses.activate
def test_github_good_paths_quote_each_segment() -> None:
    forge = GitHubForge(GITHUB_API, "ghp_x", timeout=2)
    responses.get(f"{GITHUB_API}/repos/acme/api/contents/ci/a%20b.env", status=404)
    assert forge.read_file("acme/api", "ci/a b.env", "main") is None
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize("project", BAD_PROJECTS[:9])
def test_gitlab_adapter_sends_nothing_for_a_traversing_project(project: str) -> None:
    forge = GitLabForge(GITLAB_URL, "tok", timeout=2)
    with pytest.raises(ForgeError, match="refused"):
        forge.create_pipeline(project, "main", {"BATON_RUN_ID": "1"})
    with pytest.raises(ForgeError, match="refused"):
        forge.read_file(project, ".baton.yml", "main")
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("path", BAD_FILES)
def test_gitlab_adapter_reads_no_file_outside_the_repository(path: str) -> None:
    forge = GitLabForge(GITLAB_URL, "tok", timeout=2)
    with pytest.raises(ForgeError, match="refused"):
        forge.read_file("acme/api", path, "main")
    assert len(responses.calls) == 0


@responses.activate
def test_gitlab_request_must_name_the_repository_the_call_was_asked_about() -> None:
    forge = GitLabForge(GITLAB_URL, "tok", timeout=2)
    # A request for another project inside a call scoped to acme/api is refused before sending.
    with pytest.raises(ForgeError, match="does not name"):
        forge._call(
            "x",
            lambda: forge._gl.projects.get("victim/prod", lazy=True).pipelines.list(get_all=False),
            project="acme/api",
        )
    with pytest.raises(ForgeError, match="no repository was checked"):
        forge._call("x", lambda: forge._gl.projects.get("victim/prod"))
    with pytest.raises(ForgeError, match="not this forge"):
        forge._call("x", lambda: forge._gl.http_get("http://evil.test/api/v4/projects/1"))
    assert len(responses.calls) == 0


# -- webhooks: refs and paths pass the same validator where they enter ------------------------


def test_github_pull_request_with_a_traversing_branch_is_malformed() -> None:
    payload = copy.deepcopy(load_fixture("github", "pull_request__opened"))
    payload["pull_request"]["head"]["ref"] = "x/../../victim"
    with pytest.raises(MalformedPayload, match=r"head\.ref"):
        github_inbound.parse("pull_request", payload)
    payload = copy.deepcopy(load_fixture("github", "pull_request__opened"))
    payload["repository"]["full_name"] = "acme/app/../../victim/prod"
    with pytest.raises(MalformedPayload, match="full_name"):
        github_inbound.parse("pull_request", payload)


def test_gitlab_merge_request_with_a_traversing_project_is_malformed() -> None:
    payload = copy.deepcopy(load_fixture("gitlab", "merge_request__open"))
    payload["project"]["path_with_namespace"] = "acme/app%2F..%2Fvictim"
    with pytest.raises(MalformedPayload, match="path_with_namespace"):
        gitlab_inbound.parse("Merge Request Hook", payload)
    payload = copy.deepcopy(load_fixture("gitlab", "merge_request__open"))
    payload["object_attributes"]["target_branch"] = "main\x00"
    with pytest.raises(MalformedPayload, match="target_branch"):
        gitlab_inbound.parse("Merge Request Hook", payload)


@responses.activate
def test_gitlab_next_page_links_must_stay_in_the_repository() -> None:
    forge = GitLabForge(GITLAB_URL, "tok", timeout=2)
    first = f"{GITLAB_URL}/api/v4/projects/acme%2Fapi/merge_requests/1/diffs"
    responses.get(
        first,
        json=[{"old_path": "a", "new_path": "a"}],
        headers={
            "Link": f"<{GITLAB_URL}/api/v4/projects/acme/api/merge_requests/1/diffs?page=2>; "
            'rel="next"'
        },
        match=[responses.matchers.query_param_matcher({})],
    )
    responses.get(
        f"{GITLAB_URL}/api/v4/projects/acme/api/merge_requests/1/diffs?page=2",
        json=[{"old_path": "b", "new_path": "b"}],
    )
    assert forge.changed_files("acme/api", 1) == ["a", "b"]

    responses.reset()
    responses.get(
        first,
        json=[{"old_path": "a", "new_path": "a"}],
        headers={
            "Link": f"<{GITLAB_URL}/api/v4/projects/victim/prod/merge_requests/1/diffs?page=2>; "
            'rel="next"'
        },
    )
    with pytest.raises(ForgeError, match="does not name"):
        forge.changed_files("acme/api", 1)
    assert len(responses.calls) == 1
