"""Retry and cancel from the dashboard: staff only, CSRF-protected POSTs that call the domain
verbs, record who and from where, and say in words why an action was refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chains.models import AuditEvent, Chain, Run
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain() -> Chain:
    chain = f.chain(status="failed")
    f.run(chain, "api", status="failed", error="job test exited 1")
    f.run(chain, "web", status="running")
    return chain


def run(chain: Chain, key: str) -> Run:
    return chain.runs.get(key=key)


def actions(chain: Chain) -> list[str]:
    return [
        f"/runs/{run(chain, 'api').pk}/retry/",
        f"/runs/{run(chain, 'web').pk}/cancel/",
        f"/chains/{chain.pk}/retry-failed/",
        f"/chains/{chain.pk}/cancel/",
        f"/chains/{chain.pk}/rerun/",
    ]


def test_anonymous_posts_are_sent_to_sign_in(client: Client, chain: Chain) -> None:
    for url in actions(chain):
        assert client.post(url)["Location"].startswith("/login/")
        assert client.post(url, headers=HX)["HX-Redirect"].startswith("/login/")
    assert not AuditEvent.objects.exists()


def test_viewers_are_refused_in_words(viewer_client: Client, chain: Chain) -> None:
    for url in actions(chain):
        response = viewer_client.post(url, headers=HX)
        assert response.status_code == 403
        assert "You may not " in response.content.decode()
        assert "no grant gives vic" in response.content.decode()
        assert response["HX-Retarget"] == "#notice"
    assert set(chain.runs.values_list("status", flat=True)) == {"failed", "running"}
    assert not AuditEvent.objects.exists()


def test_an_inactive_staff_account_cannot_act(chain: Chain) -> None:
    user = User.objects.create_user("old", password="x", is_staff=True, is_active=False)
    client = Client()
    client.force_login(user)
    # The authentication backend refuses inactive users: they are signed out.
    assert client.post(actions(chain)[0], headers=HX)["HX-Redirect"].startswith("/login/")
    assert run(chain, "api").attempt == 1


def test_retry_a_run(
    manager_client: Client, chain: Chain, django_capture_on_commit_callbacks: Any
) -> None:
    api = run(chain, "api")
    with django_capture_on_commit_callbacks() as callbacks:
        response = manager_client.post(f"/runs/{api.pk}/retry/", headers=HX, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="chain-live"')
    assert 'hx-swap-oob="innerHTML"' in html and "attempt 2 is on its way" in html
    assert 'hx-trigger="every 1s' in html  # polling again
    api.refresh_from_db()
    assert (api.attempt, api.status) == (2, "pending")
    assert api.attempts.get().status == "failed"
    assert callbacks, "the retry is sent to the forge after the commit"
    audit = AuditEvent.objects.get(action="run.retry")
    assert (audit.actor, audit.surface, audit.remote_addr) == ("rita", "dashboard", "10.1.2.3")
    assert audit.user is not None and audit.user.username == "rita"


def test_a_double_click_retries_once(manager_client: Client, chain: Chain) -> None:
    url = f"/runs/{run(chain, 'api').pk}/retry/"
    assert manager_client.post(url, headers=HX).status_code == 200
    second = manager_client.post(url, headers=HX)
    assert second.status_code == 409
    assert "only failed or canceled runs can be retried" in second.content.decode()
    assert (second["HX-Retarget"], second["HX-Reswap"]) == ("#notice", "innerHTML")
    assert AuditEvent.objects.filter(action="run.retry").count() == 1


def test_cancel_a_run_then_again(manager_client: Client, chain: Chain) -> None:
    web = run(chain, "web")
    assert manager_client.post(f"/runs/{web.pk}/cancel/", headers=HX).status_code == 200
    web.refresh_from_db()
    assert web.cancel_requested and web.error == "canceled by rita"
    again = manager_client.post(f"/runs/{web.pk}/cancel/", headers=HX)
    assert again.status_code == 409 and "a cancel is under way" in again.content.decode()


def test_cancel_the_chain(manager_client: Client, chain: Chain) -> None:
    response = manager_client.post(f"/chains/{chain.pk}/cancel/", headers=HX)
    assert response.status_code == 200 and "Canceling 1 run." in response.content.decode()
    again = manager_client.post(f"/chains/{chain.pk}/cancel/", headers=HX)
    assert again.status_code == 409 and "Nothing to cancel" in again.content.decode()


def test_retry_every_failed_run(manager_client: Client, chain: Chain) -> None:
    response = manager_client.post(f"/chains/{chain.pk}/retry-failed/", headers=HX)
    assert response.status_code == 200 and "Retrying 1 failed run." in response.content.decode()
    again = manager_client.post(f"/chains/{chain.pk}/retry-failed/", headers=HX)
    assert again.status_code == 409 and "no run of this chain has failed" in again.content.decode()


def test_rerun(
    manager_client: Client, chain: Chain, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = manager_client.post(f"/chains/{chain.pk}/rerun/", headers=HX)
    assert response.status_code == 200 and "latest commit" in response.content.decode()
    assert callbacks
    assert AuditEvent.objects.get(action="chain.rerun").actor == "rita"
    push = f.chain(number=None, status="success")
    Chain.objects.filter(pk=push.pk).update(change_number=None)
    refused = manager_client.post(f"/chains/{push.pk}/rerun/", headers=HX)
    assert (
        refused.status_code == 409 and "only chains started by a change" in refused.content.decode()
    )


def test_without_javascript_a_form_post_redirects_with_a_message(
    manager_client: Client, chain: Chain
) -> None:
    response = manager_client.post(f"/runs/{run(chain, 'api').pk}/retry/", follow=True)
    assert response.redirect_chain == [(f"/chains/{chain.pk}/", 302)]
    assert "attempt 2 is on its way" in response.content.decode()
    response = manager_client.post(f"/runs/{run(chain, 'api').pk}/retry/", follow=True)
    assert "only failed or canceled runs can be retried" in response.content.decode()


def test_csrf_is_required_and_the_header_is_enough(manager: User, chain: Chain) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    url = f"/runs/{run(chain, 'api').pk}/retry/"
    assert client.post(url, headers=HX).status_code == 403
    client.get(f"/chains/{chain.pk}/")
    token = client.cookies["csrftoken"].value
    assert client.post(url, headers={**HX, "X-CSRFToken": token}).status_code == 200


def test_only_post_and_only_known_actions(manager_client: Client, chain: Chain) -> None:
    assert manager_client.get(f"/chains/{chain.pk}/cancel/").status_code == 405
    assert manager_client.post(f"/chains/{chain.pk}/explode/").status_code == 404
    assert manager_client.post("/runs/999/retry/").status_code == 404


def test_retry_a_run_with_what_it_set_off(manager_client: Client) -> None:
    chain = f.chain(status="success")
    build = f.run(chain, "build", status="success")
    f.run(chain, "deploy", status="failed", parent=build)
    html = manager_client.get(f"/chains/{chain.pk}/").content.decode()
    assert f'hx-post="/runs/{build.pk}/retry-subtree/"' in html
    response = manager_client.post(f"/runs/{build.pk}/retry-subtree/", headers=HX)
    assert response.status_code == 200
    assert "with the 1 run it set off" in response.content.decode()
    assert set(chain.runs.values_list("attempt", flat=True)) == {2}
    again = manager_client.post(f"/runs/{build.pk}/retry-subtree/", headers=HX)
    assert again.status_code == 409 and "cancel it first" in again.content.decode()
