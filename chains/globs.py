"""Glob patterns (`branches:`, `=~` in `if:`, `changes()`, grant and rule project globs), matched
in linear time without regular expressions.

``*`` matches any run of characters within a path segment (not ``/``), ``**`` any run across
segments, ``?`` one character other than ``/``; everything else stands for itself and the whole
text must match. Patterns come from `.baton.yml` authors, so they are never compiled to a
backtracking regex: a pattern becomes a small NFA whose set of live states is one integer bit
mask, advanced once per character of the text. The cost is O(len(text) x len(pattern) / word
size) whatever the pattern, and patterns are capped in length and number (settings
``BATON_MAX_PATTERN_LENGTH`` and ``BATON_MAX_PATTERNS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_MAX_PATTERN_LENGTH = 256
DEFAULT_MAX_PATTERNS = 100


class PatternError(ValueError):
    """A pattern (or a list of them) over the limits; the message says which and how to fix it."""


def max_pattern_length() -> int:
    from django.conf import settings

    return int(getattr(settings, "BATON_MAX_PATTERN_LENGTH", DEFAULT_MAX_PATTERN_LENGTH))


def max_patterns() -> int:
    from django.conf import settings

    return int(getattr(settings, "BATON_MAX_PATTERNS", DEFAULT_MAX_PATTERNS))


def check_pattern(pattern: str) -> str:
    limit = max_pattern_length()
    if len(pattern) > limit:
        raise PatternError(
            f"pattern {pattern[:30]!r}… is {len(pattern)} characters long; at most {limit} "
            "(BATON_MAX_PATTERN_LENGTH)"
        )
    return pattern


def check_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    limit = max_patterns()
    if len(patterns) > limit:
        raise PatternError(f"{len(patterns)} patterns; at most {limit} (BATON_MAX_PATTERNS)")
    return tuple(check_pattern(p) for p in patterns)


@dataclass(frozen=True)
class _Automaton:
    """State i: i pattern pieces matched. Bit i of a mask is state i."""

    accept: int  # the bit of the final state
    literal: dict[str, int]  # char -> states whose next piece is that literal char
    one: int  # states whose next piece is `?`
    star: int  # states whose next piece is `*` (stays on any char but /)
    dstar: int  # states whose next piece is `**` (stays on any char)
    skippable: int  # star | dstar: a star may match nothing


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> _Automaton:
    pieces: list[str] = []  # a literal char, "?", "*" or "**"
    i = 0
    while i < len(pattern):
        if pattern[i] == "*":
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
            # A run of stars is one piece: `**` if any two stand together, else `*`.
            pieces.append("**" if j - i >= 2 else "*")
            i = j
        else:
            pieces.append(pattern[i])
            i += 1
    literal: dict[str, int] = {}
    one = star = dstar = 0
    for index, piece in enumerate(pieces):
        bit = 1 << index
        if piece == "?":
            one |= bit
        elif piece == "*":
            star |= bit
        elif piece == "**":
            dstar |= bit
        else:
            literal[piece] = literal.get(piece, 0) | bit
    return _Automaton(1 << len(pieces), literal, one, star, dstar, star | dstar)


def _closure(states: int, skippable: int) -> int:
    # Star pieces never stand next to each other (runs are merged), so one step suffices.
    return states | ((states & skippable) << 1)


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` as a whole (see the module docstring)."""
    nfa = _compile(check_pattern(pattern))
    states = _closure(1, nfa.skippable)
    for char in text:
        if char == "/":
            advance = nfa.literal.get(char, 0)
            stay = nfa.dstar
        else:
            advance = nfa.literal.get(char, 0) | nfa.one
            stay = nfa.skippable
        states = _closure(((states & advance) << 1) | (states & stay), nfa.skippable)
        if not states:
            return False
    return bool(states & nfa.accept)


def branch_matches(patterns: Sequence[str], branch: str) -> bool:
    """`branches:` semantics: no patterns match all; `!pattern` excludes; otherwise one of the
    positive patterns must match (only negative patterns: everything else matches)."""
    if not patterns:
        return True
    if any(p.startswith("!") and glob_match(p[1:], branch) for p in patterns):
        return False
    positive = [p for p in patterns if not p.startswith("!")]
    return not positive or any(glob_match(p, branch) for p in positive)
