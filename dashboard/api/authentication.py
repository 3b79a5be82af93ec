"""``Authorization: Token <secret>``: django-rest-knox's hashed, expiring tokens, looked up with
one query per request.

Knox deletes every expired token of the user on each request (one more query each time); here an
expired token is refused and deleted when it is used, and the others wait until they are used or
an admin revokes them (the admin shows them as expired).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.signals import token_expired


class HashedTokenAuthentication(TokenAuthentication):
    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=type(self), username=username, source="auth_token")
            return True
        return False


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of these tokens (drf-spectacular)."""

    target_class = "dashboard.api.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <secret>`: make one with `manage.py create_api_token <user>`",
        }
