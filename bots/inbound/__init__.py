"""Webhook intake per forge: each module verifies, names, dedupes and parses its deliveries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bots.events import Event, Ignored, MalformedPayload, PushEvent
from chains.paths import PathError, check_project, check_ref, check_sha
from chains.planner import Change

Parser = Callable[[Mapping[str, Any]], Event | None]


def get(payload: Any, *path: str) -> Any:
    """``payload[a][b]…``, or MalformedPayload naming the missing path."""
    value = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise MalformedPayload(f"missing {'.'.join(path)}")
        value = value[part]
    return value


def _checked(payload: Any, path: tuple[str, ...], check: Callable[[str], str]) -> str:
    value = str(get(payload, *path))
    try:
        return check(value)
    except PathError as exc:
        raise MalformedPayload(f"{'.'.join(path)}: {exc}") from None


def project_path(payload: Any, *path: str) -> str:
    """A repository path from a webhook, refused when it could name another repository."""
    return _checked(payload, path, check_project)


def ref_name(payload: Any, *path: str) -> str:
    """A branch or tag name from a webhook, by git's rules for ref names."""
    return _checked(payload, path, check_ref)


def optional_ref(payload: Any, *path: str) -> str:
    """A branch name a webhook may carry (a project's default branch): "" when it is missing or
    not a valid ref, never an error: nothing depends on it but a saved look-up."""
    try:
        value = get(payload, *path)
        return check_ref(value) if isinstance(value, str) else ""
    except (MalformedPayload, PathError):
        return ""


def sha(payload: Any, *path: str) -> str:
    return _checked(payload, path, check_sha)


ZERO_SHA = "0" * 40
MAX_CHANGED_FILES = 5_000  # paths a push may name for `changes:` (more: the rest are not seen)
PUSH_KINDS = {"refs/heads/": "push", "refs/tags/": "tag"}
MAX_USERNAME = 255  # what Chain.author / runs_for hold; forges allow fewer characters


def changed_paths(commits: Any) -> tuple[str, ...]:
    """The files a push's commits add, modify or remove (``added``/``modified``/``removed``, on
    both forges), at most MAX_CHANGED_FILES, in order of first mention."""
    seen: dict[str, None] = {}
    for commit in commits if isinstance(commits, list) else []:
        if not isinstance(commit, Mapping):
            continue
        for key in ("added", "modified", "removed"):
            for path in commit.get(key) or []:
                if isinstance(path, str) and len(seen) < MAX_CHANGED_FILES:
                    seen.setdefault(path[:1024], None)
    return tuple(seen)


def push_event(
    *,
    forge: str,
    ref: Any,
    after: Any,
    head: Any,
    project: str,
    project_url: str,
    project_id: str,
    pusher: str,
    public: bool | None,
    previous: Any,
    message: str,
    commits: Any,
    default_branch: str = "",
) -> Event:
    """A push of a branch or a tag as a PushEvent, or Ignored (a deletion, another kind of ref).
    ``after`` is the ref's new value (an annotated tag's own object on both forges), ``head`` the
    commit it points at (GitLab's ``checkout_sha``, GitHub's ``head_commit.id``)."""
    ref = str(ref or "")
    prefix = next((p for p in PUSH_KINDS if ref.startswith(p)), None)
    if prefix is None:
        return Ignored(f"a push to {ref[:100]!r}, neither a branch nor a tag: nothing to trigger")
    kind = PUSH_KINDS[prefix]
    try:
        name = check_ref(ref.removeprefix(prefix))
    except PathError as exc:
        raise MalformedPayload(f"ref: {exc}") from None
    what = "branch" if kind == "push" else "tag"
    if str(after or "") == ZERO_SHA:
        return Ignored(f"{what} {name} was deleted: nothing to trigger")
    try:
        commit = check_sha(str(head or after or ""))
    except PathError as exc:
        raise MalformedPayload(f"the pushed commit: {exc}") from None
    if len(pusher) > MAX_USERNAME or not pusher.isprintable():
        raise MalformedPayload("the pusher's name is not a forge username")
    before = str(previous or "")
    change = Change(
        forge=forge,
        project=project,
        project_url=project_url,
        number=None,
        url="",
        source_branch=name if kind == "push" else "",
        target_branch="",
        head_sha=commit,
        upstream_ref=ref,
        title=message.strip().split("\n", 1)[0][:500],
        author=pusher,
        message=message[:10_000],
    )
    return PushEvent(
        kind=kind,
        change=change,
        project_id=project_id,
        pusher=pusher,
        public=public,
        previous_sha="" if before == ZERO_SHA else before[:64],
        changed_files=changed_paths(commits),
        default_branch=default_branch,
    )


def parse_with(parsers: Mapping[str, Parser], event: str, payload: Any) -> Event | None:
    """The neutral event, or None when the event is authentic but not one Baton acts on.
    A payload without what its event must carry raises MalformedPayload, in words."""
    parser = parsers.get(event)
    if parser is None:
        return None
    if not isinstance(payload, Mapping):
        raise MalformedPayload("payload is not a JSON object")
    try:
        return parser(payload)
    except MalformedPayload:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MalformedPayload(f"{event}: {exc}") from None
