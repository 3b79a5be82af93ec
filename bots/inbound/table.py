"""Which forges Baton takes webhooks from: the intake module of each kind (verify, name, dedupe,
parse). Importable without the engine, so that the webhook view knows which events exist
without loading the worker's router, the engine or the forge clients."""

from __future__ import annotations

from types import ModuleType

from bots.inbound import github, gitlab
from chains.models import Forge

INBOUND: dict[str, ModuleType] = {
    Forge.Kind.GITLAB: gitlab,
    Forge.Kind.GITHUB: github,
}
