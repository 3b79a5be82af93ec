"""GitLab webhook payloads (Push, Tag Push, Merge Request, Note, Pipeline Hook) and their delivery
headers.

``GitLabHooks`` listens to state events and queues one delivery per subscribed project hook.
Payload shapes follow the GitLab docs examples in ``/work/shared/fixtures/webhooks/gitlab_*.json``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.model import (
    Commit,
    Label,
    MergeRequest,
    Note,
    Pipeline,
    Project,
    User,
    hook_time,
    make_sha,
    offset_time,
)
from sandbox.state import Event, SandboxState
from sandbox.webhooks import Delivery, WebhookSender

USER_AGENT = "GitLab/18.0.0"
EVENTS = {  # state event kind -> (X-Gitlab-Event, hook flag)
    "push": ("Push Hook", "push_events"),
    "tag_push": ("Tag Push Hook", "tag_push_events"),
    "merge_request": ("Merge Request Hook", "merge_requests_events"),
    "note": ("Note Hook", "note_events"),
    "pipeline": ("Pipeline Hook", "pipeline_events"),
}


def hook_user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "name": u.name,
        "username": u.username,
        "avatar_url": f"https://www.gravatar.com/avatar/{make_sha(u.username)}?s=80&d=identicon",
        "email": "[REDACTED]",
    }


def hook_project(p: Project) -> dict[str, Any]:
    host = p.web_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "web_url": p.web_url,
        "avatar_url": None,
        "git_ssh_url": f"git@{host}:{p.path_with_namespace}.git",
        "git_http_url": f"{p.web_url}.git",
        "namespace": (p.namespace or p.path).rsplit("/", 1)[-1].title(),
        "visibility_level": 0,
        "path_with_namespace": p.path_with_namespace,
        "default_branch": p.default_branch,
        "ci_config_path": None,
        "homepage": p.web_url,
        "url": f"{p.web_url}.git",
        "ssh_url": f"git@{host}:{p.path_with_namespace}.git",
        "http_url": f"{p.web_url}.git",
    }


def hook_repository(p: Project) -> dict[str, Any]:
    return {"name": p.name, "url": f"{p.web_url}.git", "description": p.description,
            "homepage": p.web_url}


def hook_commit(p: Project, c: Commit) -> dict[str, Any]:
    return {
        "id": c.sha,
        "message": c.message,
        "title": c.title,
        "timestamp": offset_time(c.created_at),
        "url": f"{p.web_url}/-/commit/{c.sha}",
        "author": {"name": c.author.name, "email": c.author.email},
    }


def hook_label(p: Project, label: Label) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(label.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": label.id,
        "title": label.name,
        "color": label.color,
        "project_id": p.id,
        "created_at": stamp,
        "updated_at": stamp,
        "template": False,
        "description": label.description or None,
        "type": "ProjectLabel",
        "group_id": None,
    }


def hook_labels(state: SandboxState, p: Project, names: list[str]) -> list[dict[str, Any]]:
    return [hook_label(p, state.label(p, name)) for name in names]


def push_payload(state: SandboxState, e: Event) -> dict[str, Any]:
    p, actor = e.project, e.actor
    commits: list[Commit] = e.data["commits"]
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": e.data["before"],
        "after": e.data["after"],
        "ref": f"refs/heads/{e.data['branch']}",
        "ref_protected": e.data["branch"] == p.default_branch,
        "checkout_sha": e.data["after"],
        "message": None,
        "user_id": actor.id,
        "user_name": actor.name,
        "user_username": actor.username,
        "user_email": "",
        "user_avatar": hook_user(actor)["avatar_url"],
        "project_id": p.id,
        "project": hook_project(p),
        "commits": [
            {**hook_commit(p, c), **state.changed_files(p, c)} for c in commits
        ],
        "total_commits_count": len(commits),
        "push_options": {},
        "repository": {**hook_repository(p), "git_http_url": f"{p.web_url}.git",
                       "git_ssh_url": hook_project(p)["git_ssh_url"], "visibility_level": 0},
    }


def tag_push_payload(state: SandboxState, e: Event) -> dict[str, Any]:
    """The docs' "Tag events" example: ``object_kind`` tag_push, ``ref`` refs/tags/<name>,
    ``before`` all zeros for a new tag, ``checkout_sha`` the tagged commit, no commits."""
    p, actor = e.project, e.actor
    return {
        "object_kind": "tag_push",
        "event_name": "tag_push",
        "before": e.data["before"],
        "after": e.data["after"],
        "ref": f"refs/tags/{e.data['tag']}",
        "ref_protected": False,
        "checkout_sha": e.data["after"],
        "message": None,
        "user_id": actor.id,
        "user_name": actor.name,
        "user_username": actor.username,
        "user_email": "",
        "user_avatar": hook_user(actor)["avatar_url"],
        "project_id": p.id,
        "project": hook_project(p),
        "commits": [],
        "total_commits_count": 0,
        "push_options": {},
        "repository": {**hook_repository(p), "git_http_url": f"{p.web_url}.git",
                       "git_ssh_url": hook_project(p)["git_ssh_url"], "visibility_level": 0},
    }


def mr_attributes(state: SandboxState, p: Project, mr: MergeRequest) -> dict[str, Any]:
    source = state.projects.get(mr.source_project_id, p)
    head = _head_pipeline(state, mr)
    return {
        "author_id": mr.author.id,
        "created_at": hook_time(mr.created_at),
        "description": mr.description,
        "draft": False,
        "head_pipeline_id": head.id if head else None,
        "id": mr.id,
        "iid": mr.iid,
        "last_edited_at": None,
        "last_edited_by_id": None,
        "merge_commit_sha": mr.merge_commit_sha,
        "merged_at": hook_time(mr.merged_at),
        "merge_error": None,
        "merge_params": {"force_remove_source_branch": "0"},
        "merge_status": "can_be_merged",
        "merge_user_id": mr.merged_by.id if mr.merged_by else None,
        "merge_when_pipeline_succeeds": False,
        "milestone_id": None,
        "source_branch": mr.source_branch,
        "source_project_id": mr.source_project_id,
        "squash_commit_sha": None,
        "state_id": MergeRequest.STATE_IDS[mr.state],
        "target_branch": mr.target_branch,
        "target_branch_protected": mr.target_branch == p.default_branch,
        "target_project_id": mr.project_id,
        "time_estimate": 0,
        "title": mr.title,
        "updated_at": hook_time(mr.updated_at),
        "updated_by_id": None,
        "prepared_at": hook_time(mr.created_at),
        "assignee_ids": [],
        "blocking_discussions_resolved": True,
        "detailed_merge_status": "mergeable" if mr.state == "opened" else "not_open",
        "first_contribution": False,
        "human_time_change": None,
        "human_time_estimate": None,
        "human_total_time_spent": None,
        "labels": hook_labels(state, p, mr.labels),
        "last_commit": hook_commit(source, source.commits.get(mr.sha) or p.commits[mr.sha]),
        "reviewer_ids": [],
        "source": hook_project(source),
        "state": mr.state,
        "system": False,
        "target": hook_project(p),
        "time_change": 0,
        "total_time_spent": 0,
        "url": f"{p.web_url}/-/merge_requests/{mr.iid}",
        "approval_rules": [],
        "work_in_progress": False,
        "assignee_id": None,
    }


def merge_request_payload(state: SandboxState, e: Event) -> dict[str, Any]:
    mr: MergeRequest = e.data["mr"]
    attrs = mr_attributes(state, e.project, mr)
    attrs["action"] = e.data["action"]
    attrs["actioned_at"] = hook_time(mr.updated_at)
    if e.data.get("oldrev"):
        attrs["oldrev"] = e.data["oldrev"]
    changes = dict(e.data.get("changes") or {})
    if "labels" in changes:  # names in the event, label objects in the payload
        changes["labels"] = {k: hook_labels(state, e.project, v)
                             for k, v in changes["labels"].items()}
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": hook_user(e.actor),
        "project": hook_project(e.project),
        "object_attributes": attrs,
        "labels": attrs["labels"],
        "changes": changes,
        "assignees": [],
        "reviewers": [],
        "repository": hook_repository(e.project),
    }


def note_payload(state: SandboxState, e: Event) -> dict[str, Any]:
    note: Note = e.data["note"]
    mr: MergeRequest = e.data["mr"]
    p = e.project
    mr_json = mr_attributes(state, p, mr)
    mr_json.update(position=0, assignee=None, author_id=mr.author.id)
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": hook_user(e.actor),
        "project_id": p.id,
        "project": hook_project(p),
        "repository": hook_repository(p),
        "object_attributes": {
            "id": note.id,
            "note": note.body,
            "noteable_type": "MergeRequest",
            "author_id": note.author.id,
            "created_at": hook_time(note.created_at),
            "updated_at": hook_time(note.updated_at),
            "project_id": p.id,
            "attachment": None,
            "line_code": None,
            "commit_id": "",
            "noteable_id": mr.id,
            "system": note.system,
            "st_diff": None,
            "type": None,
            "internal": False,
            "action": e.data["action"],
            "url": f"{p.web_url}/-/merge_requests/{mr.iid}#note_{note.id}",
        },
        "merge_request": mr_json,
    }


def _protected_ref(p: Project, pl: Pipeline) -> bool:
    """Ci::Pipeline#protected_ref?: the default branch is the one protected branch (GitLab
    protects it on creation); tags are unprotected; an MR pipeline is protected only when the
    project protects MR pipelines (off by default)."""
    return pl.mr_iid is None and not pl.tag and pl.ref == p.default_branch


def pipeline_payload(state: SandboxState, e: Event) -> dict[str, Any]:
    pl: Pipeline = e.data["pipeline"]
    p = e.project
    mr = p.merge_requests.get(pl.mr_iid) if pl.mr_iid is not None else None
    label = "passed" if pl.status == "success" else pl.status
    job = pl.job
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pl.id,
            "iid": pl.iid,
            "name": None,
            # GitLab's hook shows the pipeline's source_ref: an MR pipeline's source branch
            # (the REST API's `ref` is refs/merge-requests/<iid>/head).
            "ref": mr.source_branch if mr is not None else pl.ref,
            "tag": pl.tag,
            "sha": pl.sha,
            "before_sha": p.commits[pl.sha].parent or "0" * 40,
            "source": pl.source,
            "status": pl.status,
            "detailed_status": label,
            "stages": [job.stage],
            "created_at": hook_time(pl.created_at),
            "finished_at": hook_time(pl.finished_at),
            "duration": pl.duration,
            "queued_duration": pl.queued_duration,
            "protected_ref": _protected_ref(p, pl),
            "variables": [{"key": v["key"], "value": v["value"]} for v in pl.variables],
            "url": f"{p.web_url}/-/pipelines/{pl.id}",
        },
        "merge_request": None if mr is None else {
            "id": mr.id,
            "iid": mr.iid,
            "title": mr.title,
            "source_branch": mr.source_branch,
            "source_project_id": mr.source_project_id,
            "target_branch": mr.target_branch,
            "target_project_id": mr.project_id,
            "state": mr.state,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable" if mr.state == "opened" else "not_open",
            "url": f"{p.web_url}/-/merge_requests/{mr.iid}",
        },
        "user": hook_user(pl.user),
        "project": {k: v for k, v in hook_project(p).items()
                    if k not in ("homepage", "url", "ssh_url", "http_url")},
        "commit": hook_commit(p, p.commits[pl.sha]),
        "builds": [{
            "id": job.id,
            "stage": job.stage,
            "name": job.name,
            "status": job.status,
            "created_at": hook_time(job.created_at),
            "started_at": hook_time(job.started_at),
            "finished_at": hook_time(job.finished_at),
            "duration": (round(job.finished_at - job.started_at, 3)
                         if job.finished_at and job.started_at else None),
            "queued_duration": None,
            "failure_reason": job.failure_reason if job.status == "failed" else None,
            "when": "on_success",
            "manual": False,
            "allow_failure": False,
            "user": hook_user(pl.user),
            "runner": None,
            "artifacts_file": {"filename": None, "size": None},
            "environment": None,
        }],
    }


BUILDERS = {
    "push": push_payload,
    "tag_push": tag_push_payload,
    "merge_request": merge_request_payload,
    "note": note_payload,
    "pipeline": pipeline_payload,
}


def _head_pipeline(state: SandboxState, mr: MergeRequest) -> Pipeline | None:
    candidates = [
        pl for pl in state.pipelines.values()
        if pl.project_id in (mr.project_id, mr.source_project_id) and pl.sha == mr.sha
    ]
    return max(candidates, key=lambda pl: pl.id, default=None)


class GitLabHooks:
    """Turns state events into queued Merge Request / Note / Pipeline / Push Hook deliveries."""

    def __init__(self, state: SandboxState, sender: WebhookSender) -> None:
        self.state = state
        self.sender = sender
        state.subscribe(self.on_event)

    def on_event(self, e: Event) -> None:
        if e.kind not in EVENTS:
            return
        event_name, flag = EVENTS[e.kind]
        hooks = [h for h in e.project.hooks.values() if getattr(h, flag)]
        if not hooks:
            return
        payload = BUILDERS[e.kind](self.state, e)
        for h in hooks:
            self.sender.enqueue(Delivery(
                hook_key=f"gitlab:{h.id}",
                hook_id=h.id,
                url=h.url,
                event=event_name,
                payload=payload,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "X-Gitlab-Event": event_name,
                    "X-Gitlab-Token": h.token,
                    "X-Gitlab-Event-UUID": str(uuid.uuid4()),
                    "Idempotency-Key": str(uuid.uuid4()),
                    "X-Gitlab-Instance": self.state.base_url,
                },
                fresh_uuid_headers=("X-Gitlab-Webhook-UUID",),
                secret_headers=("X-Gitlab-Token",),
                id_headers=("X-Gitlab-Event-UUID", "Idempotency-Key"),
                health=h,
            ))
