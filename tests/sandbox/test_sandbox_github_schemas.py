"""The sandbox's GitHub REST answers and webhook payloads validate against GitHub's official
OpenAPI description and webhook schemas (npm ``@octokit/openapi``, ``@octokit/openapi-webhooks``).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.client import SandboxClient, wait_until
from sandbox.server import SandboxServer
from tests.sandbox.github_schemas import require_specs, response_errors, webhook_errors

WORKFLOW = (
    "name: Preview\nrun-name: Preview ${{ inputs.marker }}\n"
    "on:\n  workflow_dispatch:\n    inputs:\n      marker: {required: true}\n"
)


@pytest.fixture(autouse=True)
def _specs() -> None:
    require_specs()


class Api:
    def __init__(self, base: str, token: str = "x") -> None:
        self.base = base + "/api/v3"
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"token {token}"
        self.problems: dict[str, list[str]] = {}

    def check(
        self, method: str, path: str, template: str, status: int, body: dict[str, Any] | None = None
    ) -> Any:
        r = self.session.request(method, self.base + path, json=body)
        assert r.status_code == status, (method, path, r.status_code, r.text[:300])
        data = r.json()
        errors = response_errors(template, method, status, data)
        if errors:
            self.problems[f"{method} {path}"] = errors
        return data


def test_rest_answers_match_the_openapi_description(
    forge: SandboxServer, control: SandboxClient
) -> None:
    repo = control.create_github_repo(
        "acme/api",
        files={".github/workflows/preview.yml": WORKFLOW, "src/a.py": "1\n", "old.txt": "x\n"},
        collaborators={"alice": "write"},
    )
    sha = repo["head_sha"]
    control.open_pull_request(
        "acme/api",
        "feature",
        body="Body",
        labels=["bug"],
        files={
            "b": "1",
            "old.txt": None,
            "src/a.py": None,
            "src/moved.py": "1\n",
            ".github/workflows/preview.yml": WORKFLOW + "# changed\n",
        },
    )
    control.comment_pull_request("acme/api", 1, "hello")
    control.set_run_script("acme/api", running=600)  # still running when cancelled
    app = Api(forge.url, control.add_app_token()["token"])
    api = Api(forge.url)
    r, o = "/repos/acme/api", "/repos/{owner}/{repo}"

    api.check("GET", "/user", "/user", 200)
    api.check("GET", "/rate_limit", "/rate_limit", 200)
    api.check("GET", r, o, 200)
    api.check("GET", f"{r}/contents/src/a.py?ref=main", o + "/contents/{path}", 200)
    api.check("GET", f"{r}/contents/src", o + "/contents/{path}", 200)
    api.check("GET", f"{r}/commits/{sha}", o + "/commits/{ref}", 200)
    api.check(
        "POST",
        f"{r}/statuses/{sha}",
        o + "/statuses/{sha}",
        201,
        {"state": "pending", "context": "baton", "target_url": "http://x/1"},
    )
    api.check("GET", f"{r}/commits/{sha}/statuses", o + "/commits/{ref}/statuses", 200)
    api.check("GET", f"{r}/commits/{sha}/status", o + "/commits/{ref}/status", 200)
    run = app.check(
        "POST",
        f"{r}/check-runs",
        o + "/check-runs",
        201,
        {
            "name": "baton",
            "head_sha": sha,
            "status": "in_progress",
            "output": {"title": "t", "summary": "s"},
        },
    )
    app.check(
        "PATCH",
        f"{r}/check-runs/{run['id']}",
        o + "/check-runs/{check_run_id}",
        200,
        {"conclusion": "success"},
    )
    app.check("GET", f"{r}/commits/{sha}/check-runs", o + "/commits/{ref}/check-runs", 200)
    api.check("GET", f"{r}/pulls?state=all", o + "/pulls", 200)
    api.check("GET", f"{r}/pulls/1", o + "/pulls/{pull_number}", 200)
    files = api.check("GET", f"{r}/pulls/1/files", o + "/pulls/{pull_number}/files", 200)
    assert {f["status"] for f in files} == {"added", "removed", "renamed", "modified"}
    api.check("GET", f"{r}/issues/1", o + "/issues/{issue_number}", 200)
    comment = api.check(
        "POST",
        f"{r}/issues/1/comments",
        o + "/issues/{issue_number}/comments",
        201,
        {"body": "summary"},
    )
    api.check(
        "PATCH",
        f"{r}/issues/comments/{comment['id']}",
        o + "/issues/comments/{comment_id}",
        200,
        {"body": "summary v2"},
    )
    api.check(
        "GET", f"{r}/issues/comments/{comment['id']}", o + "/issues/comments/{comment_id}", 200
    )
    api.check("GET", f"{r}/issues/1/comments", o + "/issues/{issue_number}/comments", 200)
    api.check(
        "GET",
        f"{r}/collaborators/alice/permission",
        o + "/collaborators/{username}/permission",
        200,
    )
    hook = api.check(
        "POST",
        f"{r}/hooks",
        o + "/hooks",
        201,
        {"config": {"url": "http://127.0.0.1:9/h", "content_type": "json"}, "events": ["push"]},
    )
    api.check("GET", f"{r}/hooks", o + "/hooks", 200)
    api.check(
        "PATCH",
        f"{r}/hooks/{hook['id']}",
        o + "/hooks/{hook_id}",
        200,
        {"events": ["pull_request"]},
    )
    api.check("GET", f"{r}/actions/workflows", o + "/actions/workflows", 200)
    wf = o + "/actions/workflows/{workflow_id}"
    api.check("GET", f"{r}/actions/workflows/preview.yml", wf, 200)
    details = api.check(
        "POST",
        f"{r}/actions/workflows/preview.yml/dispatches",
        wf + "/dispatches",
        200,
        {"ref": "main", "inputs": {"marker": "m"}, "return_run_details": True},
    )
    run_id = details["workflow_run_id"]
    api.check("GET", f"{r}/actions/runs", o + "/actions/runs", 200)
    api.check("GET", f"{r}/actions/workflows/preview.yml/runs", wf + "/runs", 200)
    api.check("GET", f"{r}/actions/runs/{run_id}", o + "/actions/runs/{run_id}", 200)
    api.check("POST", f"{r}/actions/runs/{run_id}/cancel", o + "/actions/runs/{run_id}/cancel", 202)
    api.check("POST", f"{r}/actions/runs/{run_id}/rerun", o + "/actions/runs/{run_id}/rerun", 201)
    assert api.problems == {} and app.problems == {}


WEBHOOK_NAMES = {  # (X-GitHub-Event, action) → webhook schema name
    ("ping", None): "ping",
    ("push", None): "push",
    ("create", None): "create",
    ("pull_request", "opened"): "pull-request-opened",
    ("pull_request", "synchronize"): "pull-request-synchronize",
    ("pull_request", "edited"): "pull-request-edited",
    ("pull_request", "closed"): "pull-request-closed",
    ("pull_request", "reopened"): "pull-request-reopened",
    ("pull_request", "labeled"): "pull-request-labeled",
    ("pull_request", "unlabeled"): "pull-request-unlabeled",
    ("issue_comment", "created"): "issue-comment-created",
    ("issue_comment", "edited"): "issue-comment-edited",
    ("workflow_run", "requested"): "workflow-run-requested",
    ("workflow_run", "in_progress"): "workflow-run-in-progress",
    ("workflow_run", "completed"): "workflow-run-completed",
}


def test_webhook_payloads_match_the_webhook_schemas(
    forge: SandboxServer, control: SandboxClient, receiver: Any
) -> None:
    control.create_github_repo(
        "acme/api",
        files={".github/workflows/preview.yml": WORKFLOW},
        hooks=[{"url": receiver.url, "secret": "s"}],
    )
    control.set_run_script("acme/api", running=2)
    control.open_pull_request("acme/api", "feature", files={"a": "1"}, title="T", labels=["bug"])
    control.push_pull_request("acme/api", 1, {"a": "2"})
    control.edit_pull_request("acme/api", 1, title="T2", body="B", labels=["release"])
    comment = control.comment_pull_request("acme/api", 1, "hi", author="carol")
    control.edit_github_comment("acme/api", comment["id"], "hi again")
    control.close_pull_request("acme/api", 1)
    control.reopen_pull_request("acme/api", 1)
    control.merge_pull_request("acme/api", 1)
    control.github_tag("acme/api", "v1.0.0", author="carol")
    requests.post(
        f"{forge.url}/api/v3/repos/acme/api/actions/workflows/preview.yml/dispatches",
        json={"ref": "main", "inputs": {"marker": "m"}},
        headers={"Authorization": "token x"},
    ).raise_for_status()
    wait_until(lambda: len(receiver.github_events("workflow_run")) >= 3, 5, "run hooks")
    seen: dict[str, list[str]] = {}
    for delivery in receiver.github_events():
        payload = delivery["payload"]
        name = WEBHOOK_NAMES[(delivery["github_event"], payload.get("action"))]
        seen.setdefault(name, []).extend(webhook_errors(name, payload))
    assert set(seen) == set(WEBHOOK_NAMES.values())
    assert {name: errors for name, errors in seen.items() if errors} == {}


DEPLOY_WORKFLOW = (
    "name: Deploy\nrun-name: Deploy ${{ github.event.deployment.payload.marker }}\n"
    "on: deployment\njobs: {}\n"
)


def test_deployment_answers_and_webhooks_match_the_schemas(
    forge: SandboxServer, control: SandboxClient, receiver: Any
) -> None:
    control.create_github_repo(
        "acme/api",
        files={".github/workflows/deploy.yml": DEPLOY_WORKFLOW},
        hooks=[{"url": receiver.url, "secret": "s"}],
    )
    api = Api(forge.url)
    r, o = "/repos/acme/api", "/repos/{owner}/{repo}"
    d = o + "/deployments/{deployment_id}"
    created = api.check(
        "POST",
        f"{r}/deployments",
        o + "/deployments",
        201,
        {
            "ref": "main",
            "environment": "staging",
            "payload": {"marker": "m"},
            "required_contexts": [],
            "auto_merge": False,
            "description": "x",
        },
    )
    api.check(
        "POST",
        f"{r}/deployments",
        o + "/deployments",
        201,
        {"ref": "main", "payload": '{"marker": "text"}', "task": "deploy:migrations"},
    )
    dep = f"{r}/deployments/{created['id']}"
    api.check("GET", f"{r}/deployments?environment=staging", o + "/deployments", 200)
    api.check("GET", dep, d, 200)
    status = api.check(
        "POST",
        f"{dep}/statuses",
        d + "/statuses",
        201,
        {
            "state": "success",
            "log_url": "http://ci/1",
            "environment_url": "http://staging/",
            "description": "done",
        },
    )
    api.check("GET", f"{dep}/statuses", d + "/statuses", 200)
    api.check("GET", f"{dep}/statuses/{status['id']}", d + "/statuses/{status_id}", 200)
    assert api.problems == {}
    wait_until(
        lambda: len(receiver.github_events("deployment_status")) >= 7,
        5,
        "3 + 3 statuses from the two runs, 1 posted",
    )
    names = {
        "deployment": "deployment-created",
        "deployment_status": "deployment-status-created",
        "workflow_run": None,
        "ping": None,
    }
    problems: dict[str, list[str]] = {}
    for delivery in receiver.github_events():
        name = names[delivery["github_event"]]
        if name:
            assert delivery["payload"]["action"] == "created"
            problems.setdefault(name, []).extend(webhook_errors(name, delivery["payload"]))
    assert set(problems) == {"deployment-created", "deployment-status-created"}
    assert {name: errors for name, errors in problems.items() if errors} == {}
    with_run = [
        h["payload"]
        for h in receiver.github_events("deployment_status")
        if "workflow_run" in h["payload"]
    ]
    assert len(with_run) == 6  # the run-posted ones name their run (checked above too)
