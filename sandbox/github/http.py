"""HTTP conventions of GitHub's REST API: error bodies, token parsing, ETags and Link pagination."""

from __future__ import annotations

import hashlib
import math
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.web import ApiError, Request, Response, as_int

DOCS = "https://docs.github.com/rest"


def error(status: int, message: str, **extra: Any) -> ApiError:
    return ApiError(status, {"message": message, "documentation_url": DOCS, "status": str(status),
                             **extra})


def not_found() -> ApiError:
    return error(404, "Not Found")


def validation_failed(message: str, resource: str = "Resource", field: str = "data") -> ApiError:
    return error(422, "Validation Failed", errors=[
        {"resource": resource, "code": "custom", "field": field, "message": message}])


def token_of(request: Request) -> str:
    """``Authorization: token X`` / ``Bearer X`` / ``Basic …`` → the credential ('' if none)."""
    value = request.header("authorization").strip()
    scheme, _, credential = value.partition(" ")
    if scheme.lower() in ("token", "bearer", "basic") and credential.strip():
        return credential.strip()
    return ""


def etag_of(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest() + '"'


def matches_etag(request: Request, etag: str) -> bool:
    wanted = request.header("if-none-match")
    if not wanted:
        return False
    bare = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == bare
               for tag in wanted.split(","))


def paginate(request: Request, items: list[Any], wrap: str | None = None) -> Response:
    """GitHub pagination: ``per_page`` (default 30, max 100), ``page``, ``Link`` header with
    ``prev``/``next``/``last``/``first``; ``wrap`` puts the page under that key beside
    ``total_count`` (``{"total_count": N, "workflow_runs": [...]}``)."""
    per_page = min(max(as_int(request.query.get("per_page"), 30), 1), 100)
    page = max(as_int(request.query.get("page"), 1), 1)
    pages = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(n: int) -> str:
        q = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)
             if k != "page"]
        return f"{request.host_url}{request.path}?{urlencode([*q, ('page', str(n))])}"

    links = []
    if page > 1:
        links.append(f'<{link(page - 1)}>; rel="prev"')
    if page < pages:
        links += [f'<{link(page + 1)}>; rel="next"', f'<{link(pages)}>; rel="last"']
    if page > 1:
        links.append(f'<{link(1)}>; rel="first"')
    headers = {"Link": ", ".join(links)} if links else {}
    body: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
    return Response.json(body, 200, headers)
