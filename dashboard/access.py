"""Who may see and who may act: anonymous users are sent to sign in; everything else is the
one permission policy (``chains.policy``), which says why not in words."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from bots import services
from chains import policy
from chains.models import Chain, Grant, Repository, Run, Team

View = Callable[..., HttpResponse]


def _login_url(request: HttpRequest) -> str:
    htmx = getattr(request, "htmx", None)
    here = htmx.current_url_abs_path if htmx else None
    return f"{reverse('login')}?{urlencode({'next': here or request.get_full_path()})}"


def viewer_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(_login_url(request))
            return HttpResponseRedirect(_login_url(request))
        return view(request, *args, **kwargs)

    return wrapper


def refusal(user: Any, action: str, repository: Repository) -> str:
    """Why ``user`` may not do ``action`` on ``repository`` ("" when they may)."""
    verdict = policy.user_may(user, action, repository)
    return "" if verdict else f"You may not {action} here: {verdict.reason}."


def may_view(user: Any, repository: Repository) -> bool:
    return bool(policy.user_may(user, "view", repository))


def visible_ids(user: Any, repositories: list[Repository]) -> set[int]:
    return policy.visible(user, repositories)


def visible_filter(user: Any) -> frozenset[int] | None:
    """The repositories whose chains ``user`` may see (None: all of them)."""
    return policy.visible_repository_ids(user)


# --- what the reader may view, remembered for the polls ------------------------------------------
#
# An unchanged poll answers with two queries (the session, the cursor): it may not spend three
# more on the user, the repositories and the grants. So a page remembers, per process, what the
# policy said the session's user may view, and a poll's cursor is computed over that answer for
# at most SCOPE_SECONDS. A poll only ever says "unchanged" (204/304) or runs the view, which asks
# the policy afresh; a change of grants, teams, repositories or users empties the memory of the
# process that made it at once, and every other process's within SCOPE_SECONDS.

SCOPE_SECONDS = 5.0
SCOPE_ENTRIES = 10_000  # at most this many sessions' users remembered per process
_scopes: dict[tuple[str, str], tuple[float, frozenset[int] | None]] = {}


def _scope_key(request: HttpRequest) -> tuple[str, str] | None:
    session = getattr(request, "session", None)
    user_id = session.get(SESSION_KEY) if session is not None else None
    if not user_id:
        return None
    return str(user_id), str(session.get(HASH_SESSION_KEY, "")) if session is not None else ""


def scope(request: HttpRequest) -> frozenset[int] | None:
    """The repositories whose chains the reader may see (None: all of them). A poll's cursor
    (``request.polling``, set by ``dashboard.live.polled``) may use the answer a page of the same
    session's user got at most SCOPE_SECONDS ago; everything else asks the policy and remembers
    its answer."""
    key = _scope_key(request)
    if key is not None and getattr(request, "polling", False):
        known = _scopes.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
    answer = visible_filter(request.user)
    if key is not None:
        if len(_scopes) >= SCOPE_ENTRIES:
            _scopes.clear()
        _scopes[key] = (time.monotonic() + SCOPE_SECONDS, answer)
    return answer


def forget_scopes(*args: object, **kwargs: object) -> None:
    """Who may view what may have changed: every remembered answer is dropped."""
    _scopes.clear()


for _model in (Grant, Repository, Team, settings.AUTH_USER_MODEL):
    post_save.connect(forget_scopes, sender=_model, dispatch_uid=f"scope-save-{_model}")
    post_delete.connect(forget_scopes, sender=_model, dispatch_uid=f"scope-delete-{_model}")
m2m_changed.connect(forget_scopes, sender=Team.members.through, dispatch_uid="scope-members")


def decide(request: HttpRequest, verb: str, target: Run | Chain) -> HttpResponse | None:
    """The policy's verdict on ``verb``: None when the user may, else a 403 notice in its words.
    (The surface answers 404 before this for an object the user may not view.)"""
    verdict = policy.decide(policy.principal_for(request.user), verb, target)
    if verdict:
        return None
    return notice(request, f"You may not do that: {verdict.reason}.", status=403)


def notice(
    request: HttpRequest, message: str, *, status: int, level: str = "error"
) -> HttpResponse:
    """A message in words; htmx puts it in the page's notice area instead of the target."""
    response = render(
        request, "dashboard/_notice.html", {"message": message, "level": level}, status=status
    )
    if getattr(request, "htmx", False):
        response = reswap(retarget(response, "#notice"), "innerHTML")
    return response


def actor(request: HttpRequest) -> services.Actor:
    user = request.user
    return services.Actor(
        user.get_username(), "dashboard", user=user, remote_addr=request.META.get("REMOTE_ADDR")
    )
