"""The chain as a graph, like GitLab's pipeline graph with its downstream pipelines: the upstream
change in the first column, then each run in the column of its level — one past the run that
triggered it (``Run.parent``) and past every run it waits for (``depends_on``) — drawn as a
server-side SVG: no script, no build step.

Works from the page's run tree (``presenters.run_tree``), whose runs are already redacted for
the reader: a run in a project they may not view is "a private project" and names nothing."""

from __future__ import annotations

from dataclasses import dataclass

from chains.redaction import PRIVATE
from dashboard.presenters import RunNode, StatusView

COLUMN = 230  # px between columns
ROW = 62  # px between rows
NODE_W = 190
NODE_H = 46
PAD = 12
NAME_CHARS = 24  # longer names are cut (the whole name is in the title and the text list)


@dataclass(frozen=True)
class GraphNode:
    run_id: int  # 0: the upstream change
    name: str
    status: StatusView
    level: int
    row: int
    triggered_by: str  # the parent's name ("" at the first level)
    waits_for: tuple[str, ...]
    mark: str = ""  # "quarantined" or "soft-failed": its failure does not fail the chain

    @property
    def x(self) -> int:
        return PAD + self.level * COLUMN

    @property
    def y(self) -> int:
        return PAD + self.row * ROW

    @property
    def short(self) -> str:
        return self.name if len(self.name) <= NAME_CHARS else self.name[: NAME_CHARS - 1] + "…"

    @property
    def text_x(self) -> int:
        return self.x + 30

    @property
    def icon_x(self) -> int:
        return self.x + 14

    @property
    def name_y(self) -> int:
        return self.y + 19

    @property
    def word_y(self) -> int:
        return self.y + 36

    @property
    def words(self) -> str:
        """The node in words, for its aria-label and the text list."""
        out = f"{self.name}: {self.status.label}"
        if self.mark:
            out += f" ({self.mark}: does not fail the chain)"
        if self.triggered_by:
            out += f", triggered by {self.triggered_by}"
        if self.waits_for:
            out += f", waits for {', '.join(self.waits_for)}"
        return out


@dataclass(frozen=True)
class Edge:
    kind: str  # "nest" (triggered) or "needs" (depends_on)
    path: str  # SVG path data


@dataclass(frozen=True)
class Graph:
    nodes: list[GraphNode]
    edges: list[Edge]
    width: int
    height: int
    levels: int


def _curve(a: GraphNode, b: GraphNode) -> str:
    x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
    x2, y2 = b.x, b.y + NODE_H // 2
    mid = (x1 + x2) // 2
    return f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"


def chain_graph(nodes: list[RunNode], upstream: str, upstream_status: StatusView) -> Graph:
    """Lay the run tree ``nodes`` out in columns, with the upstream change named ``upstream``."""
    by_pk = {node.run.pk: node for node in nodes}
    # depends_on names keys of runs set off by the same parent (one .baton.yml): resolved there.
    siblings: dict[tuple[int | None, str], int] = {}
    for node in nodes:
        run = node.run
        if run.key and run.key != PRIVATE:
            siblings.setdefault((_parent(run, by_pk), run.key), run.pk)
    needs: dict[int, list[int]] = {}
    for node in nodes:
        run = node.run
        keys = [k for k in (getattr(run, "depends_on", None) or []) if k != PRIVATE]
        found = [siblings.get((_parent(run, by_pk), str(k))) for k in keys]
        needs[run.pk] = [pk for pk in found if pk is not None and pk != run.pk]
    level: dict[int, int] = {}

    def level_of(pk: int, seen: frozenset[int] = frozenset()) -> int:
        if pk in level:
            return level[pk]
        if pk in seen:  # a cycle would have been refused; never loop on one
            return 1
        run = by_pk[pk].run
        parent = _parent(run, by_pk)
        here = (level_of(parent, seen | {pk}) + 1) if parent is not None else 1
        for dep in needs.get(pk, []):
            here = max(here, level_of(dep, seen | {pk}) + 1)
        level[pk] = here
        return here

    rows_used: dict[int, int] = {0: 1}
    placed: dict[int, GraphNode] = {}
    root = GraphNode(0, upstream, upstream_status, 0, 0, "", ())
    for node in nodes:  # tree order: a parent is placed before its children
        pk = node.run.pk
        lvl = level_of(pk)
        row = rows_used.get(lvl, 0)
        rows_used[lvl] = row + 1
        parent = _parent(node.run, by_pk)
        placed[pk] = GraphNode(
            pk,
            node.name,
            node.status,
            lvl,
            row,
            by_pk[parent].name if parent is not None else upstream,
            tuple(by_pk[d].name for d in needs.get(pk, [])),
            _mark(node),
        )
    edges = []
    for node in nodes:
        pk = node.run.pk
        parent = _parent(node.run, by_pk)
        source = placed[parent] if parent is not None else root
        edges.append(Edge("nest", _curve(source, placed[pk])))
        edges.extend(Edge("needs", _curve(placed[d], placed[pk])) for d in needs.get(pk, []))
    levels = max(rows_used) + 1
    height = max(rows_used.values())
    return Graph(
        [root, *placed.values()],
        edges,
        2 * PAD + (levels - 1) * COLUMN + NODE_W,
        2 * PAD + (height - 1) * ROW + NODE_H,
        levels,
    )


def _parent(run: object, by_pk: dict[int, RunNode]) -> int | None:
    parent = getattr(run, "parent_id", None)
    return parent if parent in by_pk else None


def _mark(node: RunNode) -> str:
    """What the run's table row tags it with when its failure does not fail the chain."""
    if getattr(node.run, "quarantine_reason", ""):
        return "quarantined"
    if node.soft_fail and node.status.value == "failed":
        return "soft-failed"
    return ""
