"""Who may do what: teams and their members, grants, forge accounts linked to users, and the
user and group pages (audited, since they hold permissions too)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse

from chains.models import Grant, Identity, Team
from console.trail import CHANGED, AuditedAdmin, log, target_of

ACTIONS_HELP = (
    "view: see its chains; trigger: start a chain by hand; retry and cancel: runs and chains; "
    "deploy: runs that deploy to an environment; quarantine: mark the project's failures soft "
    "for a while (a known-flaky downstream); admin: all of these."
)
PROJECTS_HELP = (
    "Glob over project paths: acme/app for one project, acme/* for a group's projects, acme/** "
    "with its subgroups, * for every project."
)


class GrantForm(forms.ModelForm):
    actions = forms.MultipleChoiceField(
        choices=Grant.Action.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=ACTIONS_HELP,
        error_messages={"required": "Tick at least one action."},
    )

    class Meta:
        model = Grant
        fields = ["team", "user", "forge_group", "forge", "projects", "actions"]
        help_texts = {
            "team": "Grant to a team (all its members) …",
            "user": "… or to one person …",
            "forge_group": "… or to a GitLab group (acme/platform) or GitHub team "
            "(acme/release-team) of the forge below: whoever signed in with that forge and "
            "belongs to it. Fill in exactly one of the three.",
            "projects": PROJECTS_HELP,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "forge" in self.fields:
            self.fields["forge"].empty_label = "every forge"  # type: ignore[attr-defined]

    def clean_actions(self) -> list[str]:
        chosen = set(self.cleaned_data.get("actions") or [])
        return [value for value in Grant.Action.values if value in chosen]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "team" in self.fields:
            holders = [data.get("team"), data.get("user"), (data.get("forge_group") or "").strip()]
            if sum(bool(h) for h in holders) != 1:
                raise forms.ValidationError(
                    "Grant to a team, to a user or to a forge group: fill in exactly one."
                )
            if holders[2] and not data.get("forge"):
                raise forms.ValidationError("A forge group's grant names its forge.")
        return data

    def _post_clean(self) -> None:  # type: ignore[misc]  # Django's hook, not in the stubs
        # Grant.clean and the check constraint would say again, in other words, what the form
        # already said: the model checks only a form without errors.
        if self.errors:
            return
        super()._post_clean()  # type: ignore[misc]


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Grant.Action.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        # A JSON list: filtered here rather than in SQL, the same on SQLite and PostgreSQL.
        ids = [pk for pk, actions in queryset.values_list("pk", "actions") if value in actions]
        return queryset.filter(pk__in=ids)


def _who(grant: Grant) -> str:
    if grant.forge_group:
        return f"forge group {grant.forge_group}"
    return f"team {grant.team}" if grant.team_id else f"user {grant.user}"


@admin.register(Grant)
class GrantAdmin(AuditedAdmin):
    form = GrantForm
    list_display = ["who", "projects", "forge_display", "actions_display"]
    list_filter = [
        ("team", admin.RelatedOnlyFieldListFilter),
        ("user", admin.RelatedOnlyFieldListFilter),
        ActionFilter,
        "forge",
    ]
    search_fields = ["projects", "team__name", "user__username", "forge_group"]
    autocomplete_fields = ["team", "user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        return super().get_queryset(request).select_related("team", "user", "forge")

    @admin.display(description="to", ordering="team__name")
    def who(self, obj: Grant) -> str:
        return _who(obj)

    @admin.display(description="forge", ordering="forge__name")
    def forge_display(self, obj: Grant) -> str:
        return str(obj.forge) if obj.forge_id else "every forge"

    @admin.display(description="actions")
    def actions_display(self, obj: Grant) -> str:
        return ", ".join(obj.actions or [])


class TeamGrantForm(GrantForm):
    class Meta(GrantForm.Meta):
        fields = ["forge", "projects", "actions"]


class GrantInline(admin.TabularInline):
    model = Grant
    form = TeamGrantForm
    fk_name = "team"
    extra = 0
    fields = ["projects", "forge", "actions"]
    verbose_name = "grant to this team"
    verbose_name_plural = "grants to this team"


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "member_count", "grants_display"]
    search_fields = ["name", "members__username"]
    filter_horizontal = ["members"]
    inlines = [GrantInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        queryset = super().get_queryset(request).prefetch_related("grants")
        return queryset.annotate(member_total=Count("members", distinct=True))

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        # A grant needs its team saved first: a new team gets its grants on its own page.
        return [GrantInline] if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        note = "" if obj else " Save the team (“Save and continue editing”) to add its grants."
        return [
            (
                None,
                {
                    "fields": ["name", "members"],
                    "description": "Members get every grant of the team. Pick Baton users "
                    "on the left and move them right." + note,
                },
            )
        ]

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: Team) -> int:
        return getattr(obj, "member_total", 0)

    @admin.display(description="grants")
    def grants_display(self, obj: Team) -> str:
        grants = list(obj.grants.all())
        return "; ".join(f"{', '.join(g.actions)} on {g.projects}" for g in grants) or "none"


class IdentityForm(forms.ModelForm):
    class Meta:
        model = Identity
        fields = ["forge", "username", "user", "remote_id", "linked_by", "email"]
        labels = {"username": "Forge account", "user": "Baton user"}
        help_texts = {
            "username": "The account's username on the forge, without @ (as in comments).",
            "user": "The Baton user this account acts as: their grants apply to what the "
            "account asks for in comments.",
        }


@admin.register(Identity)
class IdentityAdmin(AuditedAdmin):
    form = IdentityForm
    list_display = ["username", "forge", "user", "linked_by", "remote_id"]
    list_filter = ["forge", "linked_by"]
    search_fields = [
        "username",
        "remote_id",
        "user__username",
        "user__email",
        "user__first_name",
        "user__last_name",
    ]
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Identity]:
        return super().get_queryset(request).select_related("forge", "user")


# Users and groups carry permissions too (staff, superuser, groups): their changes are audited.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            if user is not None:
                log(
                    request,
                    "user.change",
                    target=target_of(user),
                    before={"password": CHANGED},
                    after={"password": CHANGED},
                    detail={"model": user._meta.label, "id": user.pk},
                )
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass
