"""The one Forge protocol every adapter implements, and what adapters return and raise.

Callers speak in neutral words (change, pipeline, status); each adapter maps them to its forge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote, unquote

from chains.paths import PathError, check_file_path, check_project, check_ref, check_sha
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
    note: str = ""  # what Baton did instead of what was asked, in words (a re-run that reused)


@dataclass(frozen=True)
class FailedJob:
    """A job of a failed pipeline, in neutral words: why the pipeline failed.

    ``reason``: the forge's word for why (GitLab's ``failure_reason``, e.g. ``script_failure``;
    GitHub's job conclusion, e.g. ``timed_out``); ``step``: the failed step (GitHub) or "".
    Every field is the forge's text: hostile, bounded by ``bots/engine/failures.py``."""

    name: str
    stage: str
    reason: str
    url: str
    step: str = ""


@dataclass(frozen=True)
class PipelineListing:
    """One list call's answer for a project's open runs (``Forge.changed_pipelines``)."""

    pipelines: tuple[RemotePipeline, ...]
    complete: bool  # every pipeline the question covers is listed (else: more pages were left)


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
    state: str  # the forge's own word (opened, open, closed, merged), for messages
    open: bool  # whether the change is still open: what Baton decides on
    # Where a `project: self` target runs by default: the change's own ref on a forge that runs
    # pipelines of a change (create_change_pipeline); "" for the source branch.
    child_ref: str = ""


@dataclass(frozen=True)
class RemoteComment:
    """A comment on a change as the forge has it now."""

    author: str
    body: str


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

    def create_change_pipeline(
        self, project: str, number: int, variables: dict[str, str]
    ) -> RemotePipeline:
        """A pipeline of the change itself, in its (target) project on its change ref, fork
        changes included (GitLab: a merge request pipeline). Such a pipeline takes no variables:
        their names come back as ``undelivered``. A forge without change pipelines refuses
        (permanent ForgeError)."""
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

    def failed_jobs(self, project: str, pipeline_id: str, *, limit: int) -> list[FailedJob]:
        """Up to ``limit`` failed jobs of a finished pipeline, with one request."""
        ...

    def changed_pipelines(
        self, project: str, *, updated_after: datetime, created_after: datetime
    ) -> PipelineListing:
        """One conditional list call standing for every open run of ``project`` (polling when
        webhooks are lost): the pipelines updated since ``updated_after`` where the forge can
        filter on it, else those created since ``created_after`` asked with the last answer's
        ETag, so that an unchanged list costs a 304."""
        ...

    def cancel_pipeline(self, project: str, pipeline_id: str) -> RemotePipeline: ...

    def retry_pipeline(
        self, project: str, pipeline_id: str, *, everything: bool = False
    ) -> RemotePipeline:
        """Run the failed parts again (``everything``: the whole pipeline, where the forge can)."""
        ...

    def commit_state(self, status: Status) -> str:
        """The state this forge shows for ``status``: two statuses with the same answer look the
        same on the forge, so posting the second one changes nothing (GitLab refuses it)."""
        ...

    def already_shows(self, shown: str | None, wanted: str) -> bool:
        """Whether a commit status the forge shows as ``shown`` (a ``commit_state``; None: none
        yet) already says ``wanted`` as far as this forge allows: posting it would change
        nothing, or be refused."""
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
    ) -> None:
        """Post ``status`` under ``context``; a status the forge already shows is no error."""
        ...

    def upsert_comment(self, project: str, number: int, body: str, comment_id: str | None) -> str:
        """Edit comment ``comment_id`` in place (or create one); return its id."""
        ...

    def get_comment(self, project: str, number: int, comment_id: str) -> RemoteComment:
        """Comment ``comment_id`` on change ``number`` (ForgeError 404 when the change has no
        such comment)."""
        ...


# -- URL paths from checked segments only ------------------------------------------------------
# Every project path, file path, ref and id that goes into a request URL is checked here (the same
# rules as `.baton.yml` parsing, chains/paths.py), each segment is quoted on its own, and right
# before a request goes out the adapter asserts that its path names exactly the repository the
# caller asked for (`assert_names_repository`). A refusal is a permanent ForgeError: nothing is
# sent.


def _refuse(what: str, value: str, exc: PathError) -> ForgeError:
    return ForgeError(f"refused {what} {value[:80]!r}: {exc}", permanent=True)


def project_segments(project: str) -> list[str]:
    """The checked segments of a repository path."""
    try:
        return check_project(project).split("/")
    except PathError as exc:
        raise _refuse("project path", project, exc) from None


def quoted_file_path(path: str) -> str:
    """A checked file path, each segment quoted (``/`` between segments kept)."""
    try:
        check_file_path(path)
    except PathError as exc:
        raise _refuse("file path", path, exc) from None
    return "/".join(quote(segment, safe="") for segment in path.split("/"))


def checked_ref(ref: str) -> str:
    try:
        return check_ref(ref)
    except PathError as exc:
        raise _refuse("ref", ref, exc) from None


def checked_sha(sha: str) -> str:
    try:
        return check_sha(sha)
    except PathError as exc:
        raise _refuse("commit sha", sha, exc) from None


def checked_id(value: str | int, what: str = "id") -> str:
    """A numeric id (pipeline, run, comment) that goes into a URL."""
    text = str(value)
    if not text.isdigit() or len(text) > 20:
        raise ForgeError(f"refused {what} {text[:40]!r}: must be a number", permanent=True)
    return text


def checked_username(name: str) -> str:
    """An account name that goes into a URL: letters, digits, '_', '.', '-' (as both forges)."""
    if (
        not name
        or len(name) > 255
        or name in (".", "..")
        or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    ):
        raise ForgeError(f"refused account name {name[:40]!r}", permanent=True)
    return name


def assert_names_repository(path: str, root: str, project: str | None, *, joined: bool) -> None:
    """Raise ForgeError unless the request path is free of dot and empty segments and, when it
    is under ``root`` (``/repos`` or ``/projects``), names exactly ``project``: as one encoded
    segment (``joined``, GitLab's ``acme%2Fapi``) or one segment per part (GitHub's owner/name)."""
    bare = path.split("?", 1)[0]
    segments = bare.split("/")
    if segments[0] != "" or len(segments) < 2:
        raise ForgeError(f"refused request path {bare[:120]!r}: not absolute", permanent=True)
    for segment in segments[1:]:
        if segment in ("", ".", "..") or unquote(segment) in ("", ".", ".."):
            raise ForgeError(
                f"refused request path {bare[:120]!r}: empty or dot segment", permanent=True
            )
    if segments[1] != root.strip("/"):
        return
    if project is None:
        raise ForgeError(
            f"refused request path {bare[:120]!r}: no repository was checked for it",
            permanent=True,
        )
    parts = project_segments(project)
    if joined:
        named = [unquote(segments[2])] if len(segments) > 2 else []
        expected = ["/".join(parts)]
        exact = len(segments) > 2 and segments[2] == quote(project, safe="")
    else:
        named = [unquote(s) for s in segments[2 : 2 + len(parts)]]
        expected = parts
        exact = segments[2 : 2 + len(parts)] == [quote(p, safe="") for p in parts]
    if named != expected or not exact:
        raise ForgeError(
            f"refused request path {bare[:120]!r}: it does not name {project!r}", permanent=True
        )


def marker_in(text: str, value: str) -> bool:
    """Whether ``value`` (a run's BATON_RUN_NONCE) appears in ``text`` (a run's title) as a whole
    word; the value is escaped, never a pattern."""
    if not value:
        return False
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None
