"""Who signed in with a forge: the Forge row their account lives on, the Baton user it belongs
to, and the link (`Identity`) with their verified e-mail and group / team memberships.

Signing in with a forge proves the account is the person's, so it becomes their identity there:
comment commands and webhooks of that account act for them from then on.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from chains import audit
from chains.models import Forge, ForgeMembership, Identity

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def forge_of(kind: str, root_url: str) -> Forge | None:
    """The forge a sign-in provider's accounts live on: the one a setting names, else the one
    forge of that kind on the provider's host (None when there is not exactly one)."""
    slug = settings.BATON_SIGNIN_FORGES.get(kind)
    if slug:
        return Forge.objects.filter(slug=slug, kind=kind).first()
    forges = list(Forge.objects.filter(kind=kind))
    if root_url:
        forges = [f for f in forges if _origin(f.api_url) == _origin(root_url)]
    else:  # github.com
        forges = [f for f in forges if _origin(f.api_url)[1] in ("github.com", "api.github.com")]
    return forges[0] if len(forges) == 1 else None


def user_of(forge: Forge, username: str, remote_id: str) -> Any:
    """The Baton user a forge account is already linked to (by its id there, else by its name
    when the link does not know another id), or None."""
    identity = None
    if remote_id:
        identity = Identity.objects.filter(forge=forge, remote_id=remote_id).first()
    if identity is None:
        identity = Identity.objects.filter(forge=forge, username__iexact=username).first()
        if identity is not None and identity.remote_id and identity.remote_id != remote_id:
            return None  # that name belonged to another account there
    return identity.user if identity is not None and identity.user.is_active else None


def user_with_email(email: str) -> Any:
    """The one active Baton user with this (forge-verified) e-mail address, or None. Never an
    administrator or staff member: their forge accounts are linked by an admin, not by e-mail."""
    if not email:
        return None
    users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(users) != 1 or users[0].is_superuser or users[0].is_staff:
        return None
    return users[0]


def email_taken(email: str) -> bool:
    return bool(email) and get_user_model().objects.filter(email__iexact=email).exists()


@transaction.atomic
def link(
    forge: Forge,
    user: Any,
    *,
    username: str,
    remote_id: str,
    email: str,
    groups: list[str] | None,
) -> Identity | None:
    """Make ``username`` on ``forge`` the identity of ``user``, with the e-mail and the groups
    read at sign-in (``groups`` None: they could not be read, so none count)."""
    if not USERNAME.fullmatch(username or ""):
        log.warning("sign-in: %s gave an unusable username; not linked", forge.slug)
        return None
    remote_id = remote_id[:64]
    identity = Identity.objects.select_for_update().filter(forge=forge, remote_id=remote_id).first()
    same_name = (
        Identity.objects.select_for_update().filter(forge=forge, username__iexact=username).first()
    )
    if same_name is not None and identity is not None and same_name.pk != identity.pk:
        # The account was renamed to a name a stale link still holds: the forge's word wins.
        same_name.delete()
    identity = identity or same_name
    before = (
        {"user": identity.user.get_username(), "username": identity.username} if identity else None
    )
    if identity is None:
        identity = Identity(forge=forge)
    identity.username = username
    identity.remote_id = remote_id
    identity.user = user
    identity.linked_by = Identity.Link.SIGNIN
    identity.email = email
    identity.groups_read_at = timezone.now() if groups is not None else None
    identity.save()
    identity.memberships.all().delete()
    ForgeMembership.objects.bulk_create(
        [ForgeMembership(identity=identity, name=name) for name in groups or []]
    )
    after = {"user": user.get_username(), "username": username, "by": "sign-in"}
    if before != {k: after[k] for k in ("user", "username")}:
        audit.record(
            "identity.link",
            actor=user.get_username(),
            user=user,
            surface="dashboard",
            target=f"{username} on {forge.name}",
            before=before,
            after=after,
        )
    return identity
