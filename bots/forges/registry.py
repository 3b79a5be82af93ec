"""Where forge clients are built: one per forge and process, with timeouts set at construction."""

from __future__ import annotations

import threading

from django.conf import settings

from bots.forges.base import Forge
from chains.models import Forge as ForgeRecord

_clients: dict[tuple[int, str, str, bool], Forge] = {}
_lock = threading.Lock()


def forge_for(record: ForgeRecord) -> Forge:
    key = (record.pk, record.api_url, record.token, record.app_installation)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _build(record)
            _clients[key] = client
    return client


def _build(record: ForgeRecord) -> Forge:
    timeout = settings.BATON_FORGE_TIMEOUT
    # Each adapter is imported when a forge of its kind is first used, so that a process loads
    # only the SDKs (python-gitlab, PyGithub) of the forges it talks to.
    if record.kind == ForgeRecord.Kind.GITLAB:
        from bots.forges.gitlab import GitLabForge  # lazy: see above

        return GitLabForge(record.api_url, record.token, timeout=timeout)
    if record.kind == ForgeRecord.Kind.GITHUB:
        from bots.forges.github import GitHubForge  # lazy: see above

        return GitHubForge(
            record.api_url,
            record.token,
            timeout=timeout,
            app_installation=record.app_installation,
        )
    raise NotImplementedError(f"forge kind {record.kind!r} is not supported yet")
