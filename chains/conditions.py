"""`if:` conditions of `.baton.yml`: a small grammar, parsed once and evaluated safely (no eval).

    condition  := or
    or         := and ("||" and)*
    and        := unary ("&&" unary)*
    unary      := "!" unary | "(" or ")" | call | comparison
    comparison := value [("==" | "!=" | "=~" | "!~" | "in") value]
    call       := "changes" "(" string ("," string)* ")"
    value      := "string" | 'string' | name | $VAR | ${VAR}
    name       := branch | target_branch | source | message | title | author | labels

`=~` and `!~` match glob patterns (`*` within a path segment, `**` across, `?` one character);
`in` tests membership in `labels` (or a substring of a string); a value on its own is true when
it is not empty; `changes("docs/**")` is true when a changed file matches one of the patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chains import deadline
from chains.globs import PatternError, branch_matches, check_patterns, glob_match

__all__ = ["branch_matches", "glob_match"]  # where they used to live

NAMES = ("branch", "target_branch", "source", "message", "title", "author", "labels")
MAX_LENGTH = 1000
MAX_DEPTH = 50

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<var>\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|=~|!~|&&|\|\||!|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Context:
    """What a condition can look at, for one change (or one upstream pipeline)."""

    branch: str = ""
    target_branch: str = ""
    source: str = "merge_request"
    message: str = ""
    title: str = ""
    author: str = ""
    labels: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    changed_files: Callable[[], Sequence[str]] | None = None  # asked only when needed


Node = tuple  # ("or", a, b) | ("and", a, b) | ("not", a) | ("cmp", op, a, b) | ("changes", pats)


@dataclass(frozen=True)
class Condition:
    text: str
    tree: Node

    def evaluate(self, context: Context) -> bool:
        try:
            return bool(_eval(self.tree, context))
        except PatternError as exc:  # a $VARIABLE on the right of =~ that is too long
            raise ConditionError(str(exc)) from None


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            start = len(text) - len(text[position:].lstrip())
            raise ConditionError(f"at column {start + 1}: cannot read {text[start:][:15]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind) + 1))
        position = match.end()
    return tokens


def parse_condition(text: str) -> Condition:
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"is longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokens(text))
    tree = parser.or_()
    if parser.peek() is not None:
        _, value, column = parser.tokens[parser.index]
        raise ConditionError(f"at column {column}: unexpected {value!r}")
    try:
        check_patterns(_patterns(tree))
    except PatternError as exc:
        raise ConditionError(str(exc)) from None
    return Condition(text, tree)


def _patterns(node: Node) -> list[str]:
    """The glob patterns written in a condition (`=~`/`!~` right-hand strings, `changes()`)."""
    kind = node[0]
    if kind in ("or", "and"):
        return _patterns(node[1]) + _patterns(node[2])
    if kind == "not":
        return _patterns(node[1])
    if kind == "changes":
        return list(node[1])
    if kind == "cmp" and node[1] in ("=~", "!~") and node[3][0] == "str":
        return [str(node[3][1])]
    return []


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise ConditionError("ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        kind, got, column = self.take()
        if got != value or kind not in ("op", "word"):
            raise ConditionError(f"at column {column}: expected {value!r}, found {got!r}")

    def or_(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError("is nested too deeply")
        node = self.and_()
        while self.peek() == "||":
            self.take()
            node = ("or", node, self.and_())
        self.depth -= 1
        return node

    def and_(self) -> Node:
        node = self.unary()
        while self.peek() == "&&":
            self.take()
            node = ("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ConditionError("is nested too deeply")
            node = ("not", self.unary())
            self.depth -= 1
            return node
        if self.peek() == "(":
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        if self.peek() == "changes" and self.tokens[self.index][0] == "word":
            self.take()
            self.expect("(")
            patterns = [self.string()]
            while self.peek() == ",":
                self.take()
                patterns.append(self.string())
            self.expect(")")
            return ("changes", tuple(patterns))
        left = self.value()
        if self.peek() in ("==", "!=", "=~", "!~", "in"):
            _, op, column = self.take()
            right = self.value()
            if op != "in" and ("name", "labels") in (left, right):
                raise ConditionError(f"at column {column}: labels can only be used with `in`")
            return ("cmp", op, left, right)
        return ("truthy", left)

    def string(self) -> str:
        kind, value, column = self.take()
        if kind != "string":
            raise ConditionError(f"at column {column}: expected a quoted string, found {value!r}")
        return _unquote(value)

    def value(self) -> Node:
        kind, value, column = self.take()
        if kind == "string":
            return ("str", _unquote(value))
        if kind == "var":
            return ("var", value.strip("${}"))
        if kind == "word" and value in NAMES:
            return ("name", value)
        if kind == "word":
            raise ConditionError(
                f"at column {column}: unknown name {value!r}; use one of {', '.join(NAMES)}, "
                "a $VARIABLE or a quoted string"
            )
        raise ConditionError(f"at column {column}: expected a value, found {value!r}")


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _value(node: Node, context: Context) -> str | tuple[str, ...]:
    kind, arg = node
    if kind == "str":
        return str(arg)
    if kind == "var":
        return context.variables.get(str(arg), "")
    value = getattr(context, str(arg))
    return tuple(value) if isinstance(value, tuple) else str(value)


def _eval(node: Node, context: Context) -> bool:
    kind = node[0]
    if kind == "or":
        return _eval(node[1], context) or _eval(node[2], context)
    if kind == "and":
        return _eval(node[1], context) and _eval(node[2], context)
    if kind == "not":
        return not _eval(node[1], context)
    if kind == "truthy":
        return bool(_value(node[1], context))
    if kind == "changes":
        files = context.changed_files() if context.changed_files else ()
        for pattern in node[1]:
            for path in files:
                # Up to 100 patterns x 6,000 paths: a dry run's deadline is checked between them.
                deadline.check()
                if glob_match(pattern, path):
                    return True
        return False
    _, op, left_node, right_node = node
    left, right = _value(left_node, context), _value(right_node, context)
    if op == "in":
        return str(left) in right if isinstance(right, tuple) else str(left) in str(right)
    left, right = str(left), str(right)
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    matched = glob_match(right, left)
    return matched if op == "=~" else not matched
