"""Cheap polling. A live part carries the cursor of what it shows (``?since=<version>``); a poll
whose cursor is still current gets 204 (htmx swaps nothing), and a request whose
``If-None-Match`` matches gets 304. Both are answered with two queries (the session and the
version) and no rendering. A finished chain answers 286: htmx stops polling."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_cache_control, patch_vary_headers
from django_htmx.http import HttpResponseStopPolling

from dashboard.access import View

Version = Callable[..., str]
POLL_EVERY = "every 1s"  # paused while the tab is hidden: static/js/app.js


def polled(version: Version) -> Callable[[View], View]:
    """Answer unchanged polls before the view runs; hand the version to the view otherwise."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            since = request.GET.get("since")
            tags = request.headers.get("If-None-Match", "")
            # A session that holds a signed-in user (one query); the full check of the user
            # happens in the view, which runs whenever there is anything new to show.
            if (since or tags) and request.session.get(SESSION_KEY):
                request.polling = True  # type: ignore[attr-defined]  # dashboard.access.scope
                try:
                    current = version(request, *args, **kwargs)
                finally:
                    request.polling = False  # type: ignore[attr-defined]
                if since == current:
                    return HttpResponse(status=204)
                if f'"{current}"' in [t.strip().removeprefix("W/") for t in tags.split(",")]:
                    response = HttpResponseNotModified()
                    response["ETag"] = f'"{current}"'
                    return response
                request.poll_version = current  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def current_version(request: HttpRequest, version: Version, *args: Any) -> str:
    """The version the decorator computed, or compute it now (before reading the data)."""
    known = getattr(request, "poll_version", None)
    return known if known is not None else version(request, *args)


def poll_url(path: str, params: Any, version: str) -> str:
    """``path`` with the current query and the cursor of what is being shown."""
    query = {key: value for key, value in params.items() if key != "since" and value}
    return f"{path}?{urlencode(sorted({**query, 'since': version}.items()))}"


def partial(request: HttpRequest) -> bool:
    """An htmx request for a part of the page (not a boosted link, not a history restore)."""
    htmx = getattr(request, "htmx", None)
    if not htmx:
        return False
    return not htmx.boosted and not htmx.history_restore_request


def finish(response: HttpResponse, version: str, *, stop: bool = False) -> HttpResponse:
    """Tag a partial with its version; 286 when what it shows can no longer change."""
    if stop:
        stopped = HttpResponseStopPolling(response.content)
        for header, value in response.items():
            stopped[header] = value
        response = stopped
    response["ETag"] = f'"{version}"'
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["HX-Request", "Cookie"])
    return response
