"""Flaky downstreams on the pages and in the API: the chain page says which attempt a run is on
and why it was retried; a repository page counts its flaky runs and shows its quarantine, which a
`quarantine` grant holder sets and lifts (audited) and a viewer cannot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from chains.models import AuditEvent, Quarantine
from chains.status import Status
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_the_chain_page_says_attempt_2_of_3_and_why(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=7)
    run = f.run(
        chain,
        "api",
        project="acme/api",
        attempt=2,
        retry_max=2,
        retried_for="runner_system_failure",
    )
    f.attempt(run, 1)
    page = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "attempt 2 of 3, automatic retry: runner_system_failure" in page


def test_a_quarantined_run_says_so_on_the_chain_page_and_in_the_api(
    viewer: object, viewer_client: Client
) -> None:
    chain = f.chain("acme/app", number=7, status=Status.SUCCESS)
    f.run(
        chain,
        "api",
        project="acme/api",
        status=Status.FAILED,
        soft_fail=True,
        quarantine_reason="<b>flaky</b> runners",
    )
    page = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "quarantined: &lt;b&gt;flaky&lt;/b&gt; runners" in page
    api = APIClient()
    api.force_authenticate(viewer)  # type: ignore[arg-type]
    [run] = api.get(f"/api/v1/chains/{chain.pk}/").json()["runs"]
    assert (run["soft_failed"], run["quarantine_reason"]) == (True, "<b>flaky</b> runners")


def test_the_repository_page_counts_flaky_runs(viewer: object, viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=7, status=Status.SUCCESS)
    api = f.run(chain, "api", project="acme/api", status=Status.SUCCESS, attempt=2)
    f.attempt(api, 1, Status.FAILED)
    steady = f.run(chain, "docs", project="acme/api", status=Status.SUCCESS, attempt=2)
    f.attempt(steady, 1, Status.CANCELED)  # canceled, then passed: not flaky
    page = viewer_client.get(f"/repositories/{api.repository_id}/").content.decode()
    assert "<strong>1</strong> run failed and then passed" in page
    client = APIClient()
    client.force_authenticate(viewer)  # type: ignore[arg-type]
    data = client.get(f"/api/v1/repositories/{api.repository_id}/").json()
    assert (data["flaky_runs"], data["quarantine"]) == (1, None)


def test_a_grant_holder_quarantines_and_lifts_a_project(client: Client) -> None:
    repository = f.repository("acme/api")
    person = f.user("quinn")
    f.grant(person, "acme/*", "view", "quarantine")
    client.force_login(person)
    url = f"/repositories/{repository.pk}/quarantine/"
    client.post(url + "add/", {"reason": "runner upgrade", "days": "3"})
    found = Quarantine.objects.get()
    assert (found.reason, found.created_by) == ("runner upgrade", "quinn")
    assert timedelta(days=2) < found.expires_at - timezone.now() <= timedelta(days=3)
    page = client.get(f"/repositories/{repository.pk}/").content.decode()
    assert "quarantined: runner upgrade" in page and 'id="lift-quarantine"' in page
    client.post(url + "lift/")
    assert not Quarantine.objects.filter(expires_at__gt=timezone.now()).exists()
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("pk")) == [
        "quarantine.add",
        "quarantine.lift",
    ]


@pytest.mark.parametrize(("reason", "days"), [("", "3"), ("x", "0"), ("x", "91"), ("x", "1e3")])
def test_a_bad_quarantine_is_refused(client: Client, reason: str, days: str) -> None:
    repository = f.repository("acme/api")
    person = f.user("quinn")
    f.grant(person, "acme/*", "view", "quarantine")
    client.force_login(person)
    client.post(f"/repositories/{repository.pk}/quarantine/add/", {"reason": reason, "days": days})
    assert not Quarantine.objects.exists()


def test_a_viewer_may_not_quarantine(viewer_client: Client) -> None:
    repository = f.repository("acme/api")
    page = viewer_client.get(f"/repositories/{repository.pk}/").content.decode()
    assert 'id="quarantine-project"' not in page
    response = viewer_client.post(
        f"/repositories/{repository.pk}/quarantine/add/", {"reason": "x", "days": "3"}, follow=True
    )
    assert "Not done: no grant gives vic quarantine on acme/api" in response.content.decode()
    assert not Quarantine.objects.exists()


def test_the_release_view_says_quarantined(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=7, status=Status.SUCCESS, target="release/1.2")
    f.run(
        chain,
        "api",
        project="acme/api",
        status=Status.FAILED,
        soft_fail=True,
        quarantine_reason="runner upgrade",
    )
    page = viewer_client.get("/releases/?ref=release/1.2").content.decode()
    assert "quarantined: runner upgrade" in page
