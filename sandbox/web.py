"""HTTP plumbing shared by every API module: request, response, routing, parameters, paging."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

JSON_TYPE = "application/json"


@dataclass
class Request:
    method: str
    path: str  # raw (still percent-encoded) path, without the query string
    query_string: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    query: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.query = nest(parse_qsl(self.query_string, keep_blank_values=True))
        self.form = parse_body(self.body, self.headers.get("content-type", ""))

    @property
    def params(self) -> dict[str, Any]:
        """Query string, then form or JSON body (the body wins)."""
        return {**self.query, **self.form}

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def host_url(self) -> str:
        return "http://" + (self.header("host") or "127.0.0.1")

    def json_body(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else {}
        except ValueError:
            raise ApiError(400, {"error": "body is not valid JSON"}) from None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)  # extra fields for the request log

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> Response:
        return cls(status, json.dumps(data).encode(), JSON_TYPE, dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, b"", JSON_TYPE)


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> Response:
        return Response.json(self.body, self.status, self.headers)


Handler = Callable[..., Response]


class Router:
    """Regex routes on the raw path; named groups become keyword arguments (still encoded).

    ``<name>`` matches one path segment, ``<name:path>`` the rest of the path (slashes included).
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"<(\w+):path>", r"(?P<\1>.*)", pattern)
        regex = re.sub(r"(?<!\?P)<(\w+)>", r"(?P<\1>[^/]+)", regex)
        self.routes.append((method, re.compile(f"^{re.escape(self.prefix)}{regex}/?$"), handler))

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefix)

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, regex, handler in self.routes:
            m = regex.match(request.path)
            if m is None:
                continue
            allowed = True
            if method == request.method or (method == "GET" and request.method == "HEAD"):
                return handler(request, **m.groupdict())
        if allowed:
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        raise ApiError(404, {"error": "404 Not Found"})


# -- parameters ----------------------------------------------------------------------------------


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    if not body.strip():
        return {}
    if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError(400, {"error": "body is not valid JSON"}) from None
        return data if isinstance(data, dict) else {"_": data}
    if "multipart" in content_type:
        return {}
    return nest(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Bracketed form keys to nested data.

    ``a[0][key]=x&a[0][value]=y&b[K]=v&c[]=1&c[]=2`` →
    ``{a: [{key: x, value: y}], b: {K: v}, c: [1, 2]}``.
    """
    root: dict[str, Any] = {}
    for name, value in pairs:
        m = _KEY.match(name)
        if not m or not m.group(2):
            root[name] = value
            continue
        parts = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_list = not last and parts[i + 1] == ""
            if isinstance(node, list):  # only reached for "[]" parts
                if last:
                    node.append(value)
                else:
                    node.append({} if not nxt_is_list else [])
                    node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
        return value
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- pagination ----------------------------------------------------------------------------------


def paginate(request: Request, items: list[Any]) -> Response:
    """GitLab offset pagination: ``page``/``per_page`` plus ``x-*`` and ``Link`` headers."""
    per_page = min(max(as_int(request.query.get("per_page"), 20), 1), 100)
    page = max(as_int(request.query.get("page"), 1), 1)
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def link(n: int) -> str:
        q = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)
             if k not in ("page", "per_page")]
        q += [("page", str(n)), ("per_page", str(per_page))]
        return f"{request.host_url}{request.path}?{urlencode(q)}"

    links = []
    if page > 1:
        links.append(f'<{link(page - 1)}>; rel="prev"')
    if page < pages:
        links.append(f'<{link(page + 1)}>; rel="next"')
    links.append(f'<{link(1)}>; rel="first"')
    links.append(f'<{link(pages)}>; rel="last"')
    headers = {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-total": str(total),
        "x-total-pages": str(pages),
        "x-next-page": str(page + 1) if page < pages else "",
        "x-prev-page": str(page - 1) if page > 1 else "",
        "Link": ", ".join(links),
    }
    return Response.json(chunk, 200, headers)
