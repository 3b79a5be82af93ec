"""The GitHub REST v3 subset (repositories, contents, pulls, comments, statuses, check runs,
permissions, hooks, user), exercised through the real PyGithub client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from github import Github, GithubException, UnknownObjectException
from github.ContentFile import ContentFile
from github.Repository import Repository

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

BOT_YML = "downstream:\n  - repo: acme/docs\n"


def file_at(r: Repository, path: str, ref: str) -> ContentFile:
    found = r.get_contents(path, ref=ref)
    assert isinstance(found, ContentFile)
    return found


@pytest.fixture
def repo(control: SandboxClient) -> dict:
    return control.create_github_repo(
        "acme/api",
        files={".github/bot.yml": BOT_YML, "src/app.py": "print(1)\n"},
        collaborators={"alice": "write", "mona": "maintain", "tom": "triage"},
    )


def test_repository_and_contents_at_refs(gh: Github, control: SandboxClient, repo: dict) -> None:
    r = gh.get_repo("acme/api")
    assert (r.full_name, r.default_branch, r.id) == ("acme/api", "main", repo["id"])
    assert r.url.startswith(gh.requester.base_url)
    first = repo["head_sha"]
    control.github_tag("acme/api", "v1")
    second = control.github_commit("acme/api", {".github/bot.yml": "changed\n"})
    assert file_at(r, ".github/bot.yml", first).decoded_content == BOT_YML.encode()
    assert file_at(r, ".github/bot.yml", "v1").decoded_content == BOT_YML.encode()
    latest = file_at(r, ".github/bot.yml", "main")
    assert latest.decoded_content == b"changed\n" and latest.encoding == "base64"
    assert file_at(r, ".github/bot.yml", second).path == ".github/bot.yml"
    listing = r.get_contents("src")
    assert isinstance(listing, list) and [c.path for c in listing] == ["src/app.py"]
    with pytest.raises(UnknownObjectException):
        r.get_contents("missing.txt", ref="main")
    with pytest.raises(UnknownObjectException):
        gh.get_repo("acme/nope")


def test_github_and_gitlab_namespaces_are_separate(
    gh: Github, control: SandboxClient, repo: dict
) -> None:
    control.create_project("acme/api", files={"only-on-gitlab": "x"})
    assert gh.get_repo("acme/api").id == repo["id"]
    with pytest.raises(UnknownObjectException):
        gh.get_repo("acme/api").get_contents("only-on-gitlab")
    assert [r["full_name"] for r in control.github_repos()] == ["acme/api"]
    assert [p["path_with_namespace"] for p in control.projects()] == ["acme/api"]


def test_auth_required_and_user(forge: SandboxServer, gh: Github, repo: dict) -> None:
    r = requests.get(f"{forge.url}/api/v3/repos/acme/api")
    assert r.status_code == 401 and r.json()["message"] == "Requires authentication"
    me = gh.get_user()
    assert me.login == "baton-bot" and me.type == "User"


def test_pulls_and_issue_comments(gh: Github, control: SandboxClient, repo: dict) -> None:
    opened = control.open_pull_request(
        "acme/api", "feature", title="Add feature", files={"src/a.py": "1\n"}, author="alice"
    )
    control.open_pull_request("acme/api", "other", files={"b": "1"})
    control.close_pull_request("acme/api", 2)
    r = gh.get_repo("acme/api")
    pr = r.get_pull(opened["number"])
    assert (pr.number, pr.state, pr.title, pr.user.login) == (1, "open", "Add feature", "alice")
    assert (pr.head.ref, pr.base.ref, pr.head.repo.full_name) == ("feature", "main", "acme/api")
    assert pr.head.sha == opened["head"]["sha"] and pr.mergeable is True
    assert [p.number for p in r.get_pulls()] == [1]
    assert [p.number for p in r.get_pulls(state="all")] == [2, 1]
    assert [p.number for p in r.get_pulls(state="all", head="acme:other")] == [2]

    control.comment_pull_request("acme/api", 1, "/baton retry", author="carol")
    mine = pr.create_issue_comment("summary")
    assert mine.user.login == "baton-bot" and mine.body == "summary"
    mine.edit("summary v2")
    assert pr.get_issue_comment(mine.id).body == "summary v2"
    assert [c.body for c in pr.get_issue_comments()] == ["/baton retry", "summary v2"]
    assert r.get_issue(1).pull_request is not None
    with pytest.raises(GithubException) as exc:
        pr.create_issue_comment("x" * 65537)
    assert exc.value.status == 422
    with pytest.raises(UnknownObjectException):
        r.get_pull(99)


def test_commit_statuses_and_combined(gh: Github, repo: dict) -> None:
    commit = gh.get_repo("acme/api").get_commit(repo["head_sha"])
    assert commit.sha == repo["head_sha"]
    commit.create_status("pending", target_url="http://x/1", description="d", context="baton/a")
    commit.create_status("success", context="baton/a")
    commit.create_status("success", context="baton/b")
    assert [s.state for s in commit.get_statuses()] == ["success", "success", "pending"]
    combined = commit.get_combined_status()
    assert combined.state == "success" and combined.total_count == 2
    commit.create_status("failure", context="baton/b")
    assert commit.get_combined_status().state == "failure"
    with pytest.raises(GithubException) as exc:
        commit.create_status("bogus")
    assert exc.value.status == 422


def test_check_runs_need_an_app_installation_token(
    make_github: Callable[..., Github], gh: Github, control: SandboxClient, repo: dict
) -> None:
    with pytest.raises(GithubException) as exc:
        gh.get_repo("acme/api").create_check_run("baton", repo["head_sha"])
    assert exc.value.status == 403
    token = control.add_app_token(app_slug="baton-app")["token"]
    assert token.startswith("ghs_")
    app = make_github(token)
    r = app.get_repo("acme/api")
    run = r.create_check_run(
        "baton",
        repo["head_sha"],
        status="in_progress",
        details_url="http://baton/1",
        output={"title": "t", "summary": "s"},
    )
    assert (run.status, run.conclusion, run.app.slug) == ("in_progress", None, "baton-app")
    run.edit(conclusion="success")
    assert r.get_check_run(run.id).conclusion == "success"
    assert [c.id for c in r.get_commit(repo["head_sha"]).get_check_runs()] == [run.id]


def test_collaborator_permission(gh: Github, repo: dict) -> None:
    r = gh.get_repo("acme/api")
    assert r.get_collaborator_permission("alice") == "write"
    assert r.get_collaborator_permission("mona") == "write"  # maintain → legacy write
    assert r.get_collaborator_role_name("mona") == "maintain"
    assert r.get_collaborator_permission("tom") == "read"
    assert r.get_collaborator_permission("acme") == "admin"  # the owner
    assert r.get_collaborator_permission("baton-bot") == "none"
    with pytest.raises(UnknownObjectException):
        r.get_collaborator_permission("nobody-at-all")


def test_hooks_crud(gh: Github, control: SandboxClient, repo: dict) -> None:
    r = gh.get_repo("acme/api")
    hook = r.create_hook(
        "web",
        {"url": "http://127.0.0.1:9/h", "content_type": "json", "secret": "s"},
        events=["pull_request"],
        active=True,
    )
    assert hook.config["secret"] == "********" and hook.events == ["pull_request"]
    hook.edit(
        "web",
        {"url": "http://127.0.0.1:9/h2", "content_type": "form"},
        events=["pull_request", "workflow_run"],
    )
    got = r.get_hook(hook.id)
    assert got.config["url"].endswith("/h2") and got.config["content_type"] == "form"
    assert [h.id for h in r.get_hooks()] == [hook.id]
    got.delete()
    assert list(r.get_hooks()) == []


def test_link_pagination(
    make_github: Callable[..., Github], control: SandboxClient, repo: dict
) -> None:
    for i in range(7):
        control.open_pull_request("acme/api", f"b{i}", files={f"f{i}": "x"})
    client = make_github(per_page=3)
    pulls = client.get_repo("acme/api").get_pulls()
    assert pulls.totalCount == 7
    assert [p.number for p in pulls] == [7, 6, 5, 4, 3, 2, 1]
    log = control.requests(path="/pulls")
    assert [r["query"].get("page") for r in log][-3:] == [None, "2", "3"]
