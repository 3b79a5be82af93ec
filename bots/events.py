"""Neutral events parsed from webhook deliveries; only bots/inbound sees raw payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from chains.planner import Change
from chains.status import Status

# The marker Baton puts on every pipeline it creates (variables or workflow inputs), by which a
# pipeline event is matched to its run: the run's id, and a secret drawn afresh for each send
# (docs/security.md).
RUN_ID_VARIABLE = "BATON_RUN_ID"
NONCE_VARIABLE = "BATON_RUN_NONCE"


class ChangeAction(StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    NEW_COMMITS = "new_commits"
    EDITED = "edited"  # title, labels, description: nothing to trigger
    RERUN = "rerun"  # asked for again by a person, on the change's latest commit
    CLOSED = "closed"
    MERGED = "merged"


@dataclass(frozen=True)
class ChangeEvent:
    action: ChangeAction
    change: Change
    project_id: str
    from_fork: bool = False
    previous_sha: str = ""
    # Whether the upstream project is public, as the forge said in the hook; None when the event
    # does not say (a re-run Baton builds itself): the repository keeps the visibility it has.
    public: bool | None = None
    actor: str = ""  # who acted (opened, pushed, reopened, asked); "" when it is the author
    confirmed: bool = False  # read from the forge's API, not taken from a webhook's word
    # The upstream project's default branch, as the hook said ("" when it did not): kept on the
    # repository so that a run targeting the project later needs no look-up for it.
    default_branch: str = ""


@dataclass(frozen=True)
class PipelineEvent:
    project: str
    project_id: str
    pipeline_id: str
    status: Status
    web_url: str
    variables: dict[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    marker_text: str = ""  # where a forge without pipeline variables shows BATON_RUN_NONCE
    sha: str = ""
    created_at: datetime | None = None  # when the forge created the pipeline
    workflow: str = ""  # GitHub: the workflow file that ran (".github/workflows/x.yml")
    trigger: str = ""  # GitHub: the event that started it (workflow_dispatch, deployment, …)


@dataclass(frozen=True)
class PushEvent:
    """A branch pushed or a tag created: ``kind`` is the `.baton.yml` `on:` word (push, tag);
    ``change`` carries no number, its ``upstream_ref`` is ``refs/heads/<b>`` or ``refs/tags/<t>``
    and its ``head_sha`` the commit pushed."""

    kind: str
    change: Change
    project_id: str
    pusher: str  # the forge account that pushed
    public: bool | None = None
    previous_sha: str = ""
    changed_files: tuple[str, ...] = ()  # named by the push's commits (the forge lists a few)
    default_branch: str = ""  # the project's, as the hook said (see ChangeEvent)


@dataclass(frozen=True)
class Ignored:
    """An authentic event Baton takes no action on, and why (kept on the delivery)."""

    reason: str


@dataclass(frozen=True)
class CommentEvent:
    project: str
    number: int
    author: str
    body: str
    comment_id: str


Event = ChangeEvent | PipelineEvent | CommentEvent | PushEvent | Ignored


class MalformedPayload(ValueError):
    """An authentic delivery whose payload lacks what its event must carry."""
