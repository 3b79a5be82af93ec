"""Masked values stay secret.

- GitLab's Pipeline Hook echoes the variables a pipeline was started with: the masked ones
  Baton sent were stored in clear in the delivery's payload and shown in the admin.
- Masked variables of admin rules were stored, shown and audited in clear, and a rule's
  variables reached every target, a developer's own `project: self` included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bots import router
from bots.engine.planning import with_rules
from bots.inbound.table import INBOUND
from chains.config import parse_config
from chains.models import AuditEvent, Chain, Delivery, Repository, Rule, Run
from chains.planner import Change, plan
from tests.security.change_fakes import deliver, gitlab_forge

SENT = "deploy-token-s3cret-1"  # a masked variable Baton sent to a run
RULED = "rule-token-s3cret-2"  # a masked variable of an admin rule
RULE = f"""\
variables:
  DEPLOY_TOKEN: {{value: {RULED}, masked: true}}
downstream:
  - key: deploy
    project: acme/deploy
"""


def _raw(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column}::text FROM {table}")  # noqa: S608 - fixed names
        return " ".join(str(row[0]) for row in cursor.fetchall())


@pytest.fixture
def run(db: None) -> Run:
    forge = gitlab_forge()
    app = Repository.objects.create(forge=forge, path="acme/app")
    api = Repository.objects.create(forge=forge, path="acme/api", remote_id="5")
    chain = Chain.objects.create(
        forge=forge, repository=app, change_number=7, head_sha="a" * 40, upstream_ref="r"
    )
    return Run.objects.create(
        chain=chain,
        key="api",
        repository=api,
        ref="main",
        masked_variables={"API_TOKEN": SENT},
        dispatch=Run.Dispatch.SENT,
    )


def _pipeline_hook(run_id: int, *variables: tuple[str, str]) -> dict[str, Any]:
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 900,
            "name": f"deploy with {SENT}",
            "status": "running",
            "created_at": timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
            "variables": [
                {"key": "BATON_RUN_ID", "value": str(run_id)},
                *({"key": k, "value": v} for k, v in variables),
            ],
            "url": "https://gl.example.com/acme/api/-/pipelines/900",
        },
        "project": {"id": 5, "path_with_namespace": "acme/api", "web_url": "https://gl/acme/api"},
        "builds": [{"id": 1, "name": "deploy", "status": "running"}],
    }


def test_masked_values_sent_to_a_run_are_not_stored_from_its_pipeline_hook(
    run: Run, client: Client
) -> None:
    hook = _pipeline_hook(
        run.pk, ("BATON_RUN_NONCE", run.nonce), ("API_TOKEN", SENT), ("PLAIN", "visible")
    )
    delivery = deliver(client, hook, "p1", "Pipeline Hook")
    assert SENT not in _raw("chains_delivery", "payload")
    variables = {v["key"]: v["value"] for v in delivery.payload["object_attributes"]["variables"]}
    assert variables == {
        "BATON_RUN_ID": str(run.pk),
        "BATON_RUN_NONCE": run.nonce,
        "API_TOKEN": "••••",
        "PLAIN": "visible",
    }
    assert delivery.payload["object_attributes"]["name"] == "deploy with ••••"
    # What Baton needs from it still works: the pipeline is matched to its run.
    router.process(delivery.pk)
    run.refresh_from_db()
    assert (run.remote_id, run.status) == ("900", "running")


def test_a_sibling_runs_masked_value_is_taken_out_and_the_runs_flag_follows_its_saves(
    run: Run, client: Client
) -> None:
    """The scrub reads the chain's runs that hold masked variables (``has_masked_variables``),
    so a chain of many plain runs costs one query per hook, not a decryption per run: the flag
    must follow every save, or a secret would be stored in clear."""
    sibling_value = "sibling-s3cret-value-3"
    plain = Run.objects.create(chain=run.chain, key="plain", repository=run.repository, ref="main")
    sibling = Run.objects.create(
        chain=run.chain,
        key="sibling",
        repository=run.repository,
        ref="main",
        masked_variables={"OTHER_TOKEN": sibling_value},
    )
    flags = dict(Run.objects.values_list("key", "has_masked_variables"))
    assert flags == {"api": True, "plain": False, "sibling": True}
    plain.masked_variables = {"LATER": "later-s3cret-value-4"}
    plain.save(update_fields=["masked_variables"])
    assert Run.objects.get(pk=plain.pk).has_masked_variables
    sibling.masked_variables = {}
    sibling.save()
    assert not Run.objects.get(pk=sibling.pk).has_masked_variables
    hook = _pipeline_hook(run.pk, ("BATON_RUN_NONCE", run.nonce), ("SEEN", "later-s3cret-value-4"))
    deliver(client, hook, "p-sibling", "Pipeline Hook")
    assert "later-s3cret-value-4" not in _raw("chains_delivery", "payload")


def test_masked_rule_values_are_not_stored_from_any_pipeline_hook(run: Run, client: Client) -> None:
    Rule.objects.create(name="deploy", projects="*", config=RULE)
    hook = _pipeline_hook(12345, ("DEPLOY_TOKEN", RULED), ("OTHER", f"x-{RULED}-y"))
    deliver(client, hook, "p2", "Pipeline Hook")
    assert RULED not in _raw("chains_delivery", "payload")


def test_variables_of_events_baton_does_not_read_are_never_stored(db: None, client: Client) -> None:
    # GitHub echoes what Baton dispatched (client_payload, workflow inputs) to the target's hook.
    import hashlib
    import hmac

    from chains.models import Forge

    Forge.objects.create(
        kind="github", slug="gh", name="GH", api_url="https://gh", token="t", webhook_secret="s"
    )
    body = json.dumps(
        {"action": "baton", "client_payload": {"DEPLOY_TOKEN": SENT, "BATON_RUN_ID": "1"}}
    ).encode()
    signature = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    response = client.post(
        "/hooks/gh/",
        data=body,
        content_type="application/json",
        headers={
            "X-Hub-Signature-256": signature,
            "X-GitHub-Event": "repository_dispatch",
            "X-GitHub-Delivery": "d1",
        },
    )
    assert response.status_code == 202
    assert SENT not in _raw("chains_delivery", "payload")


def test_a_delivery_stored_in_clear_is_scrubbed_when_processed(run: Run) -> None:
    # As deliveries were stored before intake took masked values out.
    hook = _pipeline_hook(run.pk, ("API_TOKEN", SENT))
    delivery = Delivery.objects.create(
        forge=run.chain.forge, event="Pipeline Hook", dedupe_key="old", payload=hook
    )
    router.process(delivery.pk)
    assert SENT not in _raw("chains_delivery", "payload")


def test_the_scrub_after_the_match_reads_the_event_the_handler_read(
    run: Run, monkeypatch: Any
) -> None:
    """The payload is parsed once per attempt: the scrub after the match takes the handler's
    event (each parse of a pipeline hook was a tenth of a repeat hook's cost in the worker)."""
    inbound = INBOUND[run.chain.forge.kind]
    parsed: list[str] = []
    parse = inbound.parse

    def counted(name: str, body: Any) -> Any:
        parsed.append(name)
        return parse(name, body)

    monkeypatch.setattr(inbound, "parse", counted)
    hook = _pipeline_hook(run.pk, ("API_TOKEN", SENT))
    delivery = Delivery.objects.create(
        forge=run.chain.forge, event="Pipeline Hook", dedupe_key="once", payload=hook
    )
    router.process(delivery.pk)
    assert parsed == ["Pipeline Hook"]
    assert SENT not in _raw("chains_delivery", "payload")


def test_the_admin_never_shows_variable_values_of_a_payload(run: Run, admin_client: Client) -> None:
    unknown = "a-value-baton-never-sent"
    delivery = Delivery.objects.create(
        forge=run.chain.forge,
        event="Pipeline Hook",
        dedupe_key="d",
        payload=_pipeline_hook(run.pk, ("SOMEONE_ELSES_SECRET", unknown)),
    )
    page = admin_client.get(reverse("admin:chains_delivery_change", args=[delivery.pk]))
    html = page.content.decode()
    assert "SOMEONE_ELSES_SECRET" in html
    assert unknown not in html


# -- admin rules -------------------------------------------------------------------------------


def _rule_form(**changes: Any) -> dict[str, Any]:
    return {"name": "deploy", "projects": "*", "enabled": "on", "position": "0", **changes}


def test_a_masked_rule_value_is_encrypted_never_shown_and_never_audited(
    db: None, admin_client: Client
) -> None:
    add = admin_client.post(reverse("admin:chains_rule_add"), _rule_form(config=RULE))
    assert add.status_code == 302
    rule = Rule.objects.get()
    assert RULED not in _raw("chains_rule", "config") + _raw("chains_rule", "secrets")
    assert 'DEPLOY_TOKEN: {value: "••••", masked: true}' in rule.config
    page = admin_client.get(reverse("admin:chains_rule_change", args=[rule.pk])).content.decode()
    assert RULED not in page and "••••" in page
    # Saved again as shown (•••• left in place): the value is kept.
    again = admin_client.post(
        reverse("admin:chains_rule_change", args=[rule.pk]),
        _rule_form(config=rule.config, position="1"),
    )
    assert again.status_code == 302
    [variable] = Rule.objects.get().parsed().variables
    assert variable.value == RULED
    # A new value replaces it, and the audit log says only that it changed.
    admin_client.post(
        reverse("admin:chains_rule_change", args=[rule.pk]),
        _rule_form(config=RULE.replace(RULED, "next-s3cret-3")),
    )
    assert Rule.objects.get().parsed().variables[0].value == "next-s3cret-3"
    events = json.dumps(
        [[e.before, e.after, e.detail] for e in AuditEvent.objects.filter(surface="admin")]
    )
    assert RULED not in events and "next-s3cret-3" not in events
    assert AuditEvent.objects.filter(action="rule.change").count() == 2


def test_a_hidden_value_with_nothing_stored_is_refused_in_words(
    db: None, admin_client: Client
) -> None:
    page = admin_client.post(
        reverse("admin:chains_rule_add"), _rule_form(config=RULE.replace(RULED, "••••"))
    )
    assert page.status_code == 200
    assert "line 2: variables.DEPLOY_TOKEN.value: the value is hidden" in page.content.decode()
    assert not Rule.objects.exists()


def test_rule_variables_reach_only_the_rules_own_targets(db: None) -> None:
    Rule.objects.create(name="deploy", projects="acme/*", config=RULE)
    # A developer's own file: a child pipeline in their project, which they control.
    mine = parse_config("downstream:\n  - {key: mine, project: self}\n")
    change = Change(
        forge="gl",
        project="acme/app",
        project_url="",
        number=7,
        url="",
        source_branch="feature",
        target_branch="main",
        head_sha="a" * 40,
        upstream_ref="refs/merge-requests/7/head",
    )
    runs = {run.key: run for run in plan(change, with_rules(mine, "acme/app")).runs}
    assert "DEPLOY_TOKEN" not in {**runs["mine"].variables, **runs["mine"].masked_variables}
    assert runs["deploy"].masked_variables == {"DEPLOY_TOKEN": RULED}
