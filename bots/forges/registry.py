"""Where forge clients are built: one per forge and process, with timeouts set at construction."""

from __future__ import annotations

import hashlib
import threading

from django.conf import settings

from bots.forges.app_tokens import DatabaseTokens
from bots.forges.base import Forge
from chains.models import Forge as ForgeRecord

_clients: dict[tuple[int, str, str, bool], Forge] = {}
_lock = threading.Lock()


def _credential(record: ForgeRecord) -> str:
    """What the client authenticates with: the token, or for a GitHub App its id and key."""
    if record.is_github_app:
        key = hashlib.sha256(f"{record.app_id}|{record.app_private_key}".encode()).hexdigest()
        return f"app:{key}"
    return record.token or ""


def forge_for(record: ForgeRecord) -> Forge:
    key = (record.pk, record.api_url, _credential(record), record.app_installation)
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

        return GitLabForge(
            record.api_url,
            record.token or "",
            timeout=timeout,
            name=record.slug,
            connections=settings.BATON_SEND_CONCURRENCY,
        )
    if record.kind == ForgeRecord.Kind.GITHUB:
        from bots.forges.github import AppCredentials, GitHubForge  # lazy: see above

        app = None
        if record.is_github_app and record.app_id:
            tokens = DatabaseTokens(record.pk, record.app_id, record.api_url)
            app = AppCredentials(record.app_id, record.app_private_key or "", tokens)
        return GitHubForge(
            record.api_url,
            record.token or "",
            timeout=timeout,
            app_installation=record.app_installation,
            app=app,
            name=record.slug,
        )
    raise NotImplementedError(f"forge kind {record.kind!r} is not supported yet")
