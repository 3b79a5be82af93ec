"""GitLab webhooks: verify the token, pick the dedupe key, parse payloads into neutral events."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.utils.crypto import constant_time_compare

from bots.events import (
    ChangeAction,
    ChangeEvent,
    CommentEvent,
    Event,
    MalformedPayload,
    PipelineEvent,
)
from bots.forges.gitlab_words import parse_time, pipeline_status
from bots.inbound import (
    Parser,
    get,
    optional_ref,
    parse_with,
    project_path,
    push_event,
    ref_name,
)
from bots.inbound import sha as inbound_sha
from chains.planner import Change

EVENT_HEADER = "X-Gitlab-Event"
PUBLIC_LEVEL = 20  # GitLab's visibility_level for public projects


def is_authentic(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    token = headers.get("X-Gitlab-Token", "")
    return bool(secret) and bool(token) and constant_time_compare(token, secret)


def json_text(content_type: str, body: bytes) -> bytes | str:
    """The JSON of a delivery: its body."""
    return body


def event_name(headers: Mapping[str, str]) -> str:
    return headers.get(EVENT_HEADER, "")


def dedupe_key(headers: Mapping[str, str], body: bytes) -> str:
    """`Idempotency-Key` is stable across retries; older GitLab sends only the event UUID."""
    for header in ("Idempotency-Key", "X-Gitlab-Event-UUID"):
        value = headers.get(header, "").strip()
        if value:
            return value[:200]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _change(payload: Mapping[str, Any], attrs: Mapping[str, Any]) -> Change:
    project = get(payload, "project")
    iid = int(get(attrs, "iid"))
    head = attrs.get("last_commit") or {}
    if not isinstance(head, Mapping) or not head.get("id"):
        raise MalformedPayload("missing object_attributes.last_commit.id")
    sha = inbound_sha(attrs, "last_commit", "id")
    # `user` is whoever acted; the change is the author's, known here only by id (planning
    # reads the name from the forge).
    user = payload.get("user") or {}
    actor_id = user.get("id") if isinstance(user, Mapping) else None
    is_author = actor_id is not None and actor_id == attrs.get("author_id")
    return Change(
        forge="gitlab",
        project=project_path(project, "path_with_namespace"),
        project_url=str(project.get("web_url") or ""),
        number=iid,
        url=str(attrs.get("url") or ""),
        source_branch=ref_name(attrs, "source_branch"),
        target_branch=ref_name(attrs, "target_branch"),
        head_sha=sha,
        upstream_ref=f"refs/merge-requests/{iid}/head",
        child_ref=f"refs/merge-requests/{iid}/head",  # `self`: a merge request pipeline
        title=str(attrs.get("title") or ""),
        author=str(user.get("username") or "") if is_author else "",
        message=str(head.get("message") or "") if isinstance(head, Mapping) else "",
        labels=tuple(
            str(label.get("title"))
            for label in payload.get("labels") or attrs.get("labels") or []
            if isinstance(label, Mapping) and label.get("title")
        ),
    )


_MR_ACTIONS = {
    "open": ChangeAction.OPENED,
    "reopen": ChangeAction.REOPENED,
    "close": ChangeAction.CLOSED,
    "merge": ChangeAction.MERGED,
}


def _merge_request(payload: Mapping[str, Any]) -> Event | None:
    attrs = get(payload, "object_attributes")
    action = attrs.get("action")
    if action == "update":
        # Only new commits carry oldrev; title, label and approval edits trigger nothing.
        kind = ChangeAction.NEW_COMMITS if attrs.get("oldrev") else ChangeAction.EDITED
    elif action in _MR_ACTIONS:
        kind = _MR_ACTIONS[action]
    else:
        return None
    source = attrs.get("source_project_id")
    target = attrs.get("target_project_id")
    user = payload.get("user")
    return ChangeEvent(
        action=kind,
        actor=str(user.get("username") or "") if isinstance(user, Mapping) else "",
        change=_change(payload, attrs),
        project_id=str(get(payload, "project", "id")),
        from_fork=source is not None and target is not None and source != target,
        public=get(payload, "project").get("visibility_level") == PUBLIC_LEVEL,
        previous_sha=str(attrs.get("oldrev") or ""),
        default_branch=optional_ref(payload, "project", "default_branch"),
    )


def _pipeline(payload: Mapping[str, Any]) -> Event | None:
    attrs = get(payload, "object_attributes")
    project = get(payload, "project")
    raw_vars = attrs.get("variables") or []
    variables = {
        str(v["key"]): str(v.get("value", ""))
        for v in raw_vars
        if isinstance(v, Mapping) and "key" in v
    }
    web_url = attrs.get("url") or f"{project.get('web_url', '')}/-/pipelines/{attrs.get('id')}"
    return PipelineEvent(
        project=project_path(project, "path_with_namespace"),
        project_id=str(get(project, "id")),
        pipeline_id=str(get(attrs, "id")),
        status=pipeline_status(str(get(attrs, "status"))),
        web_url=str(web_url),
        variables=variables,
        started_at=parse_time(attrs.get("created_at")),
        finished_at=parse_time(attrs.get("finished_at")),
        created_at=parse_time(attrs.get("created_at")),
    )


def _note(payload: Mapping[str, Any]) -> Event | None:
    attrs = get(payload, "object_attributes")
    if attrs.get("noteable_type") != "MergeRequest" or attrs.get("system"):
        return None
    if attrs.get("action") == "update":
        return None  # an edited comment runs nothing, as on GitHub: commands run once, when posted
    user = payload.get("user") or {}
    return CommentEvent(
        project=project_path(payload, "project", "path_with_namespace"),
        number=int(get(payload, "merge_request", "iid")),
        author=str(user.get("username") or ""),
        body=str(attrs.get("note") or ""),
        comment_id=str(get(attrs, "id")),
    )


def _push(payload: Mapping[str, Any]) -> Event | None:
    """Push Hook and Tag Push Hook (the same shape): ``checkout_sha`` is the commit (``after`` is
    an annotated tag's own object), ``user_username`` who pushed."""
    project = get(payload, "project")
    commits = payload.get("commits") or []
    last = commits[-1] if isinstance(commits, list) and commits else {}
    return push_event(
        forge="gitlab",
        ref=get(payload, "ref"),
        after=get(payload, "after"),
        head=payload.get("checkout_sha"),
        project=project_path(project, "path_with_namespace"),
        project_url=str(project.get("web_url") or ""),
        project_id=str(get(project, "id")),
        pusher=str(payload.get("user_username") or ""),
        public=project.get("visibility_level") == PUBLIC_LEVEL,
        previous=payload.get("before"),
        message=str(last.get("message") or "") if isinstance(last, Mapping) else "",
        commits=commits,
        default_branch=optional_ref(payload, "project", "default_branch"),
    )


PARSERS: dict[str, Parser] = {
    "Push Hook": _push,
    "Tag Push Hook": _push,
    "Merge Request Hook": _merge_request,
    "Pipeline Hook": _pipeline,
    "Note Hook": _note,
}

# News of pipelines: delivered on a queue of their own (bots/kicks.py ``queue_for``).
TRACKING_EVENTS = frozenset({"Pipeline Hook"})


def handles(event: str) -> bool:
    return event in PARSERS


def parse(event: str, payload: Any) -> Event | None:
    return parse_with(PARSERS, event, payload)
