"""Forges: credentials that are written and never read back, a connection test, the webhook to set
up on the forge (URL, secret, events), and a new secret on demand."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Count, ExpressionWrapper, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from bots.engine import polling
from bots.forges.base import ForgeError
from bots.forges.registry import forge_for
from chains.models import Forge
from console.trail import CHANGED, AuditedAdmin, log, log_saved, snapshot, target_of

# What to tick in the forge's webhook settings, and why Baton needs it.
EVENTS: dict[str, list[tuple[str, str]]] = {
    Forge.Kind.GITLAB: [
        ("Merge request events", "a merge request is opened, updated, reopened or closed"),
        ("Comments", "comment commands on merge requests"),
        ("Pipeline events", "the pipelines Baton started report their progress"),
    ],
    Forge.Kind.GITHUB: [
        ("Pull requests", "a pull request is opened, updated, reopened or closed"),
        ("Issue comments", "comment commands on pull requests"),
        ("Workflow runs", "the workflow runs Baton started report their progress"),
    ],
}
WHERE: dict[str, str] = {
    Forge.Kind.GITLAB: "In GitLab: the project's (or group's) Settings → Webhooks → Add new "
    "webhook. Paste the URL, paste the secret into Secret token, tick these triggers, keep SSL "
    "verification on.",
    Forge.Kind.GITHUB: "In GitHub: the repository's (or organization's) Settings → Webhooks → "
    "Add webhook, or the GitHub App's webhook settings. Paste the URL as Payload URL, choose "
    "Content type application/json, paste the secret, pick “Let me select individual "
    "events” and tick these.",
}

API_URL_HELP = (
    "GitLab: the instance root, e.g. https://gitlab.com or https://gitlab.example.com (Baton adds "
    "/api/v4). GitHub: the API root, https://api.github.com, or https://github.example.com/api/v3 "
    "for GitHub Enterprise Server."
)
CREDENTIAL_HELP = (
    "The bot account's API token. GitLab: a personal, project or group access token with the "
    "api scope, Developer or above on every project Baton triggers. GitHub: a token that may "
    "run workflows (Actions: write), read contents and write pull request comments and commit "
    "statuses, or a GitHub App installation token. Stored encrypted; never shown again."
)
SHARED_KEY_HELP = (
    "The shared secret the forge sends with each webhook (GitLab: the Secret token; GitHub: the "
    "Secret, used to sign the body). Stored encrypted. Leave empty on a new forge and Baton "
    "makes a random one; superusers can copy it from this page once the forge is saved."
)
FORGE_PERMISSIONS_HELP = (
    "Who may trigger, retry, cancel and view is decided by Baton's grants (Teams and Grants). "
    "Tick this to fall back on the forge when no grant covers someone: GitLab Developer or above "
    "on the project, GitHub write, maintain or admin access. Deploys always need a grant. "
    "Leave it off to rely on grants alone."
)
APP_INSTALLATION_HELP = (
    "GitHub only. Tick when the token is a GitHub App installation token: Baton then reports "
    "on pull requests with check runs (the App needs Checks: write) instead of commit statuses. "
    "Leave it off for a personal or bot-account token, and on GitLab."
)
APP_ID_HELP = (
    "GitHub App forges only: the App's id (its settings page, “App ID”). With the private key, "
    "Baton finds the installation of each repository and mints its own installation tokens, "
    "renewed before they expire; one forge serves every organisation the App is installed on. "
    "Leave empty for a token forge."
)
APP_KEY_HELP = (
    "GitHub App forges only: the App's private key (the .pem file GitHub made, pasted whole). "
    "Stored encrypted; never shown again. Leave empty to keep the stored one."
)
MAX_PRIVATE_KEY = 16 * 1024
BOT_USERNAME_HELP = (
    "Baton's own account on this forge; its comments are never read as commands. "
    "“Test connection” fills it in. For a GitHub App, type &lt;app-slug&gt;[bot]."
)


MANAGE_FORGE = "chains.manage_forge"


def webhook_url(forge: Forge) -> str:
    return settings.BATON_BASE_URL + reverse("webhook", kwargs={"slug": forge.slug})


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class ForgeForm(forms.ModelForm):
    """Secrets are write-only: the form never renders them; leaving a field empty keeps it."""

    token = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        help_text=CREDENTIAL_HELP,
    )
    webhook_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        help_text=SHARED_KEY_HELP,
    )
    app_private_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        required=False,
        max_length=MAX_PRIVATE_KEY,
        label="GitHub App private key",
        help_text=APP_KEY_HELP,
    )

    class Meta:
        model = Forge
        fields = [
            "name",
            "kind",
            "slug",
            "api_url",
            "token",
            "webhook_secret",
            "app_id",
            "app_private_key",
            "forge_permissions",
            "app_installation",
            "bot_username",
        ]
        labels = {
            "api_url": "API URL",
            "forge_permissions": "Fall back on the forge's permissions",
            "app_installation": "GitHub App installation token",
            "app_id": "GitHub App id",
        }
        help_texts = {
            "name": "What people call it, e.g. “GitLab (company)”.",
            "slug": "Short name in the webhook URL: /hooks/&lt;slug&gt;/. Changing it breaks the "
            "webhooks already set up on the forge.",
            "api_url": API_URL_HELP,
            "forge_permissions": FORGE_PERMISSIONS_HELP,
            "app_installation": APP_INSTALLATION_HELP,
            "app_id": APP_ID_HELP,
            "bot_username": BOT_USERNAME_HELP,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["app_private_key"] = ""  # write-only, like the token
        if self.instance.pk:
            self.fields["token"].help_text = (
                "A token is stored: leave empty to keep it, or paste a new one. " + CREDENTIAL_HELP
            )
            self.fields["webhook_secret"].help_text = (
                "A secret is stored. Leave empty to keep it, type one to replace it, or use "
                "“Generate a new secret”. " + SHARED_KEY_HELP.split(". ", 1)[1]
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        moved = self.instance.pk and any(name in self.changed_data for name in ("api_url", "kind"))
        if data.get("app_id") or data.get("app_private_key"):
            self._clean_app(data, bool(moved))
        else:  # a token forge: an App key stored before stays as it was (unused)
            data["app_private_key"] = self.instance.app_private_key if self.instance.pk else None
            self._clean_token(data, bool(moved))
        if not data.get("webhook_secret"):
            if self.instance.pk:
                data["webhook_secret"] = self.instance.webhook_secret
            else:
                data["webhook_secret"] = new_secret()
                self.generated_secret = True
        if data.get("app_installation") and data.get("kind") != Forge.Kind.GITHUB:
            self.add_error("app_installation", "Only a GitHub forge uses an App installation.")
        return data

    def _clean_token(self, data: dict[str, Any], moved: bool) -> None:
        if moved and not data.get("token"):
            # The stored token is only ever sent where it was typed for: a new address (or a
            # new kind of forge) needs it typed again.
            self.add_error(
                "token",
                "You changed the API URL or the kind: type the token again. Baton sends the "
                "stored token only to the address it was entered for.",
            )
        elif not data.get("token"):
            if self.instance.pk:
                data["token"] = self.instance.token
            else:
                self.add_error("token", "A new forge needs its token.")

    def _clean_app(self, data: dict[str, Any], moved: bool) -> None:
        """A GitHub App forge: an App id and its private key instead of a token."""
        if data.get("kind") != Forge.Kind.GITHUB:
            self.add_error("app_id", "Only a GitHub forge can be a GitHub App.")
            return
        if not data.get("app_id"):
            self.add_error("app_id", "Give the App's id with its private key.")
        key = (data.get("app_private_key") or "").replace("\r\n", "\n").strip()
        key = key + "\n" if key else ""
        if key and not ("-----BEGIN" in key and "PRIVATE KEY-----" in key):
            self.add_error(
                "app_private_key",
                "This is not a private key: paste the whole .pem file, from -----BEGIN to "
                "-----END … PRIVATE KEY-----.",
            )
        elif not key and moved:
            self.add_error(
                "app_private_key",
                "You changed the API URL or the kind: paste the private key again. Baton signs "
                "with the stored key only for the address it was entered for.",
            )
        elif not key and self.instance.pk and self.instance.app_private_key:
            key = self.instance.app_private_key
        elif not key:
            self.add_error("app_private_key", "A GitHub App forge needs the App's private key.")
        data["app_private_key"] = key
        data["app_installation"] = True  # an App reports with check runs
        if not data.get("token"):
            data["token"] = self.instance.token if self.instance.pk and not moved else None


def _hint(forge: Forge, status: int | None) -> str:
    if status == 401 and forge.is_github_app:
        return (
            " GitHub refused the App's signed token: check the App id and paste the App's "
            "current private key."
        )
    if status == 401:
        return " The token is wrong, expired or revoked: paste a valid one into Token and save."
    if status == 403 and forge.app_installation:
        return (
            " A GitHub App installation token may not read its own account: type the App's "
            "bot name (<app-slug>[bot]) into Bot username."
        )
    if status == 403:
        return " The token is not allowed to read its own account: check its scopes."
    if status == 404:
        return f" Check the API URL. {API_URL_HELP}"
    if status is None:
        return " Check the API URL and that Baton can reach the forge from where it runs."
    return ""


def check_connection(request: HttpRequest, forge: Forge) -> bool:
    """Ask the forge who the token is; say so, and keep the name as Baton's bot username."""
    try:
        client = forge_for(forge)
        name = client.whoami()
        installed = _installations(client) if forge.is_github_app else ""
    except ForgeError as exc:
        messages.error(
            request,
            f"{forge.name}: not connected. {exc.message}.{_hint(forge, exc.status_code)}",
        )
        return False
    except NotImplementedError as exc:
        messages.error(request, f"{forge.name}: not connected. {exc}")
        return False
    if not name:
        messages.error(request, f"{forge.name}: the forge answered without an account name.")
        return False
    note = ""
    if name != forge.bot_username:
        before = snapshot(forge)
        forge.bot_username = name
        forge.save(update_fields=["bot_username"])
        log_saved(request, forge, before, via="test connection")
        note = " Saved as Baton's bot username."
    messages.success(request, f"{forge.name}: connected as {name}.{note}{installed}")
    return True


def _installations(client: Any) -> str:
    """A GitHub App's installations, in words (an App installed nowhere can do nothing)."""
    found = client.installations()
    if not found:
        return (
            " The App is not installed anywhere yet: install it on the organisations (or "
            "repositories) Baton should work on."
        )
    listed = ", ".join(
        f"{i.account or '?'} (#{i.id}, {i.repository_selection or 'some'} repositories)"
        for i in found[:50]
    )
    more = f" and {len(found) - 50} more" if len(found) > 50 else ""
    return f" Installations: {listed}{more}."


def regenerate_secret(request: HttpRequest, forge: Forge) -> None:
    forge.webhook_secret = new_secret()
    forge.save(update_fields=["webhook_secret"])
    log(
        request,
        "forge.new_secret",
        target=target_of(forge),
        before={"webhook_secret": CHANGED},
        after={"webhook_secret": CHANGED},
        detail={"model": forge._meta.label, "id": forge.pk},
    )


@admin.register(Forge)
class ForgeAdmin(AuditedAdmin):
    form = ForgeForm
    list_display = [
        "name",
        "kind",
        "slug",
        "api_url",
        "bot_username",
        "repository_count",
        "webhooks_display",
    ]
    list_filter = ["kind"]
    search_fields = ["name", "slug", "api_url", "bot_username"]
    actions = ["test_connection_action"]
    change_form_template = "console/forge/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Forge]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                repository_total=Count("repositories"),
                hooks_silent=ExpressionWrapper(polling.silent(), output_field=BooleanField()),
            )
        )

    # A forge holds a token that acts on every project Baton reaches: only superusers, or
    # people given "Can set up forges" (chains.manage_forge), may add, change or delete one,
    # or test its connection. Others with the view permission may look.
    def _may_manage(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.has_perm(MANAGE_FORGE))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_manage(request) or super().has_view_permission(request, obj)

    @admin.display(description="repositories", ordering="repository_total")
    def repository_count(self, obj: Forge) -> int:
        return getattr(obj, "repository_total", 0)

    @admin.display(description="webhooks")
    def webhooks_display(self, obj: Forge) -> str:
        """Whether the forge's webhooks arrive (bots/engine/polling.py says when it is silent)."""
        if getattr(obj, "hooks_silent", False):
            silence = polling.silence_of(obj)
            if silence is not None:
                return silence.message()
        if obj.hooks_seen_at is None:
            return "none received yet"
        return f"last received {timesince(obj.hooks_seen_at)} ago"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        secret = "webhook_secret_display" if request.user.is_superuser else "webhook_secret_note"
        webhook = ["webhooks_display", "webhook_url_display", secret, "events_display"]
        return [
            (None, {"fields": ["name", "kind", "slug", "api_url"]}),
            (
                "Credentials",
                {
                    "fields": ["token", "webhook_secret", "app_id", "app_private_key"]
                    if self._may_manage(request)
                    else ["credentials_note"],
                    "description": "Secrets are write-only: what you type is stored encrypted "
                    "and never shown in this form again. A GitHub App forge takes the App id and "
                    "private key instead of a token.",
                },
            ),
            ("Permissions and identity", {"fields": ["forge_permissions", "app_installation"]}),
            (
                "Connection",
                {
                    "fields": ["bot_username"],
                    "description": "Use “Test connection” at the top of the page to check the "
                    "API URL and token: it shows the account the token acts as and fills in "
                    "Bot username.",
                },
            ),
            (
                "Webhook to set up on the forge",
                {
                    "fields": webhook,
                    "description": "Baton learns about changes and pipelines only from this "
                    "webhook. Set it up on every project (or group or organization) whose "
                    "changes should start chains, and on every project Baton triggers.",
                },
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [
            "credentials_note",
            "webhook_url_display",
            "webhook_secret_display",
            "webhook_secret_note",
            "events_display",
            "webhooks_display",
        ]

    # -- the read-only webhook help --------------------------------------------------------

    @admin.display(description="Webhook URL")
    def webhook_url_display(self, obj: Forge) -> SafeString | str:
        if not obj.pk:
            return "Shown once the forge is saved."
        return format_html(
            '<code id="baton-webhook-url">{}</code> '
            '<button type="button" class="button" data-baton-copy="baton-webhook-url">'
            "Copy</button> "
            '<span class="baton-copy-status" role="status" aria-live="polite"></span>',
            webhook_url(obj),
        )

    @admin.display(description="Token and webhook secret")
    def credentials_note(self, obj: Forge) -> str:
        return "Stored encrypted; only people who may set up forges can replace them."

    @admin.display(description="Stored secret")
    def webhook_secret_note(self, obj: Forge) -> str:
        return "Stored. Only a superuser can show and copy it." if obj.pk else "Made on saving."

    @admin.display(description="Stored secret")
    def webhook_secret_display(self, obj: Forge) -> SafeString | str:
        """For superusers only (see get_fieldsets)."""
        if not obj.pk:
            return "Shown once the forge is saved."
        # The secret is not in the page: the button fetches it (and the fetch is audited).
        return format_html(
            '<input type="text" id="baton-webhook-secret" readonly size="48" '
            'aria-label="Webhook secret" placeholder="hidden">'
            ' <button type="button" class="button" data-baton-reveal="{}" '
            'data-baton-target="baton-webhook-secret">Show and copy</button> '
            '<span class="baton-copy-status" role="status" aria-live="polite"></span>'
            '<div class="baton-note">Showing it is recorded in the audit log. To replace it, use '
            "“Generate a new secret” at the top of the page, then paste the new one into the "
            "forge's webhook settings.</div>",
            reverse("admin:chains_forge_webhook_secret", args=[obj.pk]),
        )

    @admin.display(description="Events to tick")
    def events_display(self, obj: Forge) -> SafeString:
        kinds = [obj.kind] if obj.kind in EVENTS else list(EVENTS)
        parts = []
        for kind in kinds:
            items = format_html_join(
                "", "<li><strong>{}</strong>: {}</li>", ((n, why) for n, why in EVENTS[kind])
            )
            label = Forge.Kind(kind).label
            parts.append(
                format_html(
                    '<div class="baton-events"><p>{}</p><ul>{}</ul></div>', WHERE[kind], items
                )
                if len(kinds) == 1
                else format_html("<p><strong>{}</strong></p><ul>{}</ul>", label, items)
            )
        return format_html_join("", "{}", ((p,) for p in parts))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["may_reveal_secret"] = request.user.is_superuser
        context["may_manage"] = self._may_manage(request)
        silence = polling.silence_of(obj) if obj is not None and obj.pk else None
        if silence is not None:
            messages.warning(
                request,
                f"{silence.message()}: Baton polls its open runs instead. Check the webhook on "
                "the forge (a hook that keeps failing is disabled there).",
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if getattr(form, "generated_secret", False):
            messages.info(
                request,
                "Baton made a random webhook secret. A superuser can copy it from the forge's "
                "page, under “Webhook to set up on the forge”.",
            )

    # -- buttons and actions ---------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/test-connection/",
                view(self.test_connection_view),
                name="chains_forge_test_connection",
            ),
            path(
                "<path:object_id>/new-secret/",
                view(self.new_secret_view),
                name="chains_forge_new_secret",
            ),
            path(
                "<path:object_id>/webhook-secret/",
                view(self.webhook_secret_view),
                name="chains_forge_webhook_secret",
            ),
            *super().get_urls(),
        ]

    def _change_page(self, forge: Forge) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:chains_forge_change", args=[forge.pk]))

    @method_decorator(require_POST)
    def test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        forge = get_object_or_404(Forge, pk=object_id)
        if not self.has_change_permission(request, forge):
            raise PermissionDenied
        check_connection(request, forge)
        return self._change_page(forge)

    @method_decorator(require_POST)
    def new_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        forge = get_object_or_404(Forge, pk=object_id)
        if not request.user.is_superuser:
            raise PermissionDenied
        regenerate_secret(request, forge)
        messages.warning(
            request,
            f"{forge.name} has a new webhook secret. Until you paste it into the forge's webhook "
            "settings, the forge's webhooks are refused (401). Show and copy it below.",
        )
        return self._change_page(forge)

    @method_decorator(require_POST)
    def webhook_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        forge = get_object_or_404(Forge, pk=object_id)
        if not request.user.is_superuser:
            raise PermissionDenied
        log(
            request,
            "forge.reveal_secret",
            target=target_of(forge),
            detail={"model": forge._meta.label, "id": forge.pk},
        )
        response = JsonResponse({"secret": forge.webhook_secret})
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Test connection", permissions=["change"])
    def test_connection_action(self, request: HttpRequest, queryset: QuerySet[Forge]) -> None:
        for forge in queryset:
            check_connection(request, forge)
