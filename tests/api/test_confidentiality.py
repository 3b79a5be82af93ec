"""A run whose project the user may not view, in a chain the user may view, is a private project;
masked variables never show their values, and their names only where the run may be viewed."""

from __future__ import annotations

import pytest

from tests.api.conftest import SECRET_VALUE, VAULT_SECRETS, People, World

API = "/api/v1"
MASK = "••••"


def _vault(runs: list[dict[str, object]], world: World) -> dict[str, object]:
    return next(r for r in runs if r["id"] == world.vault.pk)


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_a_run_in_a_project_one_may_not_view_is_a_private_project(
    world: World, people: People, persona: str
) -> None:
    client = people[persona]
    detail = client.get(f"{API}/chains/{world.mixed.pk}/")
    listed = client.get(f"{API}/runs/", {"chain": world.mixed.pk})
    one = client.get(f"{API}/runs/{world.vault.pk}/")
    for vault in (_vault(detail.json()["runs"], world), _vault(listed.json()["results"], world)):
        assert vault["private"] is True
        assert vault["project"] == "private project"
        for field in ("repository", "forge", "key", "label", "ref", "workflow", "variables"):
            assert vault[field] is None, field
        for field in ("masked_variables", "web_url", "remote_id", "error", "depends_on"):
            assert vault[field] is None, field
        assert vault["status"] == "failed"  # what happened is not secret; where it happened is
    assert one.json()["attempts"] == [
        {
            "number": 1,
            "status": "failed",
            "remote_id": None,
            "web_url": None,
            "error": None,
            "triggered_at": one.json()["attempts"][0]["triggered_at"],
            "started_at": one.json()["attempts"][0]["started_at"],
            "finished_at": one.json()["attempts"][0]["finished_at"],
        }
    ]
    for response in (detail, listed, one):
        text = response.content.decode()
        for secret in (*VAULT_SECRETS, SECRET_VALUE, "VAULT_TOKEN", "VAULT_ADDR"):
            assert secret not in text, secret
    # the visible run beside it is whole
    web = next(r for r in detail.json()["runs"] if r["key"] == "web")
    assert web["project"] == "acme/web" and web["private"] is False


def test_the_admin_sees_the_private_project(world: World, people: People) -> None:
    vault = people["admin"].get(f"{API}/runs/{world.vault.pk}/").json()
    assert vault["project"] == "secret/vault"
    assert vault["ref"] == "vault-branch"
    assert vault["variables"] == {"VAULT_ADDR": "https://vault.internal.example"}
    assert vault["masked_variables"] == {"VAULT_TOKEN": MASK}
    assert vault["attempts"][0]["web_url"].startswith("https://gl.example.com/secret/vault/")


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin"])
def test_masked_values_never_appear(world: World, people: People, persona: str) -> None:
    client = people[persona]
    pages = [
        client.get(f"{API}/chains/{world.app.pk}/"),
        client.get(f"{API}/chains/{world.mixed.pk}/"),
        client.get(f"{API}/runs/"),
        client.get(f"{API}/runs/{world.lib.pk}/"),
        client.get(f"{API}/runs/{world.vault.pk}/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET_VALUE not in page.content.decode()
    lib = pages[3].json()
    assert lib["masked_variables"] == {"DEPLOY_KEY": MASK}
    assert lib["variables"] == {"UPSTREAM_REF": world.app.upstream_ref, "STAGE": "test"}


def test_filtering_runs_by_a_private_project_finds_nothing(world: World, people: People) -> None:
    for field in (
        {"project": "secret/vault"},
        {"project": "secret/vault", "chain": world.mixed.pk},
    ):
        assert people["viewer"].get(f"{API}/runs/", field).json()["count"] == 0
    assert people["admin"].get(f"{API}/runs/", {"project": "secret/vault"}).json()["count"] == 1
    viewer_gl = people["viewer"].get(f"{API}/runs/", {"forge": "gl"}).json()
    assert world.vault.pk not in {r["id"] for r in viewer_gl["results"]}


def test_a_private_run_cancel_refusal_does_not_name_it(world: World, people: People) -> None:
    response = people["operator"].post(f"{API}/runs/{world.vault.pk}/cancel/")
    assert response.status_code == 403
    assert response.json() == {"detail": "opal may not cancel a private project this touches"}


def test_chain_search_does_not_look_into_private_runs(world: World, people: People) -> None:
    found = people["viewer"].get(f"{API}/chains/", {"search": "vault"}).json()
    assert found["count"] == 0
