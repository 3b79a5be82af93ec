"""`/baton …` commands in a comment: found line by line, outside quotes and code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PREFIX = "/baton"
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
VERBS = ("plan", "run", "retry", "cancel", "status", "help")

HELP = (Path(__file__).parent / "help.md").read_text()


@dataclass(frozen=True)
class Command:
    verb: str
    args: tuple[str, ...]
    text: str  # the line as written


@dataclass(frozen=True)
class Mistake:
    text: str  # the line as written
    problem: str


def _command_lines(body: str) -> list[str]:
    lines = []
    fenced = False
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or line.startswith(">"):
            continue  # code and quoted text are never commands
        if line == PREFIX or line.startswith(PREFIX + " "):
            lines.append(line)
    return lines


def parse_comment(body: str) -> tuple[list[Command], list[Mistake]]:
    commands: list[Command] = []
    mistakes: list[Mistake] = []
    for line in _command_lines(body):
        words = line.split()[1:]
        if not words:
            commands.append(Command("help", (), line))
            continue
        verb, args = words[0].lower(), tuple(words[1:])
        problem = _problem(verb, args)
        if problem:
            mistakes.append(Mistake(line, problem))
        else:
            commands.append(Command(verb, args, line))
    return commands, mistakes


def _problem(verb: str, args: tuple[str, ...]) -> str:
    if verb not in VERBS:
        return f"`{verb}` is not a command; use one of {', '.join(VERBS)}"
    if verb in ("plan", "status", "help") and args:
        return f"`{verb}` takes no arguments"
    for arg in args:
        if not KEY.match(arg):
            return f"`{arg}` is not a target key (letters, digits, `.`, `_` and `-`)"
    words = set(args) & {"all", "failed"}
    if verb == "run" and words:
        return "`run` takes target keys, not `all` or `failed`"
    if verb == "cancel" and "failed" in words:
        return "`cancel failed` makes no sense: failed runs have stopped already"
    if words and len(args) > 1:
        return f"`{sorted(words)[0]}` stands alone; do not mix it with keys"
    return ""
