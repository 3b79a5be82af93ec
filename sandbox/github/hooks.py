"""GitHub webhooks: ``ping``, ``pull_request`` (incl. ``labeled`` / ``unlabeled``),
``issue_comment``, ``workflow_run``, ``repository_dispatch``, ``deployment`` and
``deployment_status`` payloads (shaped like
``/work/shared/fixtures/webhooks/github_*.json``), their delivery headers and HMAC signatures,
and redelivery with the same ``X-GitHub-Delivery``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

from sandbox.github import entities as ent
from sandbox.github.model import (
    Deployment,
    DeploymentStatus,
    GitHubHook,
    GitHubRepo,
    IssueComment,
    PullRequest,
    WorkflowRun,
)
from sandbox.github.state import GitHubState
from sandbox.github.workflows import WorkflowFile
from sandbox.state import Event
from sandbox.webhooks import Delivery, WebhookSender

USER_AGENT = "GitHub-Hookshot/sandbox"
ZEN = "Keep it logically awesome."
KEEP_DELIVERIES = 10_000


def signature_256(secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the raw body, keyed with the
    hook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def ping_payload(gh: GitHubState, repo: GitHubRepo, hook: GitHubHook, sender: dict[str, Any]
                 ) -> dict[str, Any]:
    return {"zen": ZEN, "hook_id": hook.id, "hook": ent.hook(gh, repo, hook),
            "repository": ent.repository(gh, repo), "sender": sender}


def pull_request_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                         ) -> dict[str, Any]:
    pr: PullRequest = e.data["pr"]
    payload: dict[str, Any] = {"action": e.data["action"], "number": pr.number,
                               "pull_request": ent.pull_request(gh, repo, pr)}
    if e.data["action"] == "synchronize":
        payload.update(before=e.data["before"], after=e.data["after"])
    if e.data["action"] == "edited":
        payload["changes"] = e.data.get("changes") or {}
    if e.data.get("label") is not None:  # labeled / unlabeled
        payload["label"] = ent.label(gh, repo, e.data["label"])
    return {**payload, "repository": ent.repository(gh, repo), "sender": sender}


def issue_comment_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                          ) -> dict[str, Any]:
    comment: IssueComment = e.data["comment"]
    payload: dict[str, Any] = {"action": e.data["action"]}
    if e.data["action"] == "edited":
        payload["changes"] = e.data.get("changes") or {}
    return {**payload, "issue": ent.issue(gh, repo, e.data["pr"]),
            "comment": ent.issue_comment(gh, repo, comment),
            "repository": ent.repository(gh, repo), "sender": sender}


def _workflow(gh: GitHubState, repo: GitHubRepo, run: WorkflowRun) -> dict[str, Any]:
    return ent.workflow(gh, repo, WorkflowFile(run.path, run.name))


def workflow_run_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                         ) -> dict[str, Any]:
    run: WorkflowRun = e.data["run"]
    return {"action": e.data["action"], "workflow_run": ent.workflow_run(gh, repo, run),
            "workflow": _workflow(gh, repo, run), "repository": ent.repository(gh, repo),
            "sender": sender}


def deployment_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                       ) -> dict[str, Any]:
    """Deployments are created through the REST API, so ``workflow`` / ``workflow_run`` (the run
    that created one, for deployments made by GitHub Actions) are null."""
    d: Deployment = e.data["deployment"]
    return {"action": e.data["action"], "deployment": ent.deployment(gh, repo, d),
            "workflow": None, "workflow_run": None, "repository": ent.repository(gh, repo),
            "sender": sender}


def deployment_status_payload(gh: GitHubState, e: Event, repo: GitHubRepo,
                              sender: dict[str, Any]) -> dict[str, Any]:
    """A status posted by a deployment's workflow run names that run (``workflow``,
    ``workflow_run`` in the webhook's trimmed shape: no ``head_commit``)."""
    d: Deployment = e.data["deployment"]
    s: DeploymentStatus = e.data["status"]
    payload: dict[str, Any] = {
        "action": e.data["action"],
        "deployment_status": ent.deployment_status(gh, repo, d, s),
        "deployment": ent.deployment(gh, repo, d),
    }
    run: WorkflowRun | None = e.data.get("run")
    if run is not None:
        data = ent.workflow_run(gh, repo, run)
        data.update(head_commit=None, previous_attempt_url=None)
        payload.update(workflow=_workflow(gh, repo, run), workflow_run=data)
    return {**payload, "repository": ent.repository(gh, repo), "sender": sender}



def repository_dispatch_payload(gh: GitHubState, e: Event, repo: GitHubRepo,
                                sender: dict[str, Any]) -> dict[str, Any]:
    return {"action": e.data["event_type"], "branch": repo.default_branch,
            "client_payload": e.data["client_payload"], "repository": ent.repository(gh, repo),
            "sender": sender,
            "installation": {"id": 1, "node_id": ent.node_id("Installation", 1)}}


BUILDERS = {
    "pull_request": pull_request_payload,
    "issue_comment": issue_comment_payload,
    "workflow_run": workflow_run_payload,
    "repository_dispatch": repository_dispatch_payload,
    "deployment": deployment_payload,
    "deployment_status": deployment_status_payload,
}


class GitHubHooks:
    """Turns ``github.*`` state events into queued, signed deliveries to the repository's hooks."""

    def __init__(self, github: GitHubState, sender: WebhookSender) -> None:
        self.github = github
        self.sender = sender
        self.deliveries: OrderedDict[str, Delivery] = OrderedDict()
        github.state.subscribe(self.on_event)

    def reset(self) -> None:
        self.deliveries.clear()

    def on_event(self, e: Event) -> None:
        if not e.kind.startswith("github."):
            return
        event = e.kind.removeprefix("github.")
        repo: GitHubRepo = e.data["repo"]
        sender = ent.user(self.github, e.actor)
        if event == "ping":
            hook: GitHubHook = e.data["hook"]
            self._deliver(repo, hook, "ping", None, ping_payload(self.github, repo, hook, sender))
            return
        hooks = [h for h in repo.hooks.values() if h.wants(event)]
        if not hooks or event not in BUILDERS:
            return
        payload = BUILDERS[event](self.github, e, repo, sender)
        for h in hooks:
            self._deliver(repo, h, event, payload.get("action"), payload)

    def _deliver(self, repo: GitHubRepo, hook: GitHubHook, event: str, action: Any,
                 payload: dict[str, Any]) -> None:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        if hook.content_type == "form":
            body, content_type = urlencode({"payload": raw}).encode(), \
                "application/x-www-form-urlencoded"
        else:
            body, content_type = raw, "application/json"
        guid = str(uuid.uuid4())
        headers = {
            "Accept": "*/*",
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(repo.id),
        }
        if hook.secret:
            headers["X-Hub-Signature-256"] = signature_256(hook.secret, body)
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(hook.secret.encode(), body,
                                                            hashlib.sha1).hexdigest()
        delivery = Delivery(
            hook_key=f"github:{hook.id}", hook_id=hook.id, url=hook.url, event=event,
            payload=payload, headers=headers, body=body, id_headers=("X-GitHub-Delivery",),
            meta={"forge": "github", "delivery": guid, "action": action, "redelivery": False},
        )
        self.deliveries[guid] = delivery
        while len(self.deliveries) > KEEP_DELIVERIES:
            self.deliveries.popitem(last=False)
        self.sender.enqueue(delivery)

    def redeliver(self, guid: str) -> Delivery | None:
        """Send a past delivery again: same body, same headers (same ``X-GitHub-Delivery``)."""
        original = self.deliveries.get(guid)
        if original is None:
            return None
        again = Delivery(
            hook_key=original.hook_key, hook_id=original.hook_id, url=original.url,
            event=original.event, payload=original.payload, headers=dict(original.headers),
            body=original.body, meta={**original.meta, "redelivery": True},
        )
        self.sender.enqueue(again)
        return again
