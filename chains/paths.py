"""Project paths, file paths and refs that may reach a forge URL: checked once, where they enter.

A path is a list of segments. A segment that is empty, ``.`` or ``..``, or text that carries a
percent-encoded character (``%2F``, ``%2E%2E``), a backslash or a control character, could make an
HTTP client or a forge resolve the URL to another repository than the one the policy checked
(``acme/api/../../victim/prod``). Such values are refused here, in words, before anything is
planned; the forge adapters check the URLs they build once more (bots/forges/base.py).
"""

from __future__ import annotations

import re

MAX_PATH_LENGTH = 1024
MAX_REF_LENGTH = 255
PROJECT_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,255}")  # never "." or ".." (checked before)
FORGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,49}")
SHA = re.compile(r"[0-9a-fA-F]{7,64}")
FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256, as forges name commits
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_REF_FORBIDDEN = set(" ~^:?*[\\")


class PathError(ValueError):
    """A path or ref that could name something other than it seems to; the message says why."""


def _control(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _common(value: str, what: str, limit: int) -> None:
    if not value:
        raise PathError(f"{what} must not be empty")
    if len(value) > limit:
        raise PathError(f"{what} is longer than {limit} characters")
    if _control(value):
        raise PathError(f"{what} must not contain control characters")
    if "\\" in value:
        raise PathError(f"{what} must not contain a backslash")
    if _ENCODED.search(value):
        raise PathError(f"{what} must not contain percent-encoded characters such as %2F")


def _segments(value: str, what: str) -> list[str]:
    segments = value.split("/")
    for segment in segments:
        if segment == "":
            raise PathError(f"{what} must not have empty segments (leading, trailing or double /)")
        if segment in (".", ".."):
            raise PathError(f"{what} must not have '.' or '..' segments")
    return segments


def check_project(value: str) -> str:
    """A repository path such as ``acme/api`` or ``group/sub/api``: at least two segments of
    letters, digits, ``_``, ``.`` and ``-``."""
    _common(value, "a project path", MAX_PATH_LENGTH)
    segments = _segments(value, "a project path")
    if len(segments) < 2:
        raise PathError("a project path needs a namespace and a name, such as acme/api")
    for segment in segments:
        if not PROJECT_SEGMENT.fullmatch(segment):
            raise PathError(
                f"project path segment {segment[:40]!r} may use only letters, digits, "
                "'_', '.' and '-'"
            )
    return value


def check_target_project(value: str) -> str:
    """A `.baton.yml` target: ``self``, ``acme/api`` or ``<forge>:acme/api``."""
    if value == "self":
        return value
    forge, colon, path = value.rpartition(":")
    if colon and not FORGE_NAME.fullmatch(forge):
        raise PathError(f"forge name {forge[:40]!r} may use only letters, digits, '_' and '-'")
    check_project(path)
    return value


def check_file_path(value: str) -> str:
    """A file in a repository, relative to its root (``ci/downstream.env``)."""
    _common(value, "a file path", MAX_PATH_LENGTH)
    if value.startswith("/"):
        raise PathError("a file path is relative to the repository root; drop the leading /")
    _segments(value, "a file path")
    return value


def check_ref(value: str) -> str:
    """A branch, tag, full ref or commit sha, by git's rules for ref names (``$VARIABLES`` may
    stand in it; their values are checked again after expansion)."""
    _common(value, "a ref", MAX_REF_LENGTH)
    if ".." in value:
        raise PathError("a ref must not contain '..'")
    bad = sorted({c for c in value if c in _REF_FORBIDDEN})
    if bad:
        raise PathError(f"a ref must not contain {' '.join(repr(c) for c in bad)}")
    if "@{" in value or value == "@":
        raise PathError("a ref must not contain '@{' or be '@'")
    if value.endswith(".lock") or value.endswith("."):
        raise PathError("a ref must not end with '.lock' or '.'")
    segments = _segments(value, "a ref")
    if any(s.startswith(".") for s in segments):
        raise PathError("a ref's segments must not start with '.'")
    return value


def check_sha(value: str) -> str:
    if not SHA.fullmatch(value):
        raise PathError("a commit sha is 7 to 64 hexadecimal digits")
    return value


def is_full_sha(value: str) -> bool:
    """A whole commit SHA (not a prefix, which another commit could come to share)."""
    return FULL_SHA.fullmatch(value) is not None
