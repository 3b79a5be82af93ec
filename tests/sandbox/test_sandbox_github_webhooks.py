"""GitHub webhooks from the sandbox: arrive in order, signed (X-Hub-Signature-256), shaped like
GitHub's examples, as JSON or form bodies, and redeliverable with the same X-GitHub-Delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from github import Github

from sandbox.client import SandboxClient, wait_until
from sandbox.github.hooks import signature_256

FIXTURES = Path("/work/shared/fixtures/webhooks")
SECRET = "It's a Secret to Everybody"
HEADERS = {
    "Content-Type",
    "User-Agent",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-Hub-Signature-256",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-GitHub-Hook-Installation-Target-ID",
}
WORKFLOW = (
    "name: Preview\nrun-name: Preview ${{ inputs.marker }}\n"
    "on:\n  workflow_dispatch:\n    inputs:\n      marker: {required: true}\n"
)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def assert_keys_like(
    payload: dict[str, Any],
    name: str,
    member: str | None = None,
    optional: frozenset[str] = frozenset(),
) -> None:
    expected = fixture(name)
    assert set(expected) - optional <= set(payload), set(expected) - set(payload)
    if member:
        missing = set(expected[member]) - optional - set(payload[member])
        assert not missing, missing


def verify(secret: str, body: bytes, signature: str) -> bool:
    """How a receiver checks X-Hub-Signature-256 (GitHub's documented scheme)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_256(SECRET, b"Hello, World!") == expected
    assert verify(SECRET, b"Hello, World!", expected)


def test_pull_request_lifecycle_hooks_in_order_and_signed(
    control: SandboxClient, receiver: Any
) -> None:
    control.create_github_repo("acme/api", hooks=[{"url": receiver.url, "secret": SECRET}])
    ping = wait_until(lambda: receiver.github_events("ping"), 5, "ping")[0]
    assert ping["payload"]["hook"]["config"]["url"] == receiver.url
    assert_keys_like(ping["payload"], "github_ping.json")

    pr = control.open_pull_request("acme/api", "feature", title="Feature", files={"a": "1"})
    before = pr["head"]["sha"]
    after = control.push_pull_request("acme/api", 1, {"a": "2"})
    control.edit_pull_request("acme/api", 1, title="Feature v2")
    control.close_pull_request("acme/api", 1, author="bob")
    control.reopen_pull_request("acme/api", 1)
    merged = control.merge_pull_request("acme/api", 1)
    assert merged["merged"] is True and merged["state"] == "closed"

    hooks = wait_until(
        lambda: (
            len(receiver.github_events("pull_request")) >= 6
            and receiver.github_events("pull_request")
        ),
        5,
        "6 pull_request hooks",
    )
    payloads = [h["payload"] for h in hooks]
    assert [p["action"] for p in payloads] == [
        "opened",
        "synchronize",
        "edited",
        "closed",
        "reopened",
        "closed",
    ]
    assert (payloads[1]["before"], payloads[1]["after"]) == (before, after)
    assert payloads[1]["pull_request"]["head"]["sha"] == after
    assert payloads[2]["changes"] == {"title": {"from": "Feature"}}
    assert payloads[3]["sender"]["login"] == "bob"
    assert payloads[3]["pull_request"]["merged"] is False
    assert payloads[5]["pull_request"]["merged"] is True
    assert_keys_like(
        payloads[0],
        "github_pull_request_opened.json",
        "pull_request",
        optional=frozenset({"installation"}),
    )
    assert_keys_like(
        payloads[1], "github_pull_request_synchronize.json", optional=frozenset({"installation"})
    )
    for h in [ping, *hooks]:
        headers = h["headers"]
        assert set(headers) >= HEADERS
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert headers["Content-Type"] == "application/json"
        assert verify(SECRET, h["body"], headers["X-Hub-Signature-256"])
        uuid.UUID(headers["X-GitHub-Delivery"])
    assert len({h["headers"]["X-GitHub-Delivery"] for h in hooks}) == 6


def test_issue_comment_hooks(gh: Github, control: SandboxClient, receiver: Any) -> None:
    control.create_github_repo(
        "acme/api", hooks=[{"url": receiver.url, "secret": "s", "events": ["issue_comment"]}]
    )
    control.open_pull_request("acme/api", "feature", files={"a": "1"})
    control.comment_pull_request("acme/api", 1, "/baton retry", author="carol")
    mine = gh.get_repo("acme/api").get_pull(1).create_issue_comment("summary")
    mine.edit("summary v2")
    hooks = wait_until(
        lambda: (
            len(receiver.github_events("issue_comment")) >= 3
            and receiver.github_events("issue_comment")
        ),
        5,
        "3 comment hooks",
    )
    payloads = [h["payload"] for h in hooks]
    assert [p["action"] for p in payloads] == ["created", "created", "edited"]
    assert [p["comment"]["user"]["login"] for p in payloads] == ["carol", "baton-bot", "baton-bot"]
    assert payloads[2]["changes"] == {"body": {"from": "summary"}}
    first = payloads[0]
    assert first["issue"]["number"] == 1 and first["issue"]["pull_request"]["url"].endswith(
        "/pulls/1"
    )
    assert_keys_like(first, "github_issue_comment_created_on_pr.DERIVED.json", "comment")
    assert set(fixture("github_issue_comment_created_on_pr.DERIVED.json")["issue"]) <= set(
        first["issue"]
    )
    assert receiver.github_events("pull_request") == []  # not subscribed


def test_workflow_run_hooks_in_order(gh: Github, control: SandboxClient, receiver: Any) -> None:
    control.create_github_repo(
        "acme/api",
        files={".github/workflows/preview.yml": WORKFLOW},
        hooks=[{"url": receiver.url, "secret": "s", "events": ["workflow_run"]}],
    )
    control.set_run_script("acme/api", "failure", running=2)
    wf = gh.get_repo("acme/api").get_workflow("preview.yml")
    run = wf.create_dispatch("main", {"marker": "m-1"}, return_run_details=True)
    hooks = wait_until(
        lambda: (
            len(receiver.github_events("workflow_run")) >= 3
            and receiver.github_events("workflow_run")
        ),
        5,
        "3 workflow_run hooks",
    )
    payloads = [h["payload"] for h in hooks]
    assert [p["action"] for p in payloads] == ["requested", "in_progress", "completed"]
    assert [p["workflow_run"]["status"] for p in payloads] == ["queued", "in_progress", "completed"]
    last = payloads[-1]
    assert last["workflow_run"]["id"] == run.id
    assert last["workflow_run"]["conclusion"] == "failure"
    assert last["workflow_run"]["display_title"] == "Preview m-1"
    assert last["workflow"]["path"] == ".github/workflows/preview.yml"
    assert_keys_like(
        last,
        "github_workflow_run_completed.json",
        "workflow_run",
        optional=frozenset({"organization"}),
    )
    assert set(fixture("github_workflow_run_completed.json")["workflow"]) <= set(last["workflow"])


def test_form_content_type_and_redelivery(control: SandboxClient, receiver: Any) -> None:
    control.create_github_repo(
        "acme/api", hooks=[{"url": receiver.url, "secret": "s", "content_type": "form"}]
    )
    ping = wait_until(lambda: receiver.github_events("ping"), 5, "ping")[0]
    assert ping["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert ping["body"].startswith(b"payload=")
    assert verify("s", ping["body"], ping["headers"]["X-Hub-Signature-256"])
    guid = ping["headers"]["X-GitHub-Delivery"]
    assert control.redeliver(guid)["delivery"] == guid
    again = wait_until(
        lambda: len(receiver.github_events("ping")) >= 2 and receiver.github_events("ping"),
        5,
        "redelivered ping",
    )[1]
    assert again["headers"]["X-GitHub-Delivery"] == guid and again["body"] == ping["body"]
    # The sandbox records a delivery once the receiver has answered it: wait for the record.
    log = wait_until(
        lambda: len(control.webhooks(event="ping")) >= 2 and control.webhooks(event="ping"),
        5,
        "the redelivery on record",
    )
    assert [w["redelivery"] for w in log] == [False, True]
    assert {w["delivery"] for w in log} == {guid}
