"""Small things a newcomer hit on the existing pages (issue 13, part 8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from chains.models import RunAttempt
from tests import factories as f

pytestmark = pytest.mark.django_db


def _row(html: str, key: str) -> str:
    return html.split(f'data-key="{key}"')[1].split("</tr>")[0]


def test_a_retried_run_shows_its_current_attempts_duration_and_each_earlier_ones_own(
    viewer_client: Client,
) -> None:
    now = timezone.now()
    first_start = now - timedelta(minutes=4, seconds=5)
    first_end = now - timedelta(seconds=9)
    chain = f.chain(status="success")
    # The forge re-ran the same pipeline: it reports the first attempt's start again.
    run = f.run(chain, "api", status="success", attempt=2, started_at=first_start, finished_at=now)
    RunAttempt.objects.create(
        run=run, number=1, status="failed", started_at=first_start, finished_at=first_end
    )
    row = _row(viewer_client.get(f"/chains/{chain.pk}/").content.decode(), "api")
    assert '<span class="duration">9 s</span>' in row
    assert '<span class="attempt-duration">3 min 56 s</span>' in row
    assert "4 min 05 s" not in row


def test_an_action_notice_always_has_its_target_and_can_be_dismissed(
    manager_client: Client,
) -> None:
    chain = f.chain(status="running")
    web = f.run(chain, "web", status="running", dispatch="sent", remote_id="5")
    page = manager_client.get(f"/chains/{chain.pk}/").content.decode()
    assert page.count('id="notice"') == 1
    # The row's button waits for no poll: a poll in flight is aborted, later ones dropped, so
    # the page it came from is still there when the answer (and its notice) arrives.
    cancel_form = page.split(f'action="/runs/{web.pk}/cancel/"')[1].split(">")[0]
    assert 'hx-sync="closest #chain-live:replace"' in cancel_form
    answer = manager_client.post(f"/runs/{web.pk}/cancel/", headers={"HX-Request": "true"})
    body = answer.content.decode()
    assert '<div id="notice" hx-swap-oob="innerHTML">' in body
    notice = body.split('<div id="notice" hx-swap-oob="innerHTML">')[1]
    assert "Canceling web." in notice and 'data-dismiss="notice"' in notice
    assert "notice-success" in notice  # clears itself (static/css/app.css)


def _planned(key: str, **fields: object) -> SimpleNamespace:
    defaults: dict[str, object] = {"label": "", "ref": None, "depends_on": [], "skip": ""}
    defaults |= {"variables": {}, "masked_variables": {}}
    return SimpleNamespace(key=key, **(defaults | fields))


@pytest.mark.parametrize(("kind", "mark"), [("gitlab", "!1"), ("github", "#1")])
def test_the_plan_page_speaks_the_forges_words_and_lists_variables_by_name(
    viewer_client: Client, monkeypatch: pytest.MonkeyPatch, kind: str, mark: str
) -> None:
    forge = f.forge(kind)
    app = f.repository("acme/app", on=forge)
    api = f.repository("acme/api", on=forge)
    api.default_branch = "trunk"
    api.save()
    targets = [
        (
            _planned(
                "api",
                label="API service",
                variables={"STAGE": "staging"},
                masked_variables={"TOKEN": "hunter2"},
            ),
            api,
            "",
            SimpleNamespace(reason="allowed"),
        ),
        (_planned("web", ref="release/2"), api, "", SimpleNamespace(reason="ok")),
    ]
    result = SimpleNamespace(
        change=SimpleNamespace(head_sha="a" * 40, author="dave"),
        error="",
        targets=targets,
        plan=SimpleNamespace(excluded=[]),
    )
    monkeypatch.setattr("dashboard.views.dry_run", lambda *args: result)
    html = viewer_client.get(f"/repositories/{app.pk}/changes/1/plan/").content.decode()
    assert f"plan for {mark}</span>" in html and f"acme/app {mark} would trigger" in html
    assert "change 1" not in html
    api_row = html.split("<strong>API service</strong>")[1].split("</tr>")[0]
    assert '<code class="muted">api</code>' in api_row
    assert '<code>trunk</code> <span class="muted">(default branch)</span>' in api_row
    assert "<dt><code>STAGE</code></dt><dd><code>staging</code></dd>" in api_row
    assert '<dt><code>TOKEN</code></dt><dd class="muted">masked</dd>' in api_row
    assert "hunter2" not in html
    web_row = html.split("<strong>web</strong>")[1].split("</tr>")[0]
    assert "<code>release/2</code>" in web_row and "default branch" not in web_row


def test_the_release_view_keeps_paths_as_written_and_says_what_counts(
    viewer_client: Client,
) -> None:
    chain = f.chain("acme/app", number=2, target="main", status="success")
    f.run(chain, "api", project="Acme/API", status="success", ref="main")
    html = viewer_client.get("/releases/?ref=main").content.decode()
    assert "1 project with chains for <code>main</code>" in html
    assert "pushed or tagged as <code>main</code>" in html
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert "<code>Acme/API</code></a></th>" in head
    css = (Path(__file__).parents[2] / "static/css/app.css").read_text()
    assert ".matrix th.col-project { white-space: nowrap; text-transform: none;" in css
