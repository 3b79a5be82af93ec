"""How Baton writes what a reader may not know: one place for the words and the rule.

Everything Baton writes on a change (commit statuses, the summary comment, `/baton` replies) is read
by whoever can read that change. A project that is less visible than the change's own project is
written as "a private project": no path, key, label, ref, variables or link. What Baton does not
know about a project (a target it has not seen through a hook or the forge) counts as private.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PRIVATE = "a private project"  # in sentences and tables
PRIVATE_NAME = "private project"  # as a field's value (the API)
PRIVATE_MANY = "private projects"  # "3 runs in private projects"
MASK = "••••"  # a masked variable's value

# How many people may read a project: the higher, the fewer. Anything else (unknown) is private.
_RANK = {"public": 0, "internal": 1, "private": 2}
_HIDDEN_RANK = 2


def private_projects(count: int) -> str:
    """``a private project`` or ``private projects``, for ``count`` of them."""
    return PRIVATE if count == 1 else PRIVATE_MANY


def rank(visibility: str) -> int:
    return _RANK.get(visibility, _HIDDEN_RANK)


def hides(upstream: Any, target: Any) -> bool:
    """Whether text on ``upstream``'s change must not name ``target`` (both Repositories): the
    target may be read by fewer people than the change, or its visibility is not known."""
    return rank(target.visibility) > rank(upstream.visibility)


def hidden_runs(upstream: Any, runs: Iterable[Any]) -> set[int]:
    """Ids of the runs ``upstream``'s readers may not know: those in a hidden project, and those a
    hidden run set off (its own `.baton.yml` chose their keys, labels and refs)."""
    hidden: set[int] = set()
    for run in sorted(runs, key=lambda r: r.depth):  # a parent comes before what it set off
        if hides(upstream, run.repository) or (run.parent_id and run.parent_id in hidden):
            hidden.add(run.pk)
    return hidden


def private_names(upstream: Any, runs: Iterable[Any]) -> set[str]:
    """The keys and labels of the hidden runs, and the paths of the hidden projects."""
    runs = list(runs)
    hidden = hidden_runs(upstream, runs)
    names: set[str] = set()
    for run in runs:
        if run.pk in hidden:
            names.update(n for n in (run.key, run.label) if n)
            if hides(upstream, run.repository):
                names.add(run.repository.path)
    return names


_EDGE = r"[\w./-]"


def scrub(text: str, names: Iterable[str]) -> str:
    """``text`` with each of ``names`` (as a whole word or path) written as "a private project".
    The pattern is an alternation of escaped literals: no backtracking on what a file wrote."""
    wanted = sorted({n for n in names if n and n != PRIVATE}, key=len, reverse=True)
    if not text or not wanted:
        return text
    pattern = re.compile(
        rf"(?<!{_EDGE})(?:{'|'.join(re.escape(n) for n in wanted)})(?!{_EDGE})", re.IGNORECASE
    )
    return pattern.sub(PRIVATE, text)
