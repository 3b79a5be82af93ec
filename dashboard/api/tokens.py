"""API tokens (django-rest-knox): made for a user, stored as a hash, valid until they expire
(``BATON_API_TOKEN_TTL``) or are revoked — from the admin, or all of a user's at once when their
password is set or made unusable (docs/api.md, docs/security.md)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models.signals import pre_save
from knox.models import AuthToken

logger = logging.getLogger(__name__)


def issue(user: AbstractBaseUser, *, days: float | None = None) -> tuple[AuthToken, str]:
    """A new token for ``user``: the stored row and the secret (shown once, never stored).
    Valid ``days`` days (0: until revoked; None: ``BATON_API_TOKEN_TTL``)."""
    if days is None:
        return AuthToken.objects.create(user=user)
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days) if days else None)


def revoke_all(user: AbstractBaseUser) -> int:
    count, _ = AuthToken.objects.filter(user=user).delete()
    return count


def revoke_on_password_change(sender: Any, instance: AbstractBaseUser, **kwargs: Any) -> None:
    """A password set (``set_password``: the admin, the password forms, ``changepassword``) or
    made unusable ends every API token of that user. A hash upgrade at sign-in is not a change
    (Django clears ``_password`` for it)."""
    if instance.pk is None or kwargs.get("raw"):
        return
    changed = getattr(instance, "_password", None) is not None
    if not changed and not instance.has_usable_password():
        stored = type(instance)._default_manager.filter(pk=instance.pk).values("password").first()
        changed = stored is not None and stored["password"] != instance.password
    if changed:
        count = revoke_all(instance)
        if count:
            logger.info(
                "password of %s changed: revoked %d API token(s)", instance.get_username(), count
            )


def connect() -> None:
    from django.contrib.auth import get_user_model

    pre_save.connect(
        revoke_on_password_change,
        sender=get_user_model(),
        dispatch_uid="baton-revoke-api-tokens-on-password-change",
    )
