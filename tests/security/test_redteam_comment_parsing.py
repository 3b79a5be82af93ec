"""Red-team findings on which lines of a comment run as commands.

The parser toggled "in fenced code" on any line starting with three backticks or tildes. Markdown
(CommonMark, as both forges render it) closes a fence only with the same character, at least as
many of them, nothing else on the line, indented at most three spaces. So a `~~~` line, a
shorter fence, a fence with an info string, or an indented "fence" (which is code itself) ended
the parser's code block while the reader still saw code: a command quoted in a log that another
account (a CI bot) posts inside a code block ran with that account's grants."""

from __future__ import annotations

import pytest

from bots.commands.parser import parse_comment


@pytest.mark.parametrize(
    "body",
    [
        "```\n~~~\n/baton retry all\n```",
        "~~~\n```\n/baton retry all\n~~~",
        "````\n```\n/baton cancel all\n````",
        "```\n```js\n/baton retry all\n```",
        "    ```\n```\n/baton retry all\n```",
        "Build log:\n```text\nstep 3 ok\n``` not a fence\n/baton cancel all\n```",
    ],
)
def test_commands_still_inside_a_code_block_do_not_run(body: str) -> None:
    assert parse_comment(body) == ([], [])


@pytest.mark.parametrize(
    "body",
    [
        "```\ncode\n```\n/baton retry api",
        "~~~python\nx = 1\n~~~~\n/baton retry api",
        "   ```\ncode\n   ```   \n/baton retry api",
    ],
)
def test_commands_after_a_closed_code_block_run(body: str) -> None:
    commands, mistakes = parse_comment(body)
    assert [(c.verb, c.args) for c in commands] == [("retry", ("api",))] and not mistakes
