"""Notifications in the admin: channels (an Apprise URL that is written and never read back, and
“Send a test”), subscriptions (a team's projects or a project glob → a channel → events), and the
notifications sent, each with its outcome and, when it failed, why (secrets scrubbed).
How-to: docs/notifications.md."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from chains.globs import PatternError, check_patterns
from chains.models import Repository
from console.activity import ReadOnlyAdmin
from console.trail import AuditedAdmin, log, target_of
from notify import channels
from notify.models import Channel, Event, Notification, Subscription

URL_HELP = (
    "An Apprise URL (docs/notifications.md): slack://…, msteams://…, mmost://…, discord://…, "
    "matrix://…, json://host/path (any webhook that takes JSON), or mailto://user:password@host"
    "?to=… for e-mail. It holds the service's secrets: stored encrypted, never shown again."
)
EMAIL_SCHEMES = ("mailto", "mailtos")
TEST_TITLE = "Baton: test message"
TEST_BODY = "This channel is set up: Baton's notifications will arrive here."


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


class ChannelForm(forms.ModelForm):
    """The URL is write-only: never rendered; left empty on a saved channel, it is kept."""

    url = forms.CharField(
        label="Apprise URL",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        required=False,
        max_length=channels.MAX_URL,
        help_text=URL_HELP,
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "url", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["url"] = ""
        if self.instance.pk:
            self.fields["url"].help_text = (
                "A URL is stored: leave empty to keep it, or paste a new one. " + URL_HELP
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = (data.get("url") or "").strip()
        if not url:
            if self.instance.pk:
                data["url"] = self.instance.url
            else:
                self.add_error("url", "A new channel needs its Apprise URL.")
            return data
        # Errors never repeat what was typed: it may be a secret.
        if not channels.understood(url):
            self.add_error(
                "url", "Apprise does not understand this URL: check its scheme and parts."
            )
        elif (data.get("kind") == Channel.Kind.EMAIL) != (scheme(url) in EMAIL_SCHEMES):
            self.add_error("kind", "An e-mail channel takes a mailto:// URL; a chat one does not.")
        data["url"] = url
        return data


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "service", "enabled", "subscription_count"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    actions = ["send_test"]
    change_form_template = "console/channel/change_form.html"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        test = path("<path:object_id>/test/", view(self.test_view), name="notify_channel_test")
        return [test, *super().get_urls()]

    @method_decorator(require_POST)
    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The “Send a test” button of a channel's page."""
        channel = get_object_or_404(Channel, pk=object_id)
        if not self.has_change_permission(request, channel):
            raise PermissionDenied
        self.send_test(request, Channel.objects.filter(pk=channel.pk))
        return HttpResponseRedirect(reverse("admin:notify_channel_change", args=[channel.pk]))

    @admin.display(description="service")
    def service(self, obj: Channel) -> str:
        """The URL's scheme only (json, slack, mailto…): the rest may be secret."""
        return scheme(obj.url or "")

    @admin.display(description="subscriptions")
    def subscription_count(self, obj: Channel) -> int:
        return obj.subscriptions.count()

    @admin.action(description="Send a test message to the selected channels")
    def send_test(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            result = channels.send(channel.url, TEST_TITLE, TEST_BODY)
            log(
                request,
                "channel.test",
                target=target_of(channel),
                detail={"sent": result.ok, "error": result.error},
            )
            if result.ok:
                messages.success(request, f"{channel.name}: test message sent.")
            else:
                messages.error(request, f"{channel.name}: not sent. {result.error}")


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=Event.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: chain failed and chain recovered.",
        required=False,
    )

    class Meta:
        model = Subscription
        fields = ["channel", "team", "projects", "forge", "events", "release_refs"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("team")) == bool((data.get("projects") or "").strip()):
            self.add_error("projects", "Name a team or a project glob (one of them).")
        patterns = [p for p in (data.get("projects") or "").split() if p]
        refs = (data.get("release_refs") or "").split()
        try:
            check_patterns(patterns + [r.removeprefix("!") for r in refs])
        except PatternError as exc:
            self.add_error("projects" if patterns else "release_refs", str(exc))
        if len(patterns) > 1:
            self.add_error("projects", "One glob (use ** to cover a group's subgroups).")
        if Event.RELEASE_FINISHED in (data.get("events") or []) and not refs:
            self.add_error(
                "release_refs", "“Release chain finished” needs target branch or tag patterns."
            )
        return data


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    form = SubscriptionForm
    list_display = ["channel", "team", "projects", "forge", "event_list", "release_refs"]
    list_filter = ["channel", "team"]

    @admin.display(description="events")
    def event_list(self, obj: Subscription) -> str:
        return ", ".join(obj.events) or "chain_failed, chain_recovered"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "chain", "event", "channel", "outcome", "attempts", "error"]
    list_filter = ["outcome", "event", "channel"]
    fields = (
        "chain",
        "event",
        "channel",
        "outcome",
        "attempts",
        "error",
        "created_at",
        "sent_at",
        "title",
        "body",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        """Only chains in projects the staff member may view (the policy's ``visible_to``)."""
        visible = Repository.objects.visible_to(request.user)
        return (
            super()
            .get_queryset(request)
            .filter(chain__repository__in=visible)
            .select_related("chain__repository", "channel")
        )


__all__ = ["ChannelAdmin", "NotificationAdmin", "SubscriptionAdmin"]
