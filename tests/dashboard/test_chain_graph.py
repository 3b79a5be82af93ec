"""The chain graph (issue 13 part 5): runs in columns by nesting and ``depends_on``, status as an
icon and a word, a text alternative, redaction of private projects, inside the live block; and
the "Retry failed" of a superseded chain says that it retries an old commit."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from chains.models import Chain
from tests import factories as f
from tests.dashboard.conftest import HX

pytestmark = pytest.mark.django_db


def graph_of(html: str) -> str:
    return html.split('<section class="chain-graph"')[1].split("</section>")[0]


def seed() -> Chain:
    chain = f.chain("acme/app", number=12, status="failed")
    build = f.run(chain, "build", status="success", label="Build images")
    f.run(chain, "deploy", status="failed", depends_on=["build"])
    f.run(chain, "vault", project="vault/secret-infra", status="running", label="Vault secrets")
    f.run(chain, "e2e", status="running", parent=build, project="acme/e2e")
    return chain


def test_graph_columns_edges_and_words(viewer_client: Client) -> None:
    chain = seed()
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    graph = graph_of(html)
    assert '<svg class="graph" role="group"' in graph
    # Upstream first, then: build (column 2), deploy after build (depends_on: column 3), e2e
    # triggered by build (column 3).
    text = graph.split('<details class="graph-text">')[1]
    assert "Upstream: acme/app !12: failed" in text
    assert "Build images: success, triggered by acme/app !12 (column 2)" in text
    assert "deploy: failed, triggered by acme/app !12, waits for Build images (column 3)" in text
    assert "e2e: running, triggered by Build images (column 3)" in text
    assert graph.count('class="edge edge-nest"') == 4
    assert graph.count('class="edge edge-needs"') == 1
    # Never colour alone: each node has its icon and its status word, and a link to its row.
    deploy = re.search(
        r'<a class="gnode" href="#run-(\d+)" aria-label="deploy: failed[^"]*"', graph
    )
    assert deploy is not None and f'id="run-{deploy.group(1)}"' in html
    assert '<text class="gword"' in graph and ">failed</text>" in graph and "✕" in graph


def test_private_runs_are_redacted_in_the_graph(db: None) -> None:
    reader = f.user("vic")
    f.grant(reader, "acme/*", "view")
    chain = seed()
    client = Client()
    client.force_login(reader)
    html = client.get(f"/chains/{chain.pk}/").content.decode()
    graph = graph_of(html)
    assert "a private project: running" in graph
    for word in ("vault", "Vault", "secret"):
        assert word not in graph


def test_the_graph_is_part_of_the_live_block(viewer_client: Client) -> None:
    chain = seed()
    part = viewer_client.get(f"/chains/{chain.pk}/?since=old", headers=HX).content.decode()
    assert part.lstrip().startswith('<section id="chain-live"')
    assert '<section class="chain-graph"' in part


def test_a_chain_without_runs_has_no_graph(viewer_client: Client) -> None:
    chain = f.chain("acme/app", number=3, status="success")
    html = viewer_client.get(f"/chains/{chain.pk}/").content.decode()
    assert "chain-graph" not in html


def test_retry_failed_on_a_superseded_chain_names_the_old_commit(manager_client: Client) -> None:
    old = f.chain("acme/app", number=5, status="failed")
    f.run(old, "deploy", status="failed")
    html = manager_client.get(f"/chains/{old.pk}/").content.decode()
    button = html.split('id="retry-failed"')[1].split("</button>")[0]
    assert "old commit" not in button  # the latest chain: a plain retry
    newer = f.chain("acme/app", number=5, status="running")
    Chain.objects.filter(pk=old.pk).update(superseded_by=newer)
    html = manager_client.get(f"/chains/{old.pk}/").content.decode()
    button = html.split('id="retry-failed"')[1].split("</button>")[0]
    assert f"on old commit <code>{old.head_sha[:8]}</code>" in button
    form = html.split('id="retry-failed"')[0].rsplit("<form", 1)[1]
    assert "hx-confirm=" in form and "on the old commit" in form


def test_a_failure_that_does_not_fail_the_chain_is_marked_in_the_graph(
    viewer_client: Client,
) -> None:
    chain = f.chain("acme/app", number=13, status="success")
    f.run(chain, "e2e", project="acme/e2e", status="failed", quarantine_reason="flaky <b>")
    f.run(chain, "lint", status="failed", soft_fail=True)
    f.run(chain, "unit", status="failed")
    graph = graph_of(viewer_client.get(f"/chains/{chain.pk}/").content.decode())
    text = graph.split('<details class="graph-text">')[1]
    assert "e2e: failed (quarantined: does not fail the chain)" in text
    assert "lint: failed (soft-failed: does not fail the chain)" in text
    assert "unit: failed, triggered by" in text  # a plain failure: no mark
    assert graph.count("gbox-failed gbox-soft") == 2
    assert graph.count(">failed · quarantined</text>") == 1
    assert "<b>" not in graph  # the reason is not in the graph, and never unescaped
