"""The one Forge protocol every adapter implements, and what adapters return and raise.

Callers speak in neutral words (change, pipeline, status); each adapter maps them to its forge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chains.status import Status


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


@dataclass(frozen=True)
class RemotePipeline:
    id: str
    status: Status
    web_url: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


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

    def get_change(self, project: str, number: int) -> RemoteChange: ...

    def get_project(self, project: str) -> RemoteProject: ...

    def read_file(self, project: str, path: str, ref: str) -> str | None:
        """The file's text at ``ref``, or None when the file does not exist there."""
        ...

    def create_pipeline(
        self, project: str, ref: str, variables: dict[str, str]
    ) -> RemotePipeline: ...

    def find_pipeline(
        self, project: str, ref: str, marker: tuple[str, str], created_after: datetime
    ) -> RemotePipeline | None:
        """A pipeline on ``ref`` created after the time whose variables carry ``marker``."""
        ...

    def get_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

    def retry_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

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
