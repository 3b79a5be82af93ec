"""The engine's two calls: a mirrored chain is looked at (only when a channel exists), and a
chain's `.baton.yml` `notify:` list is kept."""

from __future__ import annotations

from typing import Any

import pytest

from bots.engine import mirroring
from chains.config import NotifyEntry
from notify import hooks, tasks
from notify.models import ChainNotify, Channel
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    monkeypatch.setattr(tasks.notify_chain, "delay", asked.append)
    monkeypatch.setattr(mirroring, "_mirror", lambda chain: None)  # no forge here
    return asked


def test_a_mirror_asks_notify_to_look_only_when_a_channel_exists(
    looked_at: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    chain = f.chain("acme/app")
    with django_capture_on_commit_callbacks(execute=True):
        assert mirroring.mirror(chain.pk)
    assert looked_at == []
    Channel.objects.create(name="chat", url="json://127.0.0.1:9/x")
    with django_capture_on_commit_callbacks(execute=True):
        assert mirroring.mirror(chain.pk)
    assert looked_at == [chain.pk]


def test_the_planned_notify_list_is_kept_with_the_chain() -> None:
    chain = f.chain("acme/app")
    hooks.chain_planned(chain.pk, ())
    assert not ChainNotify.objects.exists()
    hooks.chain_planned(
        chain.pk, (NotifyEntry("chat", events=("run_manual",), branches=("main",)),)
    )
    assert ChainNotify.objects.get(chain=chain).entries == [
        {"channel": "chat", "events": ["run_manual"], "branches": ["main"]}
    ]
