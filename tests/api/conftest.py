"""Personas and a small world.

Personas (tests/factories.py): anonymous; viewer (view on acme/*); operator (view, retry,
cancel, trigger on acme/*); admin (superuser); outsider (signed in, no grant). Each has an API
client with a token.

World: chains in acme/app, one of which has a run in secret/vault (a project only the admin may
view), and a chain of secret/vault itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from chains.models import Chain, Run
from chains.status import Status
from tests import factories as f

PERSONAS = ("anonymous", "viewer", "operator", "admin", "outsider")
SECRET_VALUE = "hunter2-masked-value"
VAULT_SECRETS = ("secret/vault", "vault-branch", "https://vault.internal.example", "vault-key")


@pytest.fixture(autouse=True)
def _fast(fast_passwords: None) -> None:
    """Users of these tests sign in with passwords: hash them cheaply."""


@dataclass
class World:
    app: Chain  # acme/app: build (success) → deploy (success); lib (failed); docs (running)
    build: Run
    deploy: Run
    lib: Run
    docs: Run
    mixed: Chain  # acme/app: web (success) and vault (failed, in secret/vault)
    web: Run
    vault: Run
    secret: Chain  # secret/vault itself
    secret_run: Run


@pytest.fixture
def world(db: None) -> World:
    secret = f.chain("secret/vault", age=timedelta(minutes=30), title="Rotate keys")
    secret_run = f.run(secret, "vault-ui", project="secret/vault-ui", status=Status.FAILED)

    mixed = f.chain("acme/app", age=timedelta(minutes=20), status=Status.FAILED)
    web = f.run(mixed, "web", status=Status.SUCCESS)
    vault = f.run(
        mixed,
        "vault-key",
        project="secret/vault",
        status=Status.FAILED,
        ref="vault-branch",
        label="vault-key",
        variables={"VAULT_ADDR": "https://vault.internal.example"},
        masked_variables={"VAULT_TOKEN": SECRET_VALUE},
        error="secret/vault: job failed",
        web_url="https://gl.example.com/secret/vault/-/pipelines/7",
        attempt=2,
    )
    f.attempt(vault, 1, error="secret/vault: timed out")

    app = f.chain("acme/app", age=timedelta(minutes=5), title="Add the widget")
    build = f.run(app, "build", status=Status.SUCCESS)
    deploy = f.run(app, "deploy", status=Status.SUCCESS, parent=build)
    lib = f.run(
        app,
        "lib",
        status=Status.FAILED,
        masked_variables={"DEPLOY_KEY": SECRET_VALUE},
        variables={"UPSTREAM_REF": app.upstream_ref, "STAGE": "test"},
        attempt=2,
    )
    f.attempt(lib, 1)
    docs = f.run(app, "docs", status=Status.RUNNING)
    return World(app, build, deploy, lib, docs, mixed, web, vault, secret, secret_run)


@dataclass
class People:
    users: dict[str, User | None]
    clients: dict[str, APIClient]

    def __getitem__(self, persona: str) -> APIClient:
        return self.clients[persona]


@pytest.fixture
def people(db: None) -> People:
    users: dict[str, User | None] = {p: f.persona(p) for p in PERSONAS}
    clients = {}
    for persona, user in users.items():
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {f.token(user)}")
        clients[persona] = client
    return People(users, clients)
