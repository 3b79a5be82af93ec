"""The one Forge protocol every adapter implements, and what adapters return and raise.

Callers speak in neutral words (change, pipeline, status); each adapter maps them to its forge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chains.status import Status


@dataclass(frozen=True)
class Budget:
    """A rate budget a forge request spends (see bots/throttle.py)."""

    key: str
    spacing: float = 0.0  # seconds between two requests
    per_minute: int | None = None  # at most this many in any 60 s


class ForgeError(Exception):
    """A forge call that did not succeed.

    ``permanent``: repeating it will not help (unknown project, ref not found, forbidden).
    ``uncertain``: the forge may have acted even so (timeout, dropped connection, 5xx on a create).
    ``retry_after``: seconds the forge asked us to wait, when it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        uncertain: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.uncertain = uncertain
        self.retry_after = retry_after
        self.status_code = status_code

    @property
    def rate_limited(self) -> bool:
        return self.status_code == 429 or (self.retry_after is not None and not self.permanent)


@dataclass(frozen=True)
class RemoteProject:
    id: str
    path: str
    default_branch: str
    web_url: str
    public: bool = False


@dataclass(frozen=True)
class RemotePipeline:
    id: str
    status: Status
    web_url: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    undelivered: tuple[str, ...] = ()  # variables the target does not accept (GitHub inputs)
    created_at: datetime | None = None  # when the forge created it (None: not said)


@dataclass(frozen=True)
class RemoteChange:
    """An open change as the forge has it now."""

    number: int
    url: str
    title: str
    author: str
    source_branch: str
    target_branch: str
    head_sha: str
    from_fork: bool
    state: str


class Forge(Protocol):
    kind: str

    def budgets(self, action: str, project: str, ref: str = "") -> list[Budget]:
        """The rate budgets one request spends: action is "create" (start a pipeline) or
        "write" (statuses, comments, cancel, retry)."""
        ...

    def get_change(self, project: str, number: int) -> RemoteChange: ...

    def change_ref(self, number: int) -> str:
        """The ref a change's head is found at (UPSTREAM_REF)."""
        ...

    def get_project(self, project: str) -> RemoteProject: ...

    def whoami(self) -> str:
        """The account name the token acts as (for the admin's "test connection")."""
        ...

    def changed_files(self, project: str, number: int) -> list[str]:
        """Paths a change touches (old and new names of moved files)."""
        ...

    def public_email(self, username: str) -> str | None:
        """The e-mail address the account shows publicly, if any."""
        ...

    def can_write(self, project: str, username: str) -> bool:
        """GitLab: Developer or above on the project; GitHub: write, maintain or admin."""
        ...

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        """The file's text at ``ref``, or None when the file does not exist there."""
        ...

    def create_pipeline(
        self,
        project: str,
        ref: str,
        variables: dict[str, str],
        *,
        workflow: str | None = None,
        deploy: str | None = None,
    ) -> RemotePipeline:
        """Start a pipeline (for ``deploy``: a deployment to that environment). Its id may be ""
        when the forge does not say which run it started (the engine then finds it by its
        BATON_RUN_ID)."""
        ...

    def find_pipeline(
        self,
        project: str,
        ref: str,
        marker: tuple[str, str],
        created_after: datetime,
        *,
        workflow: str | None = None,
    ) -> RemotePipeline | None:
        """A pipeline created after the time that carries ``marker``."""
        ...

    def get_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

    def recent_pipelines(
        self, project: str, ref: str, *, workflow: str | None = None
    ) -> list[RemotePipeline]:
        """The newest pipelines on ``ref`` (up to 20), newest first."""
        ...

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

    def retry_pipeline(
        self, project: str, pipeline_id: str, *, everything: bool = False
    ) -> RemotePipeline:
        """Run the failed parts again (``everything``: the whole pipeline, where the forge can)."""
        ...

    def set_commit_status(
        self,
        project: str,
        sha: str,
        *,
        context: str,
        status: Status,
        description: str,
        target_url: str,
    ) -> None: ...

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        """Edit comment ``comment_id`` in place (or create one); return its id."""
        ...
