"""GitHub webhooks: ``ping``, ``push``, ``create``, ``pull_request`` (incl. ``labeled`` /
``unlabeled``), ``issue_comment``, ``workflow_run``, ``repository_dispatch``, ``deployment`` and
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
from sandbox.model import ZERO_SHA, Commit, make_sha, now, offset_time
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


def _push_commit(gh: GitHubState, repo: GitHubRepo, c: Commit) -> dict[str, Any]:
    person = {"name": c.author.name, "email": c.author.email, "username": c.author.username}
    return {"id": c.sha, "tree_id": make_sha("tree", c.sha), "distinct": True,
            "message": c.message, "timestamp": offset_time(c.created_at),
            "url": f"{ent.html_url(gh, repo)}/commit/{c.sha}", "author": person,
            "committer": person, **gh.state.changed_files(repo.git, c)}


def _push_repository(gh: GitHubState, repo: GitHubRepo) -> dict[str, Any]:
    """A push's ``repository`` differs from other events': ``created_at`` / ``pushed_at`` are
    Unix seconds, the owner carries ``name`` and ``email``, and ``master_branch`` is there."""
    data = ent.repository(gh, repo)
    data.pop("permissions", None)
    owner = repo.owner
    data.update(created_at=int(repo.created_at), pushed_at=int(now()),
                master_branch=repo.default_branch, stargazers=0,
                owner={"name": owner.username, "email": owner.email, **data["owner"]})
    return data


def push_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                 ) -> dict[str, Any]:
    """octokit/webhooks ``push`` examples: for a new ref ``before`` is all zeros and
    ``created`` true; a tag push has no commits and the tagged commit as ``head_commit``."""
    ref, before, after = e.data["ref"], e.data["before"], e.data["after"]
    commits: list[Commit] = e.data["commits"]
    head = repo.git.commits.get(after)
    html = ent.html_url(gh, repo)
    created = before == ZERO_SHA
    if created and ref.startswith("refs/tags/"):
        compare = f"{html}/compare/{ref.removeprefix('refs/tags/')}"
    elif created:
        compare = f"{html}/commit/{after}"
    else:
        compare = f"{html}/compare/{before[:12]}...{after[:12]}"
    branch_heads = [b for b, sha in repo.git.branches.items() if sha == after]
    base_ref = (f"refs/heads/{branch_heads[0]}" if ref.startswith("refs/tags/") and branch_heads
                else None)
    return {
        "ref": ref, "before": before, "after": after,
        "repository": _push_repository(gh, repo),
        "pusher": {"name": e.actor.username, "email": e.actor.email},
        "sender": sender, "created": created, "deleted": False, "forced": False,
        "base_ref": base_ref, "compare": compare,
        "commits": [_push_commit(gh, repo, c) for c in commits],
        "head_commit": _push_commit(gh, repo, head) if head else None,
    }


def create_payload(gh: GitHubState, e: Event, repo: GitHubRepo, sender: dict[str, Any]
                   ) -> dict[str, Any]:
    """octokit/webhooks ``create/payload.json``: ``ref`` is the short name."""
    return {"ref": e.data["ref"], "ref_type": e.data["ref_type"],
            "master_branch": repo.default_branch, "description": repo.description or None,
            "pusher_type": "user", "repository": ent.repository(gh, repo), "sender": sender}


BUILDERS = {
    "push": push_payload,
    "create": create_payload,
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
