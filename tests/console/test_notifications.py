"""Channels in the admin: the Apprise URL is written, kept, never shown; “Send a test” says what
happened without the secrets; subscriptions check their patterns; deliveries are listed."""

from __future__ import annotations

import pytest
import responses
from django.test import Client
from django.urls import reverse

from chains.models import AuditEvent
from notify.models import Channel, Event, Notification
from tests import factories as f

pytestmark = pytest.mark.django_db

URL = "json://chat.example/hooks/SECRET-hook-token-1"
HOOK = "http://chat.example/hooks/SECRET-hook-token-1"
SECRET = "SECRET-hook-token-1"


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def test_a_channel_is_added_and_its_url_never_shown_again(admin_client: Client) -> None:
    add = reverse("admin:notify_channel_add")
    response = admin_client.post(add, {"name": "release-chat", "kind": "chat", "url": URL})
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.url == URL
    page = admin_client.get(reverse("admin:notify_channel_change", args=[channel.pk]))
    listing = admin_client.get(reverse("admin:notify_channel_changelist"))
    assert SECRET not in page.content.decode() and SECRET not in listing.content.decode()
    assert ">json<" in listing.content.decode()  # the service, not the address
    [event] = AuditEvent.objects.filter(action="channel.add")
    assert SECRET not in str(event.after)


def test_an_empty_url_keeps_the_stored_one(admin_client: Client) -> None:
    channel = Channel.objects.create(name="chat", url=URL)
    change = reverse("admin:notify_channel_change", args=[channel.pk])
    response = admin_client.post(change, {"name": "chat2", "kind": "chat", "url": ""})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.url) == ("chat2", URL)


@pytest.mark.parametrize(
    ("kind", "url", "field", "words"),
    [
        ("chat", "nosuch://SECRET-x/y", "url", "Apprise does not understand this URL"),
        ("email", URL, "kind", "An e-mail channel takes a mailto:// URL"),
        ("chat", "mailto://u:SECRET-p@example.com", "kind", "An e-mail channel takes"),
        ("chat", "", "url", "A new channel needs its Apprise URL"),
    ],
)
def test_bad_urls_are_refused_without_repeating_them(
    admin_client: Client, kind: str, url: str, field: str, words: str
) -> None:
    response = admin_client.post(
        reverse("admin:notify_channel_add"), {"name": "x", "kind": kind, "url": url}
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field])
    assert "SECRET" not in response.content.decode()


@responses.activate
def test_send_a_test_reports_success_and_failure_without_secrets(admin_client: Client) -> None:
    ok = Channel.objects.create(name="ok", url=URL)
    broken = Channel.objects.create(name="broken", url="json://down.example/SECRET-down-1")
    responses.add(responses.POST, HOOK, json={}, status=200)
    responses.add(responses.POST, "http://down.example/SECRET-down-1", status=500)
    response = admin_client.post(
        reverse("admin:notify_channel_changelist"),
        {"action": "send_test", "_selected_action": [ok.pk, broken.pk]},
        follow=True,
    )
    said = _messages(response)
    assert "ok: test message sent." in said
    [failure] = [m for m in said if m.startswith("broken: not sent.")]
    assert "SECRET" not in failure and "SECRET" not in response.content.decode()
    assert AuditEvent.objects.filter(action="channel.test").count() == 2


def test_a_subscription_names_a_team_or_a_glob_and_release_patterns(admin_client: Client) -> None:
    channel = Channel.objects.create(name="chat", url=URL)
    add = reverse("admin:notify_subscription_add")
    neither = admin_client.post(add, {"channel": channel.pk, "events": ["chain_failed"]})
    assert "Name a team or a project glob" in str(neither.context["adminform"].form.errors)
    release = admin_client.post(
        add, {"channel": channel.pk, "projects": "acme/*", "events": ["release_finished"]}
    )
    assert "needs target branch or tag patterns" in str(release.context["adminform"].form.errors)
    good = admin_client.post(
        add,
        {
            "channel": channel.pk,
            "projects": "acme/**",
            "events": ["release_finished", "chain_failed"],
            "release_refs": "main release/*",
        },
    )
    assert good.status_code == 302


def test_deliveries_are_listed_with_their_outcome_and_reason(admin_client: Client) -> None:
    chain = f.chain("acme/app")
    channel = Channel.objects.create(name="chat", url=URL)
    Notification.objects.create(
        chain=chain,
        event=Event.CHAIN_FAILED,
        channel=channel,
        title="t",
        body="b",
        outcome="failed",
        attempts=7,
        error="A Connection error occurred sending JSON notification",
    )
    page = admin_client.get(reverse("admin:notify_notification_changelist")).content.decode()
    assert "A Connection error occurred" in page and ">failed<" in page


@responses.activate
def test_the_channel_page_has_a_send_a_test_button(admin_client: Client) -> None:
    channel = Channel.objects.create(name="chat", url=URL)
    responses.add(responses.POST, HOOK, json={}, status=200)
    page = admin_client.get(reverse("admin:notify_channel_change", args=[channel.pk]))
    test = reverse("admin:notify_channel_test", args=[channel.pk])
    assert f'action="{test}"' in page.content.decode()
    assert admin_client.get(test).status_code == 405  # a POST only
    response = admin_client.post(test, follow=True)
    assert "chat: test message sent." in _messages(response)
    assert len(responses.calls) == 1


def test_only_those_who_may_change_a_channel_may_test_it(client: Client) -> None:
    channel = Channel.objects.create(name="chat", url=URL)
    client.force_login(f.user("viewer", is_staff=True))
    response = client.post(reverse("admin:notify_channel_test", args=[channel.pk]))
    assert response.status_code == 403
