"""GitHub webhooks: check the HMAC signature, pick the dedupe key, parse payloads into events."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from bots.events import (
    ChangeAction,
    ChangeEvent,
    CommentEvent,
    Event,
    PipelineEvent,
)
from bots.forges.github_words import parse_time, run_status
from bots.inbound import (
    Parser,
    get,
    optional_ref,
    parse_with,
    project_path,
    push_event,
    ref_name,
    sha,
)
from chains.planner import Change


def is_authentic(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body>`, compared in constant time."""
    signature = headers.get("X-Hub-Signature-256", "")
    if not secret or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def event_name(headers: Mapping[str, str]) -> str:
    return headers.get("X-GitHub-Event", "")


def dedupe_key(headers: Mapping[str, str], body: bytes) -> str:
    """`X-GitHub-Delivery` is the same GUID when GitHub redelivers."""
    value = headers.get("X-GitHub-Delivery", "").strip()
    return value[:200] if value else "sha256:" + hashlib.sha256(body).hexdigest()


def json_text(content_type: str, body: bytes) -> bytes | str:
    """The JSON of a delivery: its body, or a form's `payload` field (both are GitHub options)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8"), strict_parsing=False)
        if "payload" not in fields:
            raise ValueError("form delivery without a payload field")
        return fields["payload"][0]
    return body


_PR_ACTIONS = {
    "opened": ChangeAction.OPENED,
    "reopened": ChangeAction.REOPENED,
    "synchronize": ChangeAction.NEW_COMMITS,
    "edited": ChangeAction.EDITED,
}


def _pull_request(payload: Mapping[str, Any]) -> Event | None:
    action = payload.get("action")
    pr = get(payload, "pull_request")
    if action == "closed":
        kind = ChangeAction.MERGED if pr.get("merged") else ChangeAction.CLOSED
    elif action in _PR_ACTIONS:
        kind = _PR_ACTIONS[action]
    else:
        return None
    number = int(get(payload, "number"))
    repo = get(payload, "repository")
    head_repo = (pr.get("head") or {}).get("repo") or {}
    base_repo = (pr.get("base") or {}).get("repo") or {}
    change = Change(
        forge="github",
        project=project_path(repo, "full_name"),
        project_url=str(repo.get("html_url") or ""),
        number=number,
        url=str(pr.get("html_url") or ""),
        source_branch=ref_name(pr, "head", "ref"),
        target_branch=ref_name(pr, "base", "ref"),
        head_sha=sha(pr, "head", "sha"),
        upstream_ref=f"refs/pull/{number}/head",
        title=str(pr.get("title") or ""),
        author=str((pr.get("user") or {}).get("login") or ""),
        labels=tuple(
            str(label.get("name"))
            for label in pr.get("labels") or []
            if isinstance(label, Mapping) and label.get("name")
        ),
    )
    sender = payload.get("sender")
    return ChangeEvent(
        action=kind,
        actor=str(sender.get("login") or "") if isinstance(sender, Mapping) else "",
        change=change,
        project_id=str(repo.get("id") or ""),
        from_fork=head_repo.get("full_name") != base_repo.get("full_name"),
        public=repo.get("private") is False or repo.get("visibility") == "public",
        previous_sha=str(payload.get("before") or ""),
        default_branch=optional_ref(repo, "default_branch"),
    )


def _issue_comment(payload: Mapping[str, Any]) -> Event | None:
    issue = get(payload, "issue")
    if payload.get("action") != "created" or "pull_request" not in issue:
        return None  # comments on plain issues, edits and deletions: nothing to do
    comment = get(payload, "comment")
    return CommentEvent(
        project=project_path(payload, "repository", "full_name"),
        number=int(get(issue, "number")),
        author=str((comment.get("user") or {}).get("login") or ""),
        body=str(comment.get("body") or ""),
        comment_id=str(get(comment, "id")),
    )


def _workflow_run(payload: Mapping[str, Any]) -> Event | None:
    run = get(payload, "workflow_run")
    repo = get(payload, "repository")
    return PipelineEvent(
        project=project_path(repo, "full_name"),
        project_id=str(repo.get("id") or ""),
        pipeline_id=str(get(run, "id")),
        status=run_status(str(get(run, "status")), run.get("conclusion")),
        web_url=str(run.get("html_url") or ""),
        started_at=parse_time(run.get("run_started_at")),
        finished_at=parse_time(run.get("updated_at")) if run.get("status") == "completed" else None,
        marker_text=f"{run.get('display_title') or ''} {run.get('name') or ''}",
        sha=str(run.get("head_sha") or ""),
        created_at=parse_time(run.get("created_at")),
        workflow=str(run.get("path") or ""),
        trigger=str(run.get("event") or ""),
    )


def _push(payload: Mapping[str, Any]) -> Event | None:
    """`push`, for branches and tags alike (`ref` refs/heads/… or refs/tags/…). `create` is not
    handled: a tag push sends both, and only `push` names the commit."""
    repo = get(payload, "repository")
    head = payload.get("head_commit")
    head = head if isinstance(head, Mapping) else {}
    sender = payload.get("sender")
    return push_event(
        forge="github",
        ref=get(payload, "ref"),
        after=get(payload, "after"),
        head=head.get("id"),
        project=project_path(repo, "full_name"),
        project_url=str(repo.get("html_url") or ""),
        project_id=str(repo.get("id") or ""),
        pusher=str(sender.get("login") or "") if isinstance(sender, Mapping) else "",
        public=repo.get("private") is False or repo.get("visibility") == "public",
        previous=payload.get("before"),
        message=str(head.get("message") or ""),
        commits=payload.get("commits") or [],
        default_branch=optional_ref(repo, "default_branch"),
    )


PARSERS: dict[str, Parser] = {
    "push": _push,
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "workflow_run": _workflow_run,
}

# News of pipelines: delivered on a queue of their own (bots/kicks.py ``queue_for``).
TRACKING_EVENTS = frozenset({"workflow_run"})


def handles(event: str) -> bool:
    return event in PARSERS


def parse(event: str, payload: Any) -> Event | None:
    return parse_with(PARSERS, event, payload)
