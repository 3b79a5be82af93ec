"""Shared test helpers. Tests that need PostgreSQL or Redis use the `services` fixture: it fails
under CI=true when they are missing and skips otherwise (a laptop without them)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.fakes.forge import FakeForge
from tests.fakes.forge import install as install_forge
from tests.fakes.tasks import Kicks
from tests.fakes.tasks import install as install_kicks

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def load_fixture(forge: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / forge / f"{name}.json").read_text())


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        address = (parsed.hostname or "127.0.0.1", parsed.port or default_port)
        with socket.create_connection(address, 1):
            return True
    except OSError:
        return False


def missing_services() -> list[str]:
    missing = []
    database: Any = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        missing.append("PostgreSQL (set DATABASE_URL=postgres://…)")
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        missing.append("Redis (set CELERY_BROKER_URL=redis://…)")
    elif not _reachable(broker, 6379):
        missing.append(f"Redis at {broker}")
    return missing


@pytest.fixture(scope="session")
def services() -> None:
    missing = missing_services()
    if missing:
        message = "needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true, so this fails instead of skipping")
        pytest.skip(message)


# -- the engine without a forge or a broker -------------------------------------------------------


@pytest.fixture
def fake_forge(monkeypatch: pytest.MonkeyPatch) -> FakeForge:
    """A FakeForge behind `bots.forges.registry.forge_for` (tests/fakes/forge.py); the per-process
    caches that would remember another test's forge answers are emptied."""
    from bots import permissions
    from bots.engine import planning

    for module, name in ((planning, "_configs"), (permissions, "_looked_up")):
        if isinstance(getattr(module, name, None), dict):
            monkeypatch.setattr(module, name, {})
    cache.clear()
    return install_forge(monkeypatch, FakeForge())


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> Kicks:
    """Every Celery task enqueued during the test, recorded, not sent (tests/fakes/tasks.py)."""
    return install_kicks(monkeypatch)
