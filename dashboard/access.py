"""Who may see and who may act: anonymous users are sent to sign in; everything else is the
one permission policy (``chains.policy``), which says why not in words."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from bots import services
from chains import policy
from chains.models import Chain, Repository, Run

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
