"""The audit log: before/after for grant, rule and team changes, and the CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.test import Client
from django.urls import reverse

from chains import audit
from chains.models import AuditEvent, Grant, Rule
from tests.console.conftest import RULE, World, admin_events


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()  # type: ignore[arg-type]
    return list(csv.reader(io.StringIO(text)))


def test_a_grant_change_is_recorded_with_before_and_after(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:chains_grant_change", args=[world.grant.pk])
    response = admin_client.post(
        url,
        {
            "team": world.team.pk,
            "user": "",
            "forge": world.gitlab.pk,
            "projects": "acme/**",
            "actions": ["trigger", "view"],
        },
    )
    assert response.status_code == 302
    grant = Grant.objects.get(pk=world.grant.pk)
    assert grant.actions == ["view", "trigger"]
    [event] = admin_events("grant.change")
    assert event.actor == "admin" and event.user is not None
    assert event.remote_addr == "127.0.0.1"
    assert event.target == f"grant #{grant.pk} release: view, trigger on acme/**"
    assert event.before == {"actions": ["view"], "forge": None, "projects": "acme/*"}
    assert event.after == {
        "actions": ["view", "trigger"],
        "forge": "GitLab (GitLab)",
        "projects": "acme/**",
    }


def test_a_grant_needs_one_grantee_and_an_action(admin_client: Client, world: World) -> None:
    add = reverse("admin:chains_grant_add")
    both = admin_client.post(
        add, {"team": world.team.pk, "user": world.member.pk, "projects": "*", "actions": []}
    )
    form = both.context["adminform"].form
    assert form.errors["actions"] == ["Tick at least one action."]
    exactly_one = "Grant to a team, to a user or to a forge group: fill in exactly one."
    assert exactly_one in form.non_field_errors()
    unknown = admin_client.post(add, {"user": world.member.pk, "projects": "*", "actions": ["x"]})
    assert "Select a valid choice" in unknown.context["adminform"].form.errors["actions"][0]
    assert Grant.objects.count() == 1 and not admin_events("grant.add")


def test_a_rule_change_is_recorded_and_an_invalid_rule_names_line_and_field(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:chains_rule_change", args=[world.rule.pk])
    form = {"name": "api on release", "projects": "acme/*", "enabled": "on", "position": "0"}
    bad = admin_client.post(url, form | {"config": "downstream:\n  - {key: a, project: acme}\n"})
    assert bad.status_code == 200
    [error] = bad.context["adminform"].form.errors["config"]
    assert error.startswith("line 2: downstream[0].project:")
    assert "line 2: downstream[0].project" in bad.content.decode()
    assert Rule.objects.get(pk=world.rule.pk).config == RULE

    config = RULE.replace("release", "main").strip()
    assert admin_client.post(url, form | {"config": config}).status_code == 302
    [event] = admin_events("rule.change")
    assert event.before == {"config": RULE} and event.after == {"config": config}


def test_list_edits_of_rules_are_recorded(admin_client: Client, world: World) -> None:
    response = admin_client.post(
        reverse("admin:chains_rule_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": world.rule.pk,
            "form-0-position": "5",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    [event] = admin_events("rule.change")
    assert event.before == {"enabled": True, "position": 0}
    assert event.after == {"enabled": False, "position": 5}


def test_the_audit_page_shows_before_and_after(admin_client: Client, world: World) -> None:
    event = audit.record("grant.change", actor="admin", surface="admin", target="grant #1")
    AuditEvent.objects.filter(pk=event.pk).update(
        before={"actions": ["view"]}, after={"actions": ["view", "deploy"]}
    )
    page = admin_client.get(reverse("admin:chains_auditevent_change", args=[event.pk]))
    html = page.content.decode()
    assert '<table class="baton-changes">' in html
    assert "[&quot;view&quot;, &quot;deploy&quot;]" in html
    listing = admin_client.get(reverse("admin:chains_auditevent_changelist"))
    assert "Export CSV" in listing.content.decode()


def test_csv_export_of_the_filtered_list_and_of_a_selection(
    admin_client: Client, world: World
) -> None:
    first = audit.record("team.change", actor="=HYPERLINK(1)", surface="admin", target="team #1")
    AuditEvent.objects.filter(pk=first.pk).update(before={"members": []}, after={"members": ["r"]})
    export = reverse("admin:chains_auditevent_export")
    rows = _csv(admin_client.get(export + "?surface__exact=admin"))
    assert rows[0] == [
        "at",
        "actor",
        "user",
        "surface",
        "action",
        "target",
        "chain",
        "run",
        "remote_addr",
        "before",
        "after",
        "detail",
    ]
    assert [r[1:6] for r in rows[1:]] == [["'=HYPERLINK(1)", "", "admin", "team.change", "team #1"]]
    assert rows[1][9:11] == ['{"members": []}', '{"members": ["r"]}']

    everything = _csv(admin_client.get(export))
    assert {r[4] for r in everything[1:]} == {"team.change", "chain.start"}
    chain_start = next(r for r in everything if r[4] == "chain.start")
    assert chain_start[6] == str(world.chain.pk)

    searched = _csv(admin_client.get(export + "?q=acme/app"))
    assert [r[4] for r in searched[1:]] == ["chain.start"]

    selected = admin_client.post(
        reverse("admin:chains_auditevent_changelist"),
        {"action": "export_csv", "_selected_action": [first.pk]},
    )
    assert [r[4] for r in _csv(selected)[1:]] == ["team.change"]
    assert admin_client.get(export + "?nonsense=1").status_code == 400
