"""The engine's imports run one way (tasks → router, commands, services → engine → chains), the
webhook view loads neither the worker's router nor the engine nor a forge SDK, and no import is
hidden inside a function in bots/ unless a comment there says why."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOTS = ROOT / "bots"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    """What the module imports when it is imported (not inside functions)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in BOTS.rglob("*.py") if "migrations" not in p.parts}
    graph = {}
    for name, path in modules.items():
        found = set()
        for imported in _top_level_imports(path):
            # a package import loads its __init__; "from bots import tasks" names a module
            found |= {m for m in modules if imported == m}
            parent = imported.rsplit(".", 1)[0]
            if parent in modules and imported not in modules:
                found.add(parent)
        graph[name] = found - {name}
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_bots_import_graph_has_no_cycle() -> None:
    graph = _graph()
    cycles = sorted(m for m in graph if m in _reach(graph, m))
    assert cycles == []


def test_the_engine_never_imports_the_tasks() -> None:
    graph = _graph()
    for module in graph:
        if module.startswith(("bots.engine", "bots.services", "bots.commands", "bots.router")):
            assert "bots.tasks" not in _reach(graph, module), module


def test_the_webhook_view_loads_neither_router_nor_engine_nor_a_forge_sdk() -> None:
    graph = _graph()
    reached = _reach(graph, "bots.webhooks")
    assert not {m for m in reached if m.startswith(("bots.engine", "bots.router", "bots.tasks"))}
    assert "bots.forges.gitlab" not in reached and "bots.forges.github" not in reached
    assert "bots.inbound.table" in reached


def test_no_function_local_imports_without_a_reason() -> None:
    unexplained = []
    for path in sorted(BOTS.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here = lines[node.lineno - 1]
                    above = lines[node.lineno - 2] if node.lineno > 1 else ""
                    if "#" not in here and not above.strip().startswith("#"):
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unexplained == []
