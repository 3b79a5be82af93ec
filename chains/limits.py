"""Bounds on what a `.baton.yml`, an admin rule or a params file may cost to read.

YAML aliases let a small file describe a huge document (``&a [*b, *b, …]``: each level multiplies
the one below), so the composer counts every node as often as the document's readers will visit
it and stops at a budget, and it refuses nesting beyond a depth and aliases that contain
themselves. Limits are settings (``BATON_MAX_CONFIG_*``); errors are in words.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings
from yaml._yaml import CParser as _CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver


class LimitError(ValueError):
    """Input beyond a limit; ``line`` when the place is known."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        super().__init__(message)


def check_size(text: str, what: str) -> None:
    limit = settings.BATON_MAX_CONFIG_BYTES
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise LimitError(
            f"{what} is {size} bytes; at most {limit} are read (BATON_MAX_CONFIG_BYTES)"
        )


LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"  # libyaml's words (src/parser.c)

CParser: Any = _CParser  # its stubs and the composer's disagree on what events are


class BoundedLoader(Composer, CParser, SafeConstructor, Resolver):
    """A safe loader whose composer bounds nesting depth and the size of the expanded document.

    The text is read, scanned and parsed by libyaml (PyYAML's ``CParser``, in C; the parser
    GitLab's own YAML goes through), whose events PyYAML's composer (Python, with the bounds
    below) makes nodes of: a 100-target file costs a seventeenth of the Python calls of
    PyYAML's pure-Python reader and scanner (docs/benchmarks.md, F1, session 9), read on
    every change, push and expansion. The nodes and their marks are the same."""

    def __init__(self, stream: str) -> None:
        try:
            stream.encode("utf-8")
        except UnicodeEncodeError as exc:  # libyaml takes UTF-8: say so as PyYAML's reader does
            raise ReaderError(
                "<unicode string>",
                exc.start,
                ord(stream[exc.start]),
                "unicode",
                "special characters are not allowed",
            ) from None
        CParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)
        self.max_depth: int = settings.BATON_MAX_CONFIG_DEPTH
        self.max_nodes: int = settings.BATON_MAX_CONFIG_NODES
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def get_single_node(self) -> Node | None:
        try:
            node: Node | None = super().get_single_node()
        except yaml.MarkedYAMLError as exc:
            # libyaml stops at its own depth (1,000) before the composer sees a deep flow
            # collection (``[[[…``): its scanner reads ahead.
            if exc.problem != LIBYAML_TOO_DEEP:
                raise
            mark = exc.problem_mark or exc.context_mark
            raise self._too_deep(mark.line + 1 if mark else None) from None
        return node

    def _too_deep(self, line: int | None) -> LimitError:
        return LimitError(
            f"nested more than {self.max_depth} levels deep (BATON_MAX_CONFIG_DEPTH)", line=line
        )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            anchored = self.anchors.get(event.anchor)
            if anchored is not None and id(anchored) not in self._sizes:
                raise LimitError(
                    f"the alias *{event.anchor} refers to a value that contains it",
                    line=event.start_mark.line + 1,
                )
            alias: Node = super().compose_node(parent, index)  # type: ignore[assignment]
            return alias
        self._depth += 1
        if self._depth > self.max_depth:
            raise self._too_deep(self.peek_event().start_mark.line + 1)
        try:
            node: Node = super().compose_node(parent, index)  # type: ignore[assignment]
        finally:
            self._depth -= 1
        self._sizes[id(node)] = size = 1 + sum(self._sizes.get(id(n), 1) for n in _children(node))
        if size > self.max_nodes:
            raise LimitError(
                f"expands to more than {self.max_nodes} values once YAML aliases are "
                "followed (BATON_MAX_CONFIG_NODES); write the values out or use fewer aliases",
                line=node.start_mark.line + 1,
            )
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def compose(text: str) -> Node | None:
    """The YAML document's node graph, within the limits (LimitError otherwise)."""
    check_size(text, "the file")
    return yaml.compose(text, Loader=BoundedLoader)  # type: ignore[no-any-return,arg-type]
