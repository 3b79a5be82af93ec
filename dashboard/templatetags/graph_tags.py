"""``{% chain_graph page as graph %}``: the chain page's graph (dashboard/graph.py)."""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.graph import NODE_H, NODE_W, Graph, chain_graph

register = template.Library()


@register.simple_tag
def chain_graph_of(page: Any) -> Graph:
    upstream = f"{page.chain.repository.path} {page.change}".strip()
    return chain_graph(page.nodes, upstream, page.status)


@register.simple_tag
def node_size() -> dict[str, int]:
    return {"w": NODE_W, "h": NODE_H}
