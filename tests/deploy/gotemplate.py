"""A small, strict renderer for the subset of Go templates (with Helm's functions) that Baton's
chart uses, so the chart can be rendered and checked without the helm binary.

Strict where Helm is lenient: a reference to a key missing from values.yaml, an unknown function
or an unknown action is an error, so a typo in a template fails the test instead of rendering
"<no value>". Supported: ``{{ pipeline }}``, ``{{- -}}`` trimming, ``{{/* comments */}}``,
``if / else if / else``, ``with / else``, ``range`` (``range $k, $v := map``), ``define`` and
``include``, and the functions default, quote, printf, trunc, trimSuffix, toYaml, indent, nindent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


class TemplateError(Exception):
    pass


@dataclass
class Node:
    kind: str  # text | action | if | with | range | define
    text: str = ""
    branches: list[tuple[str, list[Node]]] = field(default_factory=list)  # (pipeline, body)
    otherwise: list[Node] = field(default_factory=list)


def _lex(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        code = match.group(2).strip()
        if not (code.startswith("/*") and code.endswith("*/")):
            tokens.append(("action", code))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = source[pos:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _parse(tokens: list[tuple[str, str]]) -> tuple[list[Node], dict[str, list[Node]]]:
    defines: dict[str, list[Node]] = {}
    stream = iter(tokens)

    def block(closers: tuple[str, ...]) -> tuple[list[Node], str]:
        body: list[Node] = []
        for kind, value in stream:
            if kind == "text":
                if value:
                    body.append(Node("text", text=value))
                continue
            word = value.split(None, 1)[0] if value else ""
            rest = value[len(word) :].strip()
            if word in closers or (word == "else" and "else" in closers):
                return body, value
            if word in ("if", "with"):
                node = Node(word)
                condition = rest
                while True:
                    inner, closer = block(("end", "else"))
                    node.branches.append((condition, inner))
                    if closer == "end":
                        break
                    after_else = closer[4:].strip()
                    if word == "if" and after_else.startswith("if "):
                        condition = after_else[3:].strip()
                        continue
                    node.otherwise, _ = block(("end",))
                    break
                body.append(node)
            elif word == "range":
                inner, closer = block(("end",))
                body.append(Node("range", branches=[(rest, inner)]))
            elif word == "define":
                inner, _ = block(("end",))
                defines[json.loads(rest)] = inner
            elif word in ("end", "else", "template", "block"):
                raise TemplateError(f"unexpected {{{{ {value} }}}}")
            else:
                body.append(Node("action", text=value))
        if closers:
            raise TemplateError(f"missing {{{{ end }}}} (expected one of {closers})")
        return body, ""

    nodes, _ = block(())
    return nodes, defines


def _split(code: str, sep: str | None) -> list[str]:
    """Split on `sep` (None: whitespace) outside quotes and parentheses."""
    parts, current, depth, quote = [], "", 0, False
    for char in code:
        if quote:
            current += char
            if char == '"' and not current.endswith('\\"'):
                quote = False
            continue
        if char == '"':
            quote = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if depth == 0 and (char == sep or (sep is None and char.isspace())):
            if current.strip() or sep is not None:
                parts.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, (list, dict)) and not value)


def to_text(value: Any) -> str:
    if value is None:
        raise TemplateError("a template printed a missing value")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError(f"a template printed a structure without toYaml: {value!r}")
    return str(value)


def _indent(width: int, text: str) -> str:
    pad = " " * int(width)
    return "\n".join(pad + line if line else line for line in str(text).split("\n"))


class Chart:
    """A chart directory, rendered with its values.yaml merged with overrides."""

    def __init__(self, path: Path) -> None:
        self.path = path
        meta = yaml.safe_load((path / "Chart.yaml").read_text())
        self.chart = {key[0].upper() + key[1:]: value for key, value in meta.items()}
        self.values = yaml.safe_load((path / "values.yaml").read_text())
        self.templates: dict[str, list[Node]] = {}
        self.defines: dict[str, list[Node]] = {}
        for template in sorted((path / "templates").iterdir()):
            nodes, defines = _parse(_lex(template.read_text()))
            self.defines.update(defines)
            if template.suffix == ".yaml":
                self.templates[template.name] = nodes
        self.functions: dict[str, Callable[..., Any]] = {
            "include": lambda name, dot: self._run(self.defines[name], dot, {"$": dot}),
            "default": lambda fallback, value=None: value if truthy(value) else fallback,
            "quote": lambda value: json.dumps(to_text(value)),
            "printf": lambda fmt, *args: re.sub(r"%[sdv]", "%s", fmt) % tuple(args),
            "trunc": lambda n, text: str(text)[: int(n)],
            "trimSuffix": lambda suffix, text: (
                text[: -len(suffix)] if suffix and text.endswith(suffix) else text
            ),
            "toYaml": lambda value: (
                yaml.safe_dump(value, default_flow_style=False, sort_keys=False)
                .rstrip("\n")
                .removesuffix("\n...")
            ),
            "indent": _indent,
            "nindent": lambda width, text: "\n" + _indent(width, text),
        }

    def render(self, overrides: dict[str, Any] | None = None) -> dict[str, str]:
        values = _merge(self.values, overrides or {})
        dot = {
            "Values": values,
            "Chart": self.chart,
            "Release": {"Name": "rel", "Namespace": "default", "Service": "Helm"},
        }
        return {name: self._run(nodes, dot, {"$": dot}) for name, nodes in self.templates.items()}

    def documents(self, overrides: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        for name, text in self.render(overrides).items():
            try:
                for document in yaml.safe_load_all(text):
                    if document is not None:
                        yield document
            except yaml.YAMLError as exc:
                raise TemplateError(f"{name} is not valid YAML once rendered: {exc}") from exc

    # --- evaluation ---------------------------------------------------------------------------

    def _run(self, nodes: list[Node], dot: Any, variables: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                out.append(to_text(self._pipeline(node.text, dot, variables)))
            elif node.kind in ("if", "with"):
                for condition, body in node.branches:
                    value = self._pipeline(condition, dot, variables)
                    if truthy(value):
                        out.append(
                            self._run(body, value if node.kind == "with" else dot, variables)
                        )
                        break
                else:
                    out.append(self._run(node.otherwise, dot, variables))
            elif node.kind == "range":
                spec, body = node.branches[0]
                names: list[str] = []
                if ":=" in spec:
                    left, spec = spec.split(":=", 1)
                    names = [n.strip() for n in left.split(",")]
                collection = self._pipeline(spec.strip(), dot, variables)
                items = (
                    sorted(collection.items())
                    if isinstance(collection, dict)
                    else list(enumerate(collection or []))
                )
                for key, item in items:
                    scope = dict(variables)
                    if len(names) == 2:
                        scope[names[0]], scope[names[1]] = key, item
                    elif len(names) == 1:
                        scope[names[0]] = item
                    out.append(self._run(body, item, scope))
        return "".join(out)

    def _pipeline(self, code: str, dot: Any, variables: dict[str, Any]) -> Any:
        commands = _split(code, "|")
        value: Any = None
        for index, command in enumerate(commands):
            words = _split(command, None)
            if words[0] in self.functions:
                args = [self._term(word, dot, variables) for word in words[1:]]
                if index > 0:
                    args.append(value)
                value = self.functions[words[0]](*args)
            elif len(words) == 1 and index == 0:
                value = self._term(words[0], dot, variables)
            else:
                raise TemplateError(f"unknown function or command {words[0]!r} in {code!r}")
        return value

    def _term(self, word: str, dot: Any, variables: dict[str, Any]) -> Any:
        if word.startswith("("):
            return self._pipeline(word[1:-1], dot, variables)
        if word.startswith('"'):
            return json.loads(word)
        if re.fullmatch(r"-?\d+", word):
            return int(word)
        if word in ("true", "false"):
            return word == "true"
        if word == ".":
            return dot
        if word.startswith("$"):
            name, _, path = word.partition(".")
            if name not in variables:
                raise TemplateError(f"undefined variable {name}")
            return _lookup(variables[name], path, word)
        if word.startswith("."):
            return _lookup(dot, word[1:], word)
        raise TemplateError(f"cannot read {word!r}")


def _lookup(value: Any, path: str, word: str) -> Any:
    for key in filter(None, path.split(".")):
        if not isinstance(value, dict) or key not in value:
            raise TemplateError(f"{word}: no key {key!r} (missing from values.yaml?)")
        value = value[key]
    return value


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
