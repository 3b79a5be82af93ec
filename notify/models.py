"""Channels (where a message goes), subscriptions (which chains' events go there) and the
notifications sent (one row per chain, event and channel: the row is what makes a message go out
once).

A channel's address is an Apprise URL (``slack://…``, ``msteams://…``, ``mmost://…``,
``discord://…``, ``matrix://…``, ``json://…``, ``mailto://…``): it holds the service's secrets,
so it is stored encrypted and never shown again (console/notifications.py).
"""

from __future__ import annotations

from django.db import models
from encrypted_fields.fields import EncryptedTextField

from chains.models import Chain, Forge, Team


class Event(models.TextChoices):
    CHAIN_FAILED = "chain_failed", "chain failed"
    CHAIN_RECOVERED = "chain_recovered", "chain recovered (green after red)"
    RELEASE_FINISHED = "release_finished", "release chain finished"
    RUN_MANUAL = "run_manual", "run waiting for a manual action"
    RUN_REFUSED = "run_refused", "run refused by permissions"


# What a subscription or a `.baton.yml` `notify:` entry gets when it names no events.
DEFAULT_EVENTS = (Event.CHAIN_FAILED, Event.CHAIN_RECOVERED)


class Channel(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat", "chat (Slack, Teams, Mattermost, Discord, Matrix, webhook)"
        EMAIL = "email", "e-mail"

    name = models.SlugField(
        max_length=100,
        unique=True,
        help_text="What subscriptions and .baton.yml notify: lists call it, e.g. release-chat",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHAT)
    url = EncryptedTextField(help_text="Apprise URL; stored encrypted, never shown")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """A team's projects, or a glob over project paths → a channel → events."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="subscriptions")
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="The projects this team's grants cover",
    )
    projects = models.CharField(
        max_length=255, blank=True, help_text="Or a glob over project paths: acme/*, acme/**, *"
    )
    forge = models.ForeignKey(
        Forge, null=True, blank=True, on_delete=models.CASCADE, help_text="Only on this forge"
    )
    events = models.JSONField(default=list, help_text="Among the events of docs/notifications.md")
    release_refs = models.CharField(
        max_length=255,
        blank=True,
        help_text="For “release chain finished”: target branch or tag patterns, e.g. "
        "“main release/*”",
    )

    def __str__(self) -> str:
        return f"{self.team or self.projects} → {self.channel}: {', '.join(self.events)}"


class ChainNotify(models.Model):
    """The `notify:` list of the `.baton.yml` a chain was planned from: channel names and events."""

    chain = models.OneToOneField(
        Chain, primary_key=True, on_delete=models.CASCADE, related_name="notify_config"
    )
    entries = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"notify of chain {self.chain_id}"


class Notification(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=30, choices=Event.choices)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=300)
    body = models.TextField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the last try failed (no secrets)")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "event", "channel"], name="one_notification_per_chain_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} of chain {self.chain_id} → {self.channel}"
