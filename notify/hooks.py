"""What the engine calls: a chain settled (bots/engine/mirroring.py), a chain was planned with a
`.baton.yml` `notify:` list (bots/engine/planning.py). Both are cheap when no channel is set up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from notify import dispatch


def chain_settled(chain_id: int) -> None:
    """Look at the chain's events after the caller's transaction commits."""
    if dispatch.anything_to_do():
        from notify.tasks import notify_chain  # tasks import the sender; hooks stay light

        transaction.on_commit(lambda: notify_chain.delay(chain_id))


def chain_planned(chain_id: int, entries: Sequence[Any]) -> None:
    dispatch.remember(chain_id, [e.as_dict() for e in entries])
