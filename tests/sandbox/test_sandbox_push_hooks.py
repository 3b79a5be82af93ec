"""Push and tag webhooks from the sandbox, shaped like the forges' documented examples: GitLab's
Push Hook and Tag Push Hook (`webhook_events.md` § "Push events", § "Tag events"), GitHub's
`push` for branches and tags and `create` for new refs (octokit/webhooks payload examples)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.client import SandboxClient, wait_until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "webhooks"
ZERO = "0" * 40


def fixture(forge: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / forge / f"{name}.json").read_text())


def keys_like(payload: dict[str, Any], expected: dict[str, Any], *members: str) -> None:
    wanted = set(expected) - {"installation"}  # only in deliveries to a GitHub App
    assert wanted <= set(payload), wanted - set(payload)
    for member in members:
        assert set(expected[member]) <= set(payload[member]), member


def test_gitlab_push_hook_on_a_commit(control: SandboxClient, receiver: Any) -> None:
    control.create_project(
        "acme/app", files={"a.txt": "1", "b.txt": "1"}, hooks=[{"url": receiver.url, "token": "t"}]
    )
    before = control.project("acme/app")["branches"]["main"]
    sha = control.commit(
        "acme/app", {"a.txt": "2", "c.txt": "new", "b.txt": None}, author="alice", message="Ship"
    )
    [hook] = wait_until(lambda: receiver.events("Push Hook"), 5, "a Push Hook")
    payload = hook["payload"]
    keys_like(payload, fixture("gitlab", "push__branch"), "project")
    assert (payload["object_kind"], payload["ref"]) == ("push", "refs/heads/main")
    assert (payload["before"], payload["after"], payload["checkout_sha"]) == (before, sha, sha)
    assert payload["user_username"] == "alice"
    [commit] = payload["commits"]
    assert (commit["added"], commit["modified"], commit["removed"]) == (
        ["c.txt"],
        ["a.txt"],
        ["b.txt"],
    )
    assert commit["message"] == "Ship"
    assert payload["total_commits_count"] == 1


def test_gitlab_tag_push_hook_only_for_hooks_that_ask(
    control: SandboxClient, receiver: Any
) -> None:
    # Hooks subscribe to tag pushes on their own (`tag_push_events`, project_webhooks.md).
    quiet = {"url": receiver.url, "token": "t", "tag_push_events": False}
    control.create_project("acme/quiet", hooks=[quiet])
    control.create_project("acme/app", hooks=[{"url": receiver.url, "token": "t"}])
    control.tag("acme/quiet", "v0")
    sha = control.tag("acme/app", "v1.0.0", author="alice")
    [hook] = wait_until(lambda: receiver.events("Tag Push Hook"), 5, "a Tag Push Hook")
    payload = hook["payload"]
    expected = fixture("gitlab", "tag_push__created")
    keys_like(payload, expected, "project", "repository")
    assert payload["project"]["path_with_namespace"] == "acme/app"
    assert (payload["object_kind"], payload["event_name"]) == ("tag_push", "tag_push")
    assert payload["ref"] == "refs/tags/v1.0.0"
    assert (payload["before"], payload["after"], payload["checkout_sha"]) == (ZERO, sha, sha)
    assert (payload["commits"], payload["total_commits_count"]) == ([], 0)
    assert payload["user_username"] == "alice"
    assert hook["headers"]["X-Gitlab-Event"] == "Tag Push Hook"


def test_github_push_and_create_on_a_new_branch_and_a_tag(
    control: SandboxClient, receiver: Any
) -> None:
    control.create_github_repo(
        "acme/api", hooks=[{"url": receiver.url, "secret": "s", "events": ["push", "create"]}]
    )
    sha = control.github_commit(
        "acme/api", {"x.txt": "1"}, branch="release/1", author="alice", message="Cut"
    )
    again = control.github_commit("acme/api", {"x.txt": "2"}, branch="release/1", author="alice")
    tagged = control.github_tag("acme/api", "v1.0.0", ref="release/1", author="alice")
    assert tagged == again
    pushes = wait_until(
        lambda: len(receiver.github_events("push")) >= 3 and receiver.github_events("push"),
        5,
        "3 pushes",
    )
    first, second, tag = (p["payload"] for p in pushes)
    keys_like(first, fixture("github", "push__new_branch"), "head_commit", "pusher")
    assert (first["ref"], first["before"], first["after"]) == ("refs/heads/release/1", ZERO, sha)
    assert first["created"] is True and first["deleted"] is False
    assert first["commits"][0]["added"] == ["x.txt"] and first["head_commit"]["id"] == sha
    assert first["pusher"]["name"] == "alice" and first["sender"]["login"] == "alice"
    assert isinstance(first["repository"]["pushed_at"], int)
    assert (second["before"], second["after"], second["created"]) == (sha, again, False)
    assert second["commits"][0]["modified"] == ["x.txt"]
    keys_like(tag, fixture("github", "push__tag_created"), "head_commit")
    assert (tag["ref"], tag["before"], tag["after"]) == ("refs/tags/v1.0.0", ZERO, again)
    assert tag["commits"] == [] and tag["head_commit"]["id"] == again
    assert tag["base_ref"] == "refs/heads/release/1"
    creates = [c["payload"] for c in receiver.github_events("create")]
    assert [(c["ref"], c["ref_type"]) for c in creates] == [
        ("release/1", "branch"),
        ("v1.0.0", "tag"),
    ]
    keys_like(creates[1], fixture("github", "create__tag"))
