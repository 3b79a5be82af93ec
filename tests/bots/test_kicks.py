"""What a kick publishes: the task's arguments, and how they are shown (bounded)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from bots import kicks


def test_the_arguments_are_shown_bounded_and_sent_whole() -> None:
    only = ["a-target-key"] * 500  # a comment may name many targets
    with mock.patch("bots.tasks.start_for_comment.apply_async") as apply_async:
        kicks._send("start_for_comment", (1, "acme/app", 7, "alice", only))
    (args,), options = apply_async.call_args.args, apply_async.call_args.kwargs
    sent: Any = args
    assert sent[4] == only  # the task gets every argument
    assert len(options["argsrepr"]) == kicks.ARGSREPR_MAX
    assert options["argsrepr"].startswith("(1, 'acme/app', 7, 'alice', [")
    assert options["kwargsrepr"] == "{}"
