"""GitHub webhook parsing: one test per fixture, plus signatures and form deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bots.events import (
    ChangeAction,
    ChangeEvent,
    CommentEvent,
    Ignored,
    MalformedPayload,
    PipelineEvent,
    PushEvent,
)
from bots.inbound import github
from chains.status import Status
from tests.conftest import FIXTURES, load_fixture


def test_documented_signature_test_vector() -> None:
    # docs.github.com "Validating webhook deliveries": this secret and payload give this digest.
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c"
        "22c46f4379c8b043e17"
    }
    assert github.is_authentic(headers, b"Hello, World!", "It's a Secret to Everybody")


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=", "sha1=abc", "sha256=" + "0" * 64, "757107ea0eb2509fc211221cce984b8a37570b6d"],
)
def test_bad_signatures(signature: str) -> None:
    assert not github.is_authentic({"X-Hub-Signature-256": signature}, b"Hello, World!", "s")


def test_no_secret_refuses_everything() -> None:
    digest = hmac.new(b"", b"x", hashlib.sha256).hexdigest()
    assert not github.is_authentic({"X-Hub-Signature-256": f"sha256={digest}"}, b"x", "")


def test_dedupe_on_delivery_guid() -> None:
    assert github.dedupe_key({"X-GitHub-Delivery": "72d3162e"}, b"{}") == "72d3162e"


def test_form_encoded_delivery() -> None:
    payload = {"zen": "Keep it simple."}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    assert json.loads(github.json_text("application/x-www-form-urlencoded", body)) == payload
    assert github.json_text("application/json", b"{}") == b"{}"
    with pytest.raises(ValueError):
        github.json_text("application/x-www-form-urlencoded", b"other=1")


def test_pull_request_opened() -> None:
    event = github.parse("pull_request", load_fixture("github", "pull_request__opened"))
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.OPENED
    change = event.change
    assert (change.project, change.number, change.upstream_ref) == (
        "Codertocat/Hello-World",
        2,
        "refs/pull/2/head",
    )
    assert (change.source_branch, change.target_branch) == ("changes", "master")
    assert change.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert change.author == "Codertocat"
    assert event.from_fork is False


def test_pull_request_synchronize_is_new_commits() -> None:
    event = github.parse("pull_request", load_fixture("github", "pull_request__synchronize"))
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.NEW_COMMITS
    assert event.previous_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"


@pytest.mark.parametrize(
    ("action", "merged", "expected"),
    [
        ("closed", True, ChangeAction.MERGED),
        ("closed", False, ChangeAction.CLOSED),
        ("reopened", False, ChangeAction.REOPENED),
        ("edited", False, ChangeAction.EDITED),
    ],
)
def test_pull_request_actions(action: str, merged: bool, expected: ChangeAction) -> None:
    payload = load_fixture("github", "pull_request__opened")
    payload["action"] = action
    payload["pull_request"]["merged"] = merged
    event = github.parse("pull_request", payload)
    assert isinstance(event, ChangeEvent) and event.action == expected


def test_pull_request_from_fork() -> None:
    payload = load_fixture("github", "pull_request__opened")
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    event = github.parse("pull_request", payload)
    assert isinstance(event, ChangeEvent) and event.from_fork


def test_comment_on_pull_request() -> None:
    event = github.parse("issue_comment", load_fixture("github", "issue_comment__created_on_pr"))
    assert isinstance(event, CommentEvent)
    assert (event.number, event.author, event.comment_id) == (1, "Codertocat", "492700400")


def test_comment_on_plain_issue_is_ignored() -> None:
    payload = load_fixture("github", "issue_comment__created_on_issue")
    assert github.parse("issue_comment", payload) is None


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("workflow_run__requested", Status.PENDING),
        ("workflow_run__completed", Status.SUCCESS),
        ("workflow_run__completed_with_pull_requests", Status.SUCCESS),
    ],
)
def test_workflow_run(name: str, status: Status) -> None:
    event = github.parse("workflow_run", load_fixture("github", name))
    assert isinstance(event, PipelineEvent)
    assert event.status == status
    assert event.project == "octo-org/octo-repo"
    assert event.pipeline_id.isdigit() and event.web_url.startswith("https://github.com/")
    assert event.sha and event.marker_text.strip()


@pytest.mark.parametrize(
    "name",
    [
        "ping__default",
        "check_run__completed",
        "check_suite__completed",
        "status__default",
        "repository_dispatch__default",
        "workflow_dispatch__default",
        # A tag push sends `create` too; Baton acts on the `push`, which names the commit.
        "create__tag",
    ],
)
def test_events_baton_does_not_act_on(name: str) -> None:
    event = name.split("__")[0]
    assert not github.handles(event)
    assert github.parse(event, load_fixture("github", name)) is None


def test_push_of_a_new_branch() -> None:
    event = github.parse("push", load_fixture("github", "push__new_branch"))
    assert isinstance(event, PushEvent)
    assert event.kind == "push"
    assert event.pusher == "Codertocat"
    assert event.project_id == "186853002"
    assert event.public is True
    assert event.previous_sha == ""
    assert event.changed_files == ("README.md",)
    change = event.change
    assert (change.project, change.number) == ("Codertocat/Hello-World", None)
    assert change.upstream_ref == "refs/heads/master"
    assert change.source_branch == "master"
    assert change.head_sha == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert change.title == "Initial commit"


def test_push_of_a_tag() -> None:
    event = github.parse("push", load_fixture("github", "push__tag_created"))
    assert isinstance(event, PushEvent)
    assert event.kind == "tag"
    assert event.change.upstream_ref == "refs/tags/v1.0.0"
    assert event.change.source_branch == ""
    assert event.change.head_sha == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def test_deleted_tag_is_ignored_with_a_reason() -> None:
    event = github.parse("push", load_fixture("github", "push__tag_deleted"))
    assert event == Ignored("tag simple-tag was deleted: nothing to trigger")


def test_deleted_branch_is_ignored() -> None:
    payload = load_fixture("github", "push__new_branch")
    payload.update(after="0" * 40, deleted=True, head_commit=None, commits=[])
    event = github.parse("push", payload)
    assert isinstance(event, Ignored) and "branch master was deleted" in event.reason


def test_a_pusher_that_is_no_username_is_malformed() -> None:
    payload = load_fixture("github", "push__new_branch")
    payload["sender"]["login"] = "x" * 256
    with pytest.raises(MalformedPayload):
        github.parse("push", payload)


def test_every_fixture_has_a_test() -> None:
    names = {p.stem for p in (FIXTURES / "github").glob("*.json")}
    source = Path(__file__).read_text()
    assert {n for n in names if f'"{n}"' not in source} == set()


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("pull_request", {"action": "opened"}),
        ("pull_request", {"action": "opened", "number": 1, "pull_request": {"head": {}}}),
        ("workflow_run", {"workflow_run": {"id": 1}}),
        ("issue_comment", {"action": "created", "issue": {"pull_request": {}}}),
        ("workflow_run", "nope"),
        ("push", {"ref": "refs/heads/main", "after": "a" * 40}),
        ("push", {"ref": "refs/heads/x:y", "after": "a" * 40, "repository": {"full_name": "a/b"}}),
    ],
)
def test_malformed(event: str, payload: object) -> None:
    with pytest.raises(MalformedPayload):
        github.parse(event, payload)


def test_a_push_carries_the_repositorys_default_branch() -> None:
    payload = load_fixture("github", "push__new_branch")
    event = github.parse("push", payload)
    assert isinstance(event, PushEvent)
    assert event.default_branch == payload["repository"]["default_branch"]
