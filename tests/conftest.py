"""Shared test helpers. Tests that need PostgreSQL or Redis use the `services` fixture: it fails
under CI=true when they are missing and skips otherwise (a laptop without them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

import pytest
from django.conf import settings

from bench import smoke
from tests.fakes.forge import FakeForge
from tests.fakes.forge import install as install_forge
from tests.fakes.tasks import Kicks
from tests.fakes.tasks import install as install_kicks

if TYPE_CHECKING:
    from django.test import Client

    from chains.models import Forge

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def load_fixture(forge: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / forge / f"{name}.json").read_text())


# The event header a forge sends with each fixture, by the part of its name before "__".
GITLAB_EVENTS = {
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
    "pipeline": "Pipeline Hook",
    "job": "Job Hook",
}


def post_webhook(
    client: Client,
    forge: Forge,
    fixture_name: str,
    *,
    secret: str | None = None,
    key: str | None = None,
    event: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str | None] | None = None,
    **overrides: Any,
) -> Any:  # the test client's response (json(), wsgi_request)
    """POST the fixture ``tests/fixtures/webhooks/<forge kind>/<fixture_name>.json`` to
    ``/hooks/<slug>/`` as the forge sends it: GitLab with its `X-Gitlab-Token` and
    `Idempotency-Key`, GitHub signed with `X-Hub-Signature-256` (HMAC-SHA256 of the exact body)
    and `X-GitHub-Delivery`.

    ``overrides`` replace payload fields, ``__`` reaching into objects
    (``object_attributes__iid=5``); ``body`` replaces the whole body (still signed); ``secret``
    signs with another secret; ``key`` is the delivery id (default: a new one each call);
    ``headers`` adds headers or, with None, leaves one out."""
    kind = str(forge.kind)
    payload = load_fixture(kind, fixture_name)
    for path, value in overrides.items():
        *parents, last = path.split("__")
        node = payload
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    raw = json.dumps(payload).encode() if body is None else body
    secret = forge.webhook_secret if secret is None else secret
    key = key or uuid.uuid4().hex
    prefix = fixture_name.split("__", 1)[0]
    sent: dict[str, str | None]
    if kind == "github":
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        sent = {
            "X-GitHub-Event": event or prefix,
            "X-GitHub-Delivery": key,
            "X-Hub-Signature-256": f"sha256={signature}",
        }
    else:
        sent = {
            "X-Gitlab-Event": event or GITLAB_EVENTS.get(prefix, prefix),
            "X-Gitlab-Token": secret,
            "Idempotency-Key": key,
        }
    sent.update(headers or {})
    given = {name: value for name, value in sent.items() if value is not None}
    return client.post(
        f"/hooks/{forge.slug}/", data=raw, content_type="application/json", headers=given
    )


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


# -- order: the bench smokes in the background, the end-to-end tests last ----------------------

SMOKE_RUNS = pytest.StashKey[dict[Path, "Future[smoke.Outcome]"]]()
SMOKE_TEST = "test_smoke_mode_runs_the_scenario"  # tests/bench/test_smoke.py


def _place(item: pytest.Item) -> int:
    """0: a unit test, 1: a bench smoke test (tests/bench), 2: an end-to-end test (tests/e2e)."""
    try:
        folder = item.path.relative_to(Path(__file__).parent).parts[0]
    except (ValueError, IndexError):
        return 0
    return {"bench": 1, "e2e": 2}.get(folder, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests first, then the bench smokes, then the end-to-end tests. The smokes, which
    mostly wait, run in the background from the session's first test on (beside the unit
    tests) and have ended before the end-to-end tests, whose timing they would disturb."""
    items.sort(key=_place)  # stable: each part keeps its order


def smoke_scripts(session: pytest.Session) -> list[Path]:
    """The benchmarks whose smoke test is selected in this session."""
    return [
        cast(Path, item.callspec.params["script"])
        for item in session.items
        if isinstance(item, pytest.Function) and item.originalname == SMOKE_TEST
    ]


@pytest.fixture(scope="session", autouse=True)
def _bench_smokes_in_the_background(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start the selected benchmarks' smoke runs (bench/smoke.py, two side by side) with the
    session's first test; tests/bench/test_smoke.py waits for each. Without PostgreSQL and Redis
    none starts (the smoke tests then fail or skip on ``services``). Those still going when the
    session ends (``-x``, Ctrl-C) are stopped."""
    scripts = smoke_scripts(request.session)
    if not scripts or missing_services():
        yield
        return
    runs = request.session.stash[SMOKE_RUNS] = smoke.side_by_side(scripts)
    yield
    smoke.stop(runs)


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    """Each test starts with nothing remembered (database rows, and so keys, are reused). Only
    local-memory caches: clearing a Redis cache empties its whole database."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    for backend in caches.all():
        if isinstance(backend, LocMemCache):
            backend.clear()


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    """Passwords hashed cheaply (for tests whose users sign in with one)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
    return install_forge(monkeypatch, FakeForge())


@pytest.fixture
def kicks(monkeypatch: pytest.MonkeyPatch) -> Kicks:
    """Every Celery task enqueued during the test, recorded, not sent (tests/fakes/tasks.py)."""
    return install_kicks(monkeypatch)
