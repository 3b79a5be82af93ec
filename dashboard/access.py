"""Who may see and who may act, until the permissions issue lands: signed-in users may view,
signed-in staff may act, anonymous users are sent to sign in."""

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

View = Callable[..., HttpResponse]

READ_ONLY = (
    "Your account can view chains but not act on them. Ask a Baton admin to make it staff "
    "to retry or cancel."
)


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


def can_act(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


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


def staff_required(view: View) -> View:
    @wraps(view)
    @viewer_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_act(request.user):
            return notice(request, READ_ONLY, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def actor(request: HttpRequest) -> services.Actor:
    user = request.user
    return services.Actor(
        user.get_username(), "dashboard", user=user, remote_addr=request.META.get("REMOTE_ADDR")
    )
