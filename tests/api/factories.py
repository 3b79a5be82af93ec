"""Forges, repositories, chains, runs and attempts written straight to the database for API
tests (no forge involved), and the people who use the API."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from chains.models import Chain, Forge, Grant, Repository, Run, RunAttempt
from chains.status import FINISHED, Status
from dashboard.api import tokens

_seq = itertools.count(1)


def forge(slug: str = "gl", kind: str = "gitlab") -> Forge:
    found = Forge.objects.filter(slug=slug).first()
    return found or Forge.objects.create(
        kind=kind,
        slug=slug,
        name=slug.upper(),
        api_url=f"https://{slug}.example.com",
        token="forge-token",
        webhook_secret="hook-secret",
    )


def repository(path: str, on: Forge | None = None) -> Repository:
    on = on or forge()
    found, _ = Repository.objects.get_or_create(
        forge=on,
        path=path,
        defaults={"web_url": f"{on.api_url}/{path}", "default_branch": "main"},
    )
    return found


def chain(
    path: str = "acme/app",
    *,
    on: Forge | None = None,
    number: int | None = 0,
    status: str = Status.RUNNING,
    target: str = "main",
    age: timedelta = timedelta(minutes=5),
    **fields: Any,
) -> Chain:
    """``number=0`` picks the next number; ``None`` makes a chain no change started (a push)."""
    on = on or forge()
    n = next(_seq)
    number = n if number == 0 else number
    created = Chain.objects.create(
        forge=on,
        repository=repository(path, on),
        change_number=number,
        change_url=f"{on.api_url}/{path}/-/merge_requests/{number}" if number else "",
        title=fields.pop("title", f"Change {n}"),
        author=fields.pop("author", "alice"),
        source_branch=fields.pop("source_branch", f"feature/{n}"),
        target_branch=target,
        head_sha=fields.pop("head_sha", f"{n:08x}" + "ab" * 16),
        upstream_ref=f"refs/merge-requests/{number}/head" if number else "refs/heads/main",
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
    status: str = Status.RUNNING,
    parent: Run | None = None,
    **fields: Any,
) -> Run:
    remote = str(1000 + next(_seq))
    path = project or f"acme/{key}"
    started = of.created_at + timedelta(seconds=5)
    return Run.objects.create(
        chain=of,
        parent=parent,
        depth=parent.depth + 1 if parent else 1,
        key=key,
        label=fields.pop("label", ""),
        repository=repository(path, of.forge),
        ref=fields.pop("ref", "main"),
        variables=fields.pop("variables", {"UPSTREAM_REF": of.upstream_ref}),
        masked_variables=fields.pop("masked_variables", {}),
        status=status,
        remote_id=fields.pop("remote_id", remote),
        web_url=fields.pop("web_url", f"{of.forge.api_url}/{path}/-/pipelines/{remote}"),
        dispatch=fields.pop("dispatch", Run.Dispatch.SENT),
        triggered_at=started,
        started_at=started,
        finished_at=started + timedelta(minutes=1) if status in FINISHED else None,
        **fields,
    )


def attempt(of: Run, number: int, status: str = Status.FAILED, error: str = "") -> RunAttempt:
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


def user(name: str, *, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(name, f"{name}@example.com", f"pw-{name}-123")
    return User.objects.create_user(name, password=f"pw-{name}-123")


def grant(to: User, projects: str, *actions: str) -> Grant:
    return Grant.objects.create(user=to, projects=projects, actions=list(actions))


def token(of: User) -> str:
    return tokens.issue(of)[1]
