"""Quarantined target projects (chains/quarantine.py): an administrator, or a staff member whose
grant gives `quarantine` on the project, marks a known-flaky downstream with a reason and an
expiry; until then its failures are soft failures, shown as ``quarantined: <reason>``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from chains import policy
from chains.models import Quarantine, Repository
from console.trail import AuditedAdmin

MAX_DAYS = 90


def _may(request: HttpRequest, repository: Repository | None = None) -> bool:
    user = request.user
    if getattr(user, "is_superuser", False):
        return True
    if repository is not None:
        return bool(policy.user_may(user, "quarantine", repository))
    return any(
        "quarantine" in (g.actions or []) or "admin" in (g.actions or [])
        for g in policy.grants_of(user)
    )


class QuarantineForm(forms.ModelForm):
    class Meta:
        model = Quarantine
        fields = ["repository", "reason", "expires_at"]
        help_texts = {
            "reason": "Shown wherever the project's runs are: “quarantined: <reason>”.",
            "expires_at": f"Within {MAX_DAYS} days; its failures count again after this.",
        }

    def clean_reason(self) -> str:
        reason = " ".join(str(self.cleaned_data.get("reason") or "").split())
        if not reason:
            raise forms.ValidationError("Say why the project is quarantined.")
        return reason

    def clean_expires_at(self) -> Any:
        when = self.cleaned_data.get("expires_at")
        now = timezone.now()
        if when is None or when <= now:
            raise forms.ValidationError("Pick a time in the future.")
        if when > now + timedelta(days=MAX_DAYS):
            raise forms.ValidationError(f"At most {MAX_DAYS} days ahead.")
        return when


@admin.register(Quarantine)
class QuarantineAdmin(AuditedAdmin):
    form = QuarantineForm
    list_display = ["repository", "reason", "expires_at", "in_force", "created_by", "created_at"]
    list_filter = ["repository__forge"]
    search_fields = ["repository__path", "reason"]
    readonly_fields = ["created_by", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Quarantine]:
        visible = Repository.objects.visible_to(request.user)
        return super().get_queryset(request).filter(repository__in=visible)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "repository" and not getattr(request.user, "is_superuser", False):
            allowed = [
                r.pk
                for r in Repository.objects.visible_to(request.user)
                if policy.user_may(request.user, "quarantine", r)
            ]
            kwargs["queryset"] = Repository.objects.filter(pk__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True, description="in force")
    def in_force(self, obj: Quarantine) -> bool:
        return obj.expires_at > timezone.now()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_staff", False)) and _may(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self.has_module_permission(request):
            return False
        return obj is None or _may(request, obj.repository)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Quarantine, form: Any, change: bool) -> None:
        if not _may(request, obj.repository):
            raise PermissionDenied("no grant gives quarantine on this project")
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)
