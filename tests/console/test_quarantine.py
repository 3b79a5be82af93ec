"""Quarantine in the admin console: an administrator, or staff whose grant gives `quarantine`
on the project, marks it with a reason and an expiry (audited); others cannot."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chains import quarantine
from chains.models import Grant, Quarantine
from tests.console.conftest import World, admin_events

ADD = reverse("admin:chains_quarantine_add")


def _form(world: World, days: float = 3, reason: str = "flaky runners") -> dict[str, object]:
    when = timezone.localtime(timezone.now() + timedelta(days=days))
    return {
        "repository": world.repository.pk,
        "reason": reason,
        "expires_at_0": when.strftime("%Y-%m-%d"),
        "expires_at_1": when.strftime("%H:%M:%S"),
    }


def test_an_admin_quarantines_a_project_with_a_reason_and_an_expiry(
    admin_client: Client, world: World
) -> None:
    response = admin_client.post(ADD, _form(world))
    assert response.status_code == 302, response.context["adminform"].form.errors
    found = Quarantine.objects.exclude(created_by="ada").get()
    assert (found.reason, found.created_by) == ("flaky runners", "admin")
    assert quarantine.reasons([world.repository.pk]) == {world.repository.pk: "flaky runners"}
    [event] = admin_events("quarantine.add")
    assert event.after is not None and event.after["reason"] == "flaky runners"


def test_a_past_or_far_expiry_or_no_reason_is_refused(admin_client: Client, world: World) -> None:
    for form, words in [
        (_form(world, days=-1), "Pick a time in the future"),
        (_form(world, days=400), "At most 90 days ahead"),
        (_form(world, reason="   "), "This field is required"),
    ]:
        response = admin_client.post(ADD, form)
        assert response.status_code == 200 and words in response.content.decode()
    assert not Quarantine.objects.exclude(created_by="ada").exists()


def test_staff_with_the_quarantine_grant_may_and_without_it_may_not(
    client: Client, world: World
) -> None:
    staff = User.objects.create_user("sam", password="pw-sam-1", is_staff=True)
    client.force_login(staff)
    assert client.get(ADD).status_code == 403
    Grant.objects.create(user=staff, projects="acme/*", actions=["view", "quarantine"])
    response = client.post(ADD, _form(world))
    assert response.status_code == 302
    assert Quarantine.objects.exclude(created_by="ada").get().created_by == "sam"
    other = User.objects.create_user("olga", password="pw-olga-1", is_staff=True)
    Grant.objects.create(user=other, projects="acme/*", actions=["view"])
    client.force_login(other)
    assert client.get(reverse("admin:chains_quarantine_changelist")).status_code == 403
