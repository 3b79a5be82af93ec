from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from chains.models import AuditEvent, Chain, Delivery, Forge, Repository, Rule, Run


class ForgeForm(forms.ModelForm):
    """Secrets are write-only: the form never renders them; leaving a field empty keeps it."""

    token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the current token.",
    )
    webhook_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep it.",
    )

    class Meta:
        model = Forge
        fields = ["name", "slug", "kind", "api_url", "token", "webhook_secret"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("token", "webhook_secret"):
            if not data.get(name):
                if self.instance.pk:
                    data[name] = getattr(self.instance, name)
                else:
                    self.add_error(name, "Required for a new forge.")
        return data


@admin.register(Forge)
class ForgeAdmin(admin.ModelAdmin):
    form = ForgeForm
    list_display = ["name", "slug", "kind", "api_url"]


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["path", "forge", "default_branch"]
    list_filter = ["forge"]
    search_fields = ["path"]


class RunInline(admin.TabularInline):
    model = Run
    fk_name = "chain"
    extra = 0
    fields = ("key", "repository", "ref", "strategy", "status", "attempt", "remote_id", "error")
    readonly_fields = fields
    can_delete = False


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ["pk", "repository", "change_number", "head_sha", "status", "created_at"]
    list_filter = ["status", "forge"]
    inlines = [RunInline]
    readonly_fields = [f.name for f in Chain._meta.fields]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "forge", "event", "outcome", "received_at", "processed_at"]
    list_filter = ["forge", "event", "outcome"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "surface", "action", "target"]
    list_filter = ["surface", "action"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "projects", "enabled", "position"]
    list_editable = ["enabled", "position"]
