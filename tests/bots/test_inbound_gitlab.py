"""GitLab webhook parsing: one test per fixture, plus the token and dedupe rules."""

from __future__ import annotations

from pathlib import Path

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
from bots.inbound import gitlab
from chains.status import Status
from tests.conftest import FIXTURES, load_fixture


def test_merge_request_opened() -> None:
    event = gitlab.parse("Merge Request Hook", load_fixture("gitlab", "merge_request__open"))
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.OPENED
    assert event.change.project == "gitlabhq/gitlab-test"
    assert event.change.number == 1
    assert event.change.head_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert event.change.upstream_ref == "refs/merge-requests/1/head"
    # root (user id 1) acted on a change by author 51: the author's name comes from the forge.
    assert (event.change.author, event.actor) == ("", "root")
    assert event.change.labels == ("API",)
    assert event.change.message == "fixed readme"
    assert event.from_fork is False


@pytest.mark.parametrize(
    ("value", "kept"),
    [("master", "master"), ("release/1.x", "release/1.x"), ("../x", ""), ("a b", ""), (None, "")],
)
def test_the_upstream_projects_default_branch_is_kept_when_it_is_a_valid_ref(
    value: str | None, kept: str
) -> None:
    """Saves a `GET /projects/:id` when the project is later a target; a hostile or missing
    value is dropped, never an error."""
    payload = load_fixture("gitlab", "merge_request__open")
    payload["project"]["default_branch"] = value
    event = gitlab.parse("Merge Request Hook", payload)
    assert isinstance(event, ChangeEvent)
    assert event.default_branch == kept


def test_merge_request_opened_current_docs() -> None:
    event = gitlab.parse(
        "Merge Request Hook", load_fixture("gitlab", "merge_request__open_current_docs")
    )
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.OPENED
    assert event.change.project == "flightjs/flight-management"
    assert event.change.number == 16
    assert event.change.source_branch == "feature/booking-validation"
    assert event.change.target_branch == "main"


def test_merge_request_new_commits() -> None:
    payload = load_fixture("gitlab", "merge_request__update_new_commits")
    event = gitlab.parse("Merge Request Hook", payload)
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.NEW_COMMITS
    assert event.previous_sha == "e59094b8de0f2f91abbe4760a52d9137260252d8"
    assert event.change.head_sha == "4f2a9f9c3cbe1b6e56d7a2c1f0f1de7a8c3b9d10"


def test_merge_request_title_edit_is_not_new_commits() -> None:
    event = gitlab.parse(
        "Merge Request Hook", load_fixture("gitlab", "merge_request__update_title")
    )
    assert isinstance(event, ChangeEvent)
    assert event.action == ChangeAction.EDITED


def test_merge_request_from_fork() -> None:
    payload = load_fixture("gitlab", "merge_request__open")
    payload["object_attributes"]["source_project_id"] = 999
    event = gitlab.parse("Merge Request Hook", payload)
    assert isinstance(event, ChangeEvent) and event.from_fork is True


def test_pipeline() -> None:
    event = gitlab.parse("Pipeline Hook", load_fixture("gitlab", "pipeline__success"))
    assert isinstance(event, PipelineEvent)
    assert event.pipeline_id == "31"
    assert event.status == Status.SUCCESS
    assert event.project == "gitlab-org/gitlab-test"
    assert event.variables == {"NESTOR_PROD_ENVIRONMENT": "us-west-1"}
    assert event.web_url == "http://example.com/gitlab-org/gitlab-test/-/pipelines/31"
    assert event.finished_at is not None


def test_note_on_merge_request() -> None:
    event = gitlab.parse("Note Hook", load_fixture("gitlab", "note__merge_request"))
    assert isinstance(event, CommentEvent)
    assert event.number == 1
    assert event.body == "This MR needs work."
    assert event.author == "root"


def test_job_events_are_not_acted_on() -> None:
    assert not gitlab.handles("Job Hook")
    assert gitlab.parse("Job Hook", load_fixture("gitlab", "job__build")) is None


def test_push_to_a_branch() -> None:
    event = gitlab.parse("Push Hook", load_fixture("gitlab", "push__branch"))
    assert isinstance(event, PushEvent)
    assert event.kind == "push"
    assert event.pusher == "jsmith"
    assert event.project_id == "15"
    assert event.public is False
    assert event.previous_sha == "95790bf891e76fee5e1747ab589903a6a1f80f22"
    assert event.changed_files == ("CHANGELOG", "app/controller/application.rb")
    change = event.change
    assert change.project == "mike/diaspora"
    assert change.number is None
    assert change.upstream_ref == "refs/heads/master"
    assert change.source_branch == "master"
    assert change.target_branch == ""
    assert change.head_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert change.title == "fixed readme"


def test_tag_push() -> None:
    event = gitlab.parse("Tag Push Hook", load_fixture("gitlab", "tag_push__created"))
    assert isinstance(event, PushEvent)
    assert event.kind == "tag"
    assert event.change.upstream_ref == "refs/tags/v1.0.0"
    assert event.change.source_branch == ""
    assert event.change.head_sha == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"
    assert event.previous_sha == ""  # a new tag: before is all zeros
    assert event.pusher == ""  # the docs' example leaves out user_username


def test_annotated_tag_runs_on_the_commit_not_the_tag_object() -> None:
    payload = load_fixture("gitlab", "tag_push__created")
    payload["after"] = "1" * 40  # the tag object; checkout_sha is the commit it points at
    event = gitlab.parse("Tag Push Hook", payload)
    assert isinstance(event, PushEvent)
    assert event.change.head_sha == "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"


def test_branch_deletion_is_ignored_with_a_reason() -> None:
    event = gitlab.parse("Push Hook", load_fixture("gitlab", "push__branch_deleted"))
    assert event == Ignored("branch master was deleted: nothing to trigger")


def test_tag_deletion_is_ignored() -> None:
    payload = load_fixture("gitlab", "tag_push__created")
    payload.update(before=payload["after"], after="0" * 40, checkout_sha=None)
    event = gitlab.parse("Tag Push Hook", payload)
    assert isinstance(event, Ignored) and "tag v1.0.0 was deleted" in event.reason


@pytest.mark.parametrize(
    "ref", ["refs/heads/a..b", "refs/heads/x y", "refs/tags/", "refs/heads/.hidden"]
)
def test_push_with_a_bad_ref_name_is_malformed(ref: str) -> None:
    payload = load_fixture("gitlab", "push__branch")
    payload["ref"] = ref
    with pytest.raises(MalformedPayload):
        gitlab.parse("Push Hook", payload)


def test_push_to_another_kind_of_ref_is_ignored() -> None:
    payload = load_fixture("gitlab", "push__branch")
    payload["ref"] = "refs/notes/commits"
    assert isinstance(gitlab.parse("Push Hook", payload), Ignored)


def test_every_fixture_has_a_test() -> None:
    names = {p.stem for p in (FIXTURES / "gitlab").glob("*.json")}
    source = Path(__file__).read_text()
    assert {n for n in names if f'"{n}"' not in source} == set()


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("Merge Request Hook", {"object_kind": "merge_request"}),
        ("Merge Request Hook", {"object_attributes": {"action": "open", "iid": 1}}),
        ("Pipeline Hook", {"object_attributes": {"id": 1}, "project": {}}),
        ("Pipeline Hook", []),
        ("Note Hook", {"object_attributes": {"noteable_type": "MergeRequest", "id": 3}}),
        ("Push Hook", {"ref": "refs/heads/main", "after": "a" * 40}),
        (
            "Push Hook",
            {
                "ref": "refs/heads/main",
                "after": "nope",
                "project": {"id": 1, "path_with_namespace": "a/b"},
            },
        ),
    ],
)
def test_malformed_payloads_are_rejected_in_words(event: str, payload: object) -> None:
    with pytest.raises(MalformedPayload) as info:
        gitlab.parse(event, payload)
    assert str(info.value)


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"X-Gitlab-Token": "s3cret"}, True),
        ({"X-Gitlab-Token": "s3cret "}, False),
        ({"X-Gitlab-Token": "wrong"}, False),
        ({"X-Gitlab-Token": ""}, False),
        ({}, False),
    ],
)
def test_token_check(headers: dict[str, str], ok: bool) -> None:
    assert gitlab.is_authentic(headers, b"{}", "s3cret") is ok


def test_token_check_refuses_everything_without_a_secret() -> None:
    assert gitlab.is_authentic({"X-Gitlab-Token": ""}, b"", "") is False


def test_dedupe_key_prefers_idempotency_key() -> None:
    headers = {"Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "uuid-1"}
    assert gitlab.dedupe_key(headers, b"{}") == "idem-1"
    assert gitlab.dedupe_key({"X-Gitlab-Event-UUID": "uuid-1"}, b"{}") == "uuid-1"
    assert gitlab.dedupe_key({}, b"{}").startswith("sha256:")


def test_a_push_hook_carries_the_projects_default_branch() -> None:
    event = gitlab.parse("Push Hook", load_fixture("gitlab", "push__branch"))
    assert isinstance(event, PushEvent)
    assert (
        event.default_branch == load_fixture("gitlab", "push__branch")["project"]["default_branch"]
    )
