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
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode


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


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer bounds nesting depth and the size of the expanded document."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.max_depth: int = settings.BATON_MAX_CONFIG_DEPTH
        self.max_nodes: int = settings.BATON_MAX_CONFIG_NODES
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

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
            mark = self.peek_event().start_mark
            raise LimitError(
                f"nested more than {self.max_depth} levels deep (BATON_MAX_CONFIG_DEPTH)",
                line=mark.line + 1,
            )
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
    return yaml.compose(text, Loader=BoundedLoader)  # type: ignore[no-any-return]
