from __future__ import annotations

import pytest

from bots.commands.parser import Command, parse_comment


def verbs(body: str) -> list[tuple[str, tuple[str, ...]]]:
    commands, mistakes = parse_comment(body)
    assert mistakes == []
    return [(c.verb, c.args) for c in commands]


def test_several_commands_in_one_comment() -> None:
    body = "Thanks!\n/baton retry failed\n  /baton cancel web api\n/baton status"
    assert verbs(body) == [("retry", ("failed",)), ("cancel", ("web", "api")), ("status", ())]


def test_quotes_code_and_prose_are_not_commands() -> None:
    body = (
        "> /baton cancel all\n"
        "```\n/baton retry all\n```\n"
        "I will /baton later\n"
        "/batonize nothing\n"
        "~~~\n/baton plan\n~~~\n"
    )
    assert verbs(body) == []


def test_bare_prefix_is_help() -> None:
    assert parse_comment("/baton")[0] == [Command("help", (), "/baton")]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("/baton deploy now", "`deploy` is not a command"),
        ("/baton plan api", "`plan` takes no arguments"),
        ("/baton retry all api", "`all` stands alone"),
        ("/baton run failed", "`run` takes target keys"),
        ("/baton cancel failed", "makes no sense"),
        ("/baton retry ../etc", "is not a target key"),
    ],
)
def test_mistakes_are_pointed_out(line: str, problem: str) -> None:
    commands, mistakes = parse_comment(f"please\n{line}\n/baton status")
    assert [c.verb for c in commands] == ["status"]
    (mistake,) = mistakes
    assert mistake.text == line and problem in mistake.problem


def test_verbs_are_case_insensitive() -> None:
    assert verbs("/baton RETRY api") == [("retry", ("api",))]
