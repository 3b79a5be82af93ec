"""Changed files of a merge request / pull request: the difference between two file snapshots,
with git-style unified-diff hunks (forge-neutral; the GitLab and GitHub shapes are in the entity
modules).

Commits in the sandbox hold whole snapshots and have one parent, so a change's files are simply
``snapshot(merge base) → snapshot(head)``. A removed file whose exact (non-empty) content
reappears under a new path counts as a rename, as git's rename detection would find it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from itertools import islice

from sandbox.model import Commit

NO_NEWLINE = "\\ No newline at end of file\n"


@dataclass(frozen=True)
class FileChange:
    old_path: str
    new_path: str
    status: str  # added | modified | removed | renamed
    old_text: str | None  # None when added
    new_text: str | None  # None when removed
    patch: str  # hunks only ("@@ -1 +1 @@\n-a\n+b\n"), "" for a pure rename
    additions: int
    deletions: int

    @property
    def path(self) -> str:
        """The path the change is listed under (the old one for a removed file)."""
        return self.old_path if self.status == "removed" else self.new_path


def _lines(text: str | None) -> list[str]:
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])  # last line without a newline
    return lines


def patch(old_text: str | None, new_text: str | None, context: int = 3) -> tuple[str, int, int]:
    """``(hunks, additions, deletions)`` of ``old_text → new_text`` in git's unified format."""
    out: list[str] = []
    additions = deletions = 0
    diff = difflib.unified_diff(_lines(old_text), _lines(new_text), n=context)
    for line in islice(diff, 2, None):  # skip the ---/+++ header lines
        if not line.startswith("@@"):
            if line.startswith("+"):
                additions += 1
            elif line.startswith("-"):
                deletions += 1
            if not line.endswith("\n"):
                line += "\n" + NO_NEWLINE
        out.append(line)
    return "".join(out), additions, deletions


def changed_files(old: dict[str, str], new: dict[str, str]) -> list[FileChange]:
    """Files added, modified, removed or renamed from snapshot ``old`` to ``new``, by path."""
    removed = sorted(p for p in old if p not in new)
    added = sorted(p for p in new if p not in old)
    renames: dict[str, str] = {}  # new path -> old path
    for old_path in removed:
        text = old[old_path]
        match = next((p for p in added if p not in renames and text and new[p] == text), None)
        if match is not None:
            renames[match] = old_path
    changes: list[FileChange] = []
    for path in sorted(set(old) | set(new)):
        if path in renames.values():
            continue  # listed under its new path
        if path in renames:
            source = renames[path]
            changes.append(FileChange(source, path, "renamed", old[source], new[path], "", 0, 0))
        elif path not in old:
            changes.append(_change(path, path, "added", None, new[path]))
        elif path not in new:
            changes.append(_change(path, path, "removed", old[path], None))
        elif old[path] != new[path]:
            changes.append(_change(path, path, "modified", old[path], new[path]))
    return changes


def _change(old_path: str, new_path: str, status: str, old_text: str | None,
            new_text: str | None) -> FileChange:
    hunks, additions, deletions = patch(old_text, new_text)
    return FileChange(old_path, new_path, status, old_text, new_text, hunks, additions, deletions)


def ancestry(commits: dict[str, Commit], sha: str | None) -> list[str]:
    """``sha`` and its ancestors, newest first (as far as ``commits`` knows them)."""
    chain: list[str] = []
    while sha is not None and sha in commits and sha not in chain:
        chain.append(sha)
        sha = commits[sha].parent
    return chain


def merge_base(commits: dict[str, Commit], a: str | None, b: str | None) -> str | None:
    """The newest common ancestor of ``a`` and ``b`` (None when they share no history)."""
    seen = set(ancestry(commits, b))
    return next((sha for sha in ancestry(commits, a) if sha in seen), None)


def change_base(commits: dict[str, Commit], target_head: str | None, head: str, fallback: str
                ) -> str:
    """The commit a change's files are compared against: the merge base of the target branch's
    current head and the change's head, else ``fallback`` (the target's commit at opening)."""
    return merge_base(commits, target_head, head) or fallback


def commits_since(commits: dict[str, Commit], base: str, head: str) -> list[str]:
    """Commits on ``head`` after ``base``, newest first."""
    chain = ancestry(commits, head)
    return chain[: chain.index(base)] if base in chain else chain[:1]
