"""Red-team findings on what patterns may cost.

Each glob is linear in its text, but `changes()` multiplies: up to BATON_MAX_PATTERNS patterns,
each against every path of the change (GitHub lists up to 3,000 files, and a rename names two
paths; git allows paths of thousands of characters). A `.baton.yml` author who opens a change
with many long paths made one target's `if:` cost tens of seconds or more, and the plan page's dry
run checked its deadline only between targets, so it held a web worker that long."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chains import deadline
from chains.conditions import Context, parse_condition


def test_changes_over_many_long_paths_stops_at_the_dry_runs_deadline(settings: Any) -> None:
    # 90 short patterns that never fail early and never match (the condition's 1000 characters).
    condition = parse_condition("changes(" + ",".join(f'"**a!{i}"' for i in range(90)) + ")")
    paths = [("x/" * 100) + "a" * 800 + str(i) for i in range(6000)]
    context = Context(branch="feature", changed_files=lambda: paths)
    started = time.monotonic()
    with pytest.raises(deadline.TimeUp), deadline.within(0.3):
        condition.evaluate(context)
    assert time.monotonic() - started < 2
