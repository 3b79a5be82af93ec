"""Repositories Baton knows and the admin-defined rules (targets in the .baton.yml schema)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains.config import ConfigError
from chains.models import Repository, Rule
from chains.rule_secrets import seal
from console.trail import AuditedAdmin, log_saved, snapshot


@admin.register(Repository)
class RepositoryAdmin(AuditedAdmin):
    list_display = ["path", "forge", "visibility", "default_branch", "remote_id"]
    list_filter = ["forge", "visibility"]
    search_fields = ["path", "remote_id"]
    actions = ["check_on_forge"]
    fieldsets = [
        (None, {"fields": ["forge", "path", "visibility"]}),
        (
            "As the forge has it",
            {
                "fields": ["remote_id", "default_branch", "web_url"],
                "description": "Filled in by Baton when it first meets the project, or by the "
                "“Check on the forge” action of the list.",
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Repository]:
        # Staff who are not administrators see the repositories the policy lets them view.
        return Repository.objects.visible_to(request.user).select_related("forge")

    @admin.action(description="Check on the forge (fill in id, default branch, URL)")
    def check_on_forge(self, request: HttpRequest, queryset: QuerySet[Repository]) -> None:
        for repository in queryset.select_related("forge"):
            try:
                remote = forge_for(repository.forge).get_project(repository.path)
            except ForgeError as exc:
                messages.error(request, f"{repository}: {exc.message}")
                continue
            before = snapshot(repository)
            repository.remote_id = remote.id
            repository.default_branch = remote.default_branch
            repository.web_url = remote.web_url
            repository.save(update_fields=["remote_id", "default_branch", "web_url"])
            log_saved(request, repository, before, via="check on the forge")
            messages.success(
                request, f"{repository}: found, default branch {remote.default_branch}."
            )


class RuleForm(forms.ModelForm):
    """Masked values are write-only: the config shows •••• in their place, and •••• left as it
    is keeps the value stored for that variable (encrypted, in ``Rule.secrets``)."""

    class Meta:
        model = Rule
        fields = ["name", "projects", "enabled", "position", "config"]
        widgets = {
            "config": forms.Textarea(
                attrs={"rows": 18, "cols": 90, "spellcheck": "false", "class": "baton-code"}
            ),
        }
        help_texts = {
            "projects": "Glob over project paths, e.g. acme/* or acme/**; * for all.",
            "config": "The .baton.yml schema (docs/baton-yml.md), checked when you save: an "
            "error names the line and the field. Rules add their targets after the project's "
            "own file; a target with the same key replaces the file's. The rule's variables "
            "reach only the targets it names. A masked value ({value: …, masked: true}) is "
            "stored encrypted and shows as ••••; leave •••• to keep it, or type a new one.",
            "position": "Rules apply lowest position first.",
        }

    def clean_config(self) -> str:
        text = str(self.cleaned_data.get("config") or "")
        try:
            sealed, secrets = seal(
                text,
                dict(self.instance.secrets or {}),
                before=self.instance.config if self.instance.pk else None,
                moved=self.instance.pk is not None
                and self.cleaned_data.get("projects") != self.instance.projects,
            )
        except ConfigError as exc:
            raise forms.ValidationError(str(exc)) from None
        self.instance.secrets = secrets
        return sealed


@admin.register(Rule)
class RuleAdmin(AuditedAdmin):
    form = RuleForm
    list_display = ["name", "projects", "enabled", "position"]
    list_editable = ["enabled", "position"]
    list_filter = ["enabled"]
    search_fields = ["name", "projects", "config"]
