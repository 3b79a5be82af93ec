"""Sign in with GitLab / GitHub (django-allauth), next to local accounts.

- A forge account already linked to a Baton user (by an admin, by e-mail, or by an earlier
  sign-in) signs in as that user; else the one active user with the e-mail the forge verified;
  else a new user (``BATON_SIGNIN_SIGNUP``), who has no grants but those of their forge groups.
- Once signed in, the account is the user's identity on that forge (``bots.signin.link``), with
  the verified e-mail and the groups / teams read with the person's token. The token is used for
  that and dropped: allauth does not store it (``SOCIALACCOUNT_STORE_TOKENS = False``) and Baton
  never logs or shows it.
- allauth checks the OAuth ``state`` against the session and only redirects to this site's own
  URLs after sign-in (``next`` is checked against ``ALLOWED_HOSTS``).
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.signals import user_logged_in
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.signals import social_account_added
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest

from bots import signin
from bots.forges import signin as forge_signin
from bots.forges.base import ForgeError

log = logging.getLogger(__name__)


def _root_url(kind: str) -> str:
    config = settings.SOCIALACCOUNT_PROVIDERS.get(kind, {})
    return str(config.get("GITLAB_URL" if kind == "gitlab" else "GITHUB_URL", "") or "")


def _account(sociallogin: SocialLogin) -> tuple[str, str, str]:
    """(provider kind, username there, account id there)."""
    account = sociallogin.account
    data = account.extra_data or {}
    name = data.get("username") if account.provider == "gitlab" else data.get("login")
    return account.provider, str(name or ""), str(account.uid or "")


def verified_email(sociallogin: SocialLogin) -> str:
    """The e-mail address the forge says it verified ('' if none)."""
    if sociallogin.account.provider == "gitlab":
        return forge_signin.gitlab_verified_email(sociallogin.account.extra_data or {})
    verified = [a for a in sociallogin.email_addresses if a.verified]
    verified.sort(key=lambda a: not a.primary)
    email = verified[0].email if verified else ""
    return email if len(email) <= forge_signin.MAX_EMAIL else ""


def _groups(kind: str, token: str) -> list[str] | None:
    """The person's groups / teams, read with their token (None: could not be read)."""
    try:
        if kind == "gitlab":
            return forge_signin.gitlab_groups(_root_url(kind) or "https://gitlab.com", token)
        return forge_signin.github_teams(forge_signin.github_api_url(_root_url(kind)), token)
    except ForgeError as exc:
        log.warning("sign-in with %s: %s; no group grants until the next sign-in", kind, exc)
        return None


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return bool(settings.BATON_SIGNIN_SIGNUP)

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """A forge account seen for the first time signs in as the Baton user it is already
        linked to, or as the one user with the e-mail address the forge verified."""
        if sociallogin.is_existing or sociallogin.state.get("process") == "connect":
            return
        kind, username, remote_id = _account(sociallogin)
        forge = signin.forge_of(kind, _root_url(kind))
        user = signin.user_of(forge, username, remote_id) if forge is not None else None
        email = verified_email(sociallogin)
        sociallogin.baton_verified_email = email  # type: ignore[attr-defined]
        if user is None:
            user = signin.user_with_email(email)
        if user is not None:
            sociallogin.connect(request, user)
            return
        # A new user: the forge's e-mail addresses, but none another user has (an
        # administrator, never matched by e-mail), so that the sign-up goes on.
        if signin.email_taken(sociallogin.user.email or ""):
            sociallogin.user.email = ""
        sociallogin.email_addresses = [
            a for a in sociallogin.email_addresses if not signin.email_taken(a.email)
        ]


def record(request: HttpRequest | None, sociallogin: SocialLogin, user: Any) -> None:
    """Link the forge account to ``user``, with its e-mail and groups."""
    kind, username, remote_id = _account(sociallogin)
    forge = signin.forge_of(kind, _root_url(kind))
    if forge is None:
        log.warning("sign-in with %s: no forge of Baton's is that %s; not linked", kind, kind)
        return
    token = sociallogin.token.token if sociallogin.token is not None else ""
    groups = _groups(kind, token) if token else None
    identity = signin.link(
        forge,
        user,
        username=username,
        remote_id=remote_id,
        email=getattr(sociallogin, "baton_verified_email", None) or verified_email(sociallogin),
        groups=groups,
    )
    if identity is not None and request is not None and groups is None:
        messages.warning(
            request,
            f"Signed in, but {forge.name} did not tell your groups: grants to them do not "
            "count for you until you sign in again.",
        )


def _on_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is not None:
        record(request, sociallogin, user)


def _on_connect(sender: Any, request: HttpRequest, sociallogin: SocialLogin, **kwargs: Any) -> None:
    if sociallogin.state.get("process") == "connect":
        record(request, sociallogin, sociallogin.user)


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="baton-signin-login")
    social_account_added.connect(_on_connect, dispatch_uid="baton-signin-connect")


def providers() -> list[dict[str, str]]:
    """The sign-in buttons to show: each configured forge's id and name."""
    names = {"gitlab": "GitLab", "github": "GitHub"}
    return [
        {"id": kind, "name": names[kind]}
        for kind in ("gitlab", "github")
        if kind in settings.SOCIALACCOUNT_PROVIDERS
    ]
