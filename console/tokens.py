"""API tokens (django-rest-knox): who has one, made when, valid until when; revoke them.

A token's secret is shown once, when it is made (``manage.py create_api_token``); the database
keeps only its hash. These pages never show the secret nor its first characters (knox keeps
those to find a token): a token is named by a short reference taken from its hash.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from knox.models import AuthToken

from console.trail import log

if admin.site.is_registered(AuthToken):  # knox's own page lists digests and token keys
    admin.site.unregister(AuthToken)


def reference(token: AuthToken) -> str:
    """A short name for a token, from its hash (not from the secret)."""
    return token.digest[:8]


def describe(token: AuthToken) -> str:
    return f"API token {reference(token)} of {token.user.get_username()}"


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["reference_display", "user", "created", "expiry_display", "state"]
    list_display_links = None  # no page per token: nothing to edit, nothing secret to show
    list_filter = ["created", "expiry"]
    search_fields = ["user__username", "user__email"]
    ordering = ["-created"]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuthToken]:
        return super().get_queryset(request).select_related("user")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)  # its confirmation page would print digests
        return found

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made with `manage.py create_api_token`, which shows the secret once

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Its title would be the token's str(), which carries the digest.
        return redirect("admin:knox_authtoken_changelist")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return redirect("admin:knox_authtoken_changelist")

    @admin.display(description="token")
    def reference_display(self, obj: AuthToken) -> str:
        return reference(obj)

    @admin.display(description="valid until", ordering="expiry")
    def expiry_display(self, obj: AuthToken) -> str:
        return obj.expiry.strftime("%Y-%m-%d %H:%M:%S UTC") if obj.expiry else "until revoked"

    @admin.display(description="state")
    def state(self, obj: AuthToken) -> str:
        return "expired" if obj.expiry and obj.expiry < timezone.now() else "valid"

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        count = 0
        for token in queryset.select_related("user"):
            what = describe(token)
            owner = token.user
            token.delete()
            log(
                request,
                "api_token.revoke",
                target=what,
                detail={"user": owner.get_username(), "user_id": owner.pk},
            )
            count += 1
        self.message_user(
            request,
            f"Revoked {count} token{'s' if count != 1 else ''}; they no longer work.",
            messages.SUCCESS,
        )
