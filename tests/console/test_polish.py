"""Console polish (issue 13, part 8): times to the second with their timezone; an ignored
delivery says why; the deliveries table's detail wraps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from django.test import Client
from django.urls import reverse

from chains.models import Delivery
from tests.console.conftest import World


def test_list_and_detail_pages_show_times_to_the_second_with_the_timezone(
    admin_client: Client, world: World
) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    Delivery.objects.filter(pk=world.delivery.pk).update(received_at=when, processed_at=when)
    listing = admin_client.get(reverse("admin:chains_delivery_changelist")).content.decode()
    assert "03:04:05 UTC" in listing
    page = admin_client.get(reverse("admin:chains_delivery_change", args=[world.delivery.pk]))
    assert "Jan. 2, 2026, 03:04:05 UTC" in page.content.decode()


def test_an_ignored_delivery_says_why_in_the_list_and_on_its_page(
    admin_client: Client, world: World
) -> None:
    _, created = Delivery.objects.record(world.gitlab, "Wiki Page Hook", "w1", {}, handled=False)
    assert created
    ignored = Delivery.objects.get(dedupe_key="w1")
    assert ignored.detail == "Wiki Page Hook: not an event Baton acts on"
    # One stored before the reason was kept says the same.
    Delivery.objects.filter(pk=ignored.pk).update(detail="")
    listing = admin_client.get(reverse("admin:chains_delivery_changelist")).content.decode()
    row = listing.split(f'value="{ignored.pk}"')[1].split("</tr>")[0]
    assert "Wiki Page Hook: not an event Baton acts on" in row
    assert 'class="field-short_detail"' in row
    page = admin_client.get(reverse("admin:chains_delivery_change", args=[ignored.pk]))
    assert "Wiki Page Hook: not an event Baton acts on" in page.content.decode()
    css = (Path(__file__).parents[2] / "static/css/admin.css").read_text()
    assert "td.field-short_detail { white-space: normal; overflow-wrap: anywhere;" in css


def test_the_audit_event_page_links_the_run_when_the_reader_may_view_its_project(
    admin_client: Client, world: World
) -> None:
    from django.contrib.auth.models import Permission

    from chains import audit
    from chains.models import Repository, Run

    vault = Repository.objects.create(forge=world.gitlab, path="secret/vault")
    hidden = Run.objects.create(chain=world.chain, key="vault-deploy", repository=vault)
    shown = world.chain.runs.get(key="api")
    on_shown = audit.record("run.retry", actor="rita", surface="dashboard", run=shown)
    on_hidden = audit.record("run.retry", actor="rita", surface="dashboard", run=hidden)

    def page(client: Client, event_id: int) -> str:
        url = reverse("admin:chains_auditevent_change", args=[event_id])
        return client.get(url).content.decode()

    assert f'<a href="/chains/{world.chain.pk}/#run-{shown.pk}">run {shown.pk} api (' in page(
        admin_client, on_shown.pk
    )
    assert f"#run-{hidden.pk}" in page(admin_client, on_hidden.pk)  # an administrator sees all
    assert f"{on_shown.at:%Y-%m-%d %H:%M:%S} UTC rita run.retry" in page(admin_client, on_shown.pk)
    rita = world.member
    rita.is_staff = True
    rita.save()
    rita.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    staff = Client()
    staff.force_login(rita)
    assert f"#run-{shown.pk}" in page(staff, on_shown.pk)
    private = page(staff, on_hidden.pk)
    assert f"run {hidden.pk} in a private project" in private
    assert f"#run-{hidden.pk}" not in private and "vault-deploy" not in private
