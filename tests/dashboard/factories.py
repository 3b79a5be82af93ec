"""Chains, runs and attempts for dashboard tests and screenshots, written straight to the
database (no forge involved)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from chains.models import Chain, Forge, Repository, Run, RunAttempt
from chains.status import FINISHED

_seq = itertools.count(1)


def forge(kind: str = "gitlab", slug: str = "gl", name: str = "GitLab") -> Forge:
    found = Forge.objects.filter(slug=slug).first()
    if found:
        return found
    return Forge.objects.create(
        kind=kind,
        slug=slug,
        name=name,
        api_url=f"https://{slug}.example.com",
        token="t",
        webhook_secret="s",
    )


def repository(path: str, on: Forge | None = None) -> Repository:
    on = on or forge()
    repo, _ = Repository.objects.get_or_create(
        forge=on,
        path=path,
        # A project Baton heard of through a hook: the forge's id is known.
        defaults={
            "web_url": f"{on.api_url}/{path}",
            "default_branch": "main",
            "remote_id": str(7000 + next(_seq)),
        },
    )
    return repo


def chain(
    path: str = "acme/app",
    *,
    on: Forge | None = None,
    number: int | None = None,
    status: str = "running",
    target: str = "main",
    source: str = "feature/x",
    age: timedelta = timedelta(minutes=5),
    **fields: Any,
) -> Chain:
    on = on or forge()
    n = next(_seq)
    created = Chain.objects.create(
        forge=on,
        repository=repository(path, on),
        change_number=number if number is not None else n,
        change_url=f"{on.api_url}/{path}/-/merge_requests/{number or n}",
        title=fields.pop("title", f"Change {n}"),
        author=fields.pop("author", "alice"),
        source_branch=source,
        target_branch=target,
        head_sha=fields.pop("head_sha", f"{n:08x}" + "ab" * 16),
        upstream_ref=f"refs/merge-requests/{number or n}/head",
        reason=fields.pop("reason", "merge request opened"),
        status=status,
        **fields,
    )
    Chain.objects.filter(pk=created.pk).update(created_at=timezone.now() - age)
    created.refresh_from_db()
    return created


def run(
    of: Chain,
    key: str,
    *,
    project: str | None = None,
    status: str = "running",
    parent: Run | None = None,
    ref: str = "main",
    started: datetime | None = None,
    seconds: float | None = 60,
    **fields: Any,
) -> Run:
    started = started or of.created_at + timedelta(seconds=5)
    finished = started + timedelta(seconds=seconds or 0) if status in FINISHED else None
    remote = str(1000 + next(_seq))
    return Run.objects.create(
        chain=of,
        parent=parent,
        depth=(parent.depth + 1) if parent else 1,
        key=key,
        label=fields.pop("label", ""),
        repository=repository(project or f"acme/{key}", of.forge),
        ref=ref,
        variables=fields.pop("variables", {"UPSTREAM_REF": of.upstream_ref}),
        masked_variables=fields.pop("masked_variables", {}),
        status=status,
        remote_id=fields.pop("remote_id", remote),
        web_url=fields.pop("web_url", f"{of.forge.api_url}/acme/{key}/-/pipelines/{remote}"),
        triggered_at=started,
        started_at=started if status not in ("queued", "waiting", "pending") else None,
        finished_at=finished,
        dispatch="sent",
        **fields,
    )


def attempt(of: Run, number: int, status: str = "failed", error: str = "") -> RunAttempt:
    return RunAttempt.objects.create(
        run=of,
        number=number,
        status=status,
        remote_id=str(900 + number),
        web_url=f"{of.web_url}-{number}",
        error=error,
        triggered_at=of.triggered_at,
        started_at=of.started_at,
        finished_at=of.started_at,
    )
