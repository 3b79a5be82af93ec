"""Deliveries: "process again" resets the outcome, enqueues after commit, and is audited."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.test import Client
from django.urls import reverse

from chains.models import Delivery
from tests.console.conftest import World, admin_events


def test_process_again_enqueues_after_commit_and_audits(
    admin_client: Client, world: World, django_capture_on_commit_callbacks: Any
) -> None:
    Delivery.objects.filter(pk=world.delivery.pk).update(processed_at="2026-01-02T03:04:05Z")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:chains_delivery_changelist"),
            {"action": "process_again_action", "_selected_action": [world.delivery.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert len(callbacks) == 1
    delivery = Delivery.objects.get(pk=world.delivery.pk)
    assert (delivery.outcome, delivery.processed_at, delivery.detail) == ("queued", None, "")
    with mock.patch("bots.tasks.process_delivery.apply_async") as apply_async:
        callbacks[0]()
    apply_async.assert_called_once()
    assert apply_async.call_args.args == ((world.delivery.pk,),)
    assert apply_async.call_args.kwargs["queue"] == "baton"
    [event] = admin_events("delivery.process_again")
    assert event.before == {
        "outcome": "failed",
        "processed_at": "2026-01-02T03:04:05+00:00",
        "detail": "internal error: KeyError",
    }
    assert event.after == {"outcome": "queued", "processed_at": None, "detail": ""}
    assert event.target == f"delivery #{world.delivery.pk} Merge Request Hook from gl"


def test_process_again_from_the_delivery_page(
    admin_client: Client, world: World, django_capture_on_commit_callbacks: Any
) -> None:
    url = reverse("admin:chains_delivery_process_again", args=[world.delivery.pk])
    assert admin_client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:chains_delivery_change", args=[world.delivery.pk])
    assert len(callbacks) == 1
    assert len(admin_events("delivery.process_again")) == 1


def test_a_viewer_may_not_process_again(client: Client, world: World) -> None:
    from django.contrib.auth.models import Permission, User

    staff = User.objects.create_user("vic", password="pw-vic-1", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(staff)
    page = client.get(reverse("admin:chains_delivery_change", args=[world.delivery.pk]))
    assert page.status_code == 200 and "Process again" not in page.content.decode()
    url = reverse("admin:chains_delivery_process_again", args=[world.delivery.pk])
    assert client.post(url).status_code == 403
    assert not admin_events("delivery.process_again")
