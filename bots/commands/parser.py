"""`/baton …` commands in a comment: found line by line, outside quotes and code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bots.markdown import code

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
    """Lines that read as commands once rendered: not in HTML comments or `<pre>` blocks (which
    the forge hides or shows as code), not in fenced or indented code, not quoted."""
    lines = []
    fence = ""  # the fence that opened the code block we are in ("" outside one)
    for raw in _visible(body).splitlines():
        line = raw.strip()
        if fence:
            if _closes(raw, fence):
                fence = ""
            continue  # code is never a command
        fence = _opens(raw)
        if fence or line.startswith(">") or raw.expandtabs(4).startswith("    "):
            continue  # code and quoted text are never commands
        if line == PREFIX or line.startswith(PREFIX + " "):
            lines.append(line)
    return lines


def _fence_of(raw: str) -> tuple[str, str]:
    """(the run of backticks or tildes a line starts with, what follows it), by CommonMark's
    rule: indented at most three spaces; ("", "") for any other line."""
    expanded = raw.expandtabs(4)
    text = expanded.lstrip(" ")
    if len(expanded) - len(text) > 3 or text[:3] not in ("```", "~~~"):
        return "", ""
    run = len(text) - len(text.lstrip(text[0]))
    return text[:run], text[run:]


def _opens(raw: str) -> str:
    """The fence this line opens a code block with ("" when it opens none)."""
    fence, info = _fence_of(raw)
    if fence.startswith("`") and "`" in info:
        return ""  # a backtick fence's info string holds no backtick: this is inline code
    return fence


def _closes(raw: str, opened: str) -> bool:
    """Whether this line closes a code block opened by ``opened``: the same character, at least
    as many, and nothing else on the line."""
    fence, rest = _fence_of(raw)
    return fence[:1] == opened[0] and len(fence) >= len(opened) and not rest.strip()


_HIDDEN = {"<!--": "-->", "<pre": "</pre>"}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _visible(body: str) -> str:
    """The body without HTML comments and `<pre>` blocks; an unclosed one runs to the end, as a
    browser renders it. A plain scan, no regular expression: each character is looked at a
    bounded number of times."""
    lowered = body.translate(_ASCII_LOWER)  # same length and indices as the body
    kept: list[str] = []
    at = 0
    upcoming = {opener: _find_opener(lowered, opener, 0) for opener in _HIDDEN}
    while True:
        for opener, where in upcoming.items():
            if 0 <= where < at:
                upcoming[opener] = _find_opener(lowered, opener, at)
        starts = [(where, opener) for opener, where in upcoming.items() if where >= 0]
        if not starts:
            kept.append(body[at:])
            break
        start, opener = min(starts)
        kept.append(body[at:start])
        end = lowered.find(_HIDDEN[opener], start + len(opener))
        if end < 0:
            break
        at = end + len(_HIDDEN[opener])
        kept.append("\n")  # what follows the block starts a line of its own
    return "".join(kept)


def _find_opener(lowered: str, opener: str, at: int) -> int:
    """Where the next ``opener`` starts (-1: none); ``<pre`` only as a tag, not ``<preview>``."""
    while (found := lowered.find(opener, at)) >= 0:
        after = lowered[found + len(opener) : found + len(opener) + 1]
        if opener == "<!--" or after in (">", "") or after.isspace():
            return found
        at = found + 1
    return -1


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
        return f"{_quote(verb)} is not a command; use one of {', '.join(VERBS)}"
    if verb in ("plan", "status", "help") and args:
        return f"{_quote(verb)} takes no arguments"
    for arg in args:
        if not KEY.match(arg):
            return f"{_quote(arg)} is not a target key (letters, digits, `.`, `_` and `-`)"
    words = set(args) & {"all", "failed"}
    if verb == "run" and words:
        return "`run` takes target keys, not `all` or `failed`"
    if verb == "cancel" and "failed" in words:
        return "`cancel failed` makes no sense: failed runs have stopped already"
    if words and len(args) > 1:
        return f"`{sorted(words)[0]}` stands alone; do not mix it with keys"
    return ""


def _quote(word: str) -> str:
    """A word of the comment quoted back as code (escaped), at most 100 characters of it."""
    return code(word if len(word) <= 100 else word[:100] + "…")
