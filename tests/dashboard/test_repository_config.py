"""A repository's current `.baton.yml` and admin rules on the dashboard and in the API: read
through the forge at the default branch, remembered for a bounded time, errors in words with
their line, masked values never shown, private names never leaked."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.test import Client

from chains.models import Rule
from dashboard import repository_config
from tests import factories as f
from tests.dashboard.conftest import HX
from tests.fakes.forge import FakeForge, transient

pytestmark = pytest.mark.django_db


def viewer_user() -> User:
    person = f.persona("viewer")
    assert person is not None
    return person


def admin_user() -> User:
    person = f.persona("admin")
    assert person is not None
    return person


GOOD = """\
variables:
  DEPLOY_TOKEN: {value: "s3cret-value", masked: true}
downstream:
  - key: api
    project: acme/api
  - key: vault-sync
    label: Vault sync
    project: secret/vault
"""
BROKEN = """\
downstream:
  - key: api
    project: acme/api
    strategy: sometimes
"""


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch) -> FakeForge:
    fake = FakeForge()
    monkeypatch.setattr(repository_config, "forge_for", lambda record: fake)
    caches["default"].clear()
    return fake


@pytest.fixture
def viewer_client() -> Client:
    client = Client()
    client.force_login(viewer_user())
    return client


def test_valid_file_shown_with_masked_values_and_private_targets_hidden(
    forge: FakeForge, viewer_client: Client
) -> None:
    app = f.repository("acme/app")
    f.repository("acme/api")
    f.repository("secret/vault")
    forge.add_file("acme/app", ".baton.yml", "main", GOOD)
    response = viewer_client.get(f"/repositories/{app.pk}/config/", headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Valid" in html and "acme/api" in html and "on <code>main</code>" in html
    assert "s3cret-value" not in html and "••••" in html
    assert "secret/vault" not in html and "vault-sync" not in html and "Vault sync" not in html
    assert "a private project" in html
    # an administrator sees every name, still not the masked value
    admin = Client()
    admin.force_login(admin_user())
    html = admin.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "secret/vault" in html and "s3cret-value" not in html


def test_invalid_file_names_its_line(forge: FakeForge, viewer_client: Client) -> None:
    app = f.repository("acme/app")
    forge.add_file("acme/app", ".baton.yml", "main", BROKEN)
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert (
        "This file is invalid" in html
        and "line 4: downstream[0].strategy" in html
        and "strategy" in html
    )
    assert "error-line" in html


def test_missing_file_and_forge_errors_in_words(forge: FakeForge, viewer_client: Client) -> None:
    app = f.repository("acme/app")
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "has no <code>.baton.yml</code>" in html
    caches["default"].clear()
    forge.fail("read_file", transient())
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "could not read .baton.yml from the forge just now" in html
    assert "502" in html


def test_file_is_remembered_for_a_bounded_time(
    forge: FakeForge, viewer_client: Client, settings: object
) -> None:
    app = f.repository("acme/app")
    forge.add_file("acme/app", ".baton.yml", "main", GOOD)
    for _ in range(3):
        viewer_client.get(f"/repositories/{app.pk}/config/")
    assert len(forge.called("read_file")) == 1
    settings.BATON_REPOSITORY_CONFIG_TTL = 0  # type: ignore[attr-defined]
    viewer_client.get(f"/repositories/{app.pk}/config/")
    assert len(forge.called("read_file")) == 2


def test_rules_that_apply_without_secrets(forge: FakeForge, viewer_client: Client) -> None:
    app = f.repository("acme/app")
    f.repository("acme/audit")
    Rule.objects.create(
        name="Audit everything",
        projects="acme/*",
        config="variables:\n  AUDIT_KEY: {value: rule-secret-value, masked: true}\n"
        "downstream:\n  - key: audit\n    project: acme/audit\n",
    )
    Rule.objects.create(
        name="Elsewhere", projects="other/*", config="downstream:\n  - project: other/x\n"
    )
    Rule.objects.create(
        name="Vault rule", projects="*", config="downstream:\n  - project: secret/vault\n"
    )
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "Audit everything" in html and "acme/audit" in html and "••••" in html
    assert "rule-secret-value" not in html
    assert "Elsewhere" not in html
    assert "Vault rule" in html and "secret/vault" not in html


def test_hidden_repository_is_a_404(forge: FakeForge, viewer_client: Client) -> None:
    vault = f.repository("secret/vault")
    assert viewer_client.get(f"/repositories/{vault.pk}/config/").status_code == 404
    assert not forge.called("read_file")


def test_a_target_baton_does_not_know_counts_as_private(
    forge: FakeForge, viewer_client: Client
) -> None:
    app = f.repository("acme/app")
    forge.add_file("acme/app", ".baton.yml", "main", GOOD.replace("acme/api", "github:acme/api"))
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "acme/api" not in html and "a private project" in html
    # on the same forge, the reader's grants decide (acme/*)
    caches["default"].clear()
    forge.add_file("acme/app", ".baton.yml", "main", GOOD.replace("acme/api", "acme/new"))
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "acme/new" in html


def test_invalid_file_still_masks_and_hides(forge: FakeForge, viewer_client: Client) -> None:
    app = f.repository("acme/app")
    f.repository("secret/vault")
    broken = GOOD + "    strategy: sometimes\n"
    forge.add_file("acme/app", ".baton.yml", "main", broken)
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "This file is invalid" in html and "line 9:" in html and "error-line" in html
    assert "s3cret-value" not in html and "••••" in html
    assert "secret/vault" not in html and "Vault sync" not in html


def test_text_that_is_not_yaml_shows_only_its_error(
    forge: FakeForge, viewer_client: Client
) -> None:
    app = f.repository("acme/app")
    forge.add_file("acme/app", ".baton.yml", "main", "downstream: [\n  project: secret/vault\n")
    html = viewer_client.get(f"/repositories/{app.pk}/config/").content.decode()
    assert "This file is invalid" in html and "not valid YAML" in html
    assert "secret/vault" not in html
