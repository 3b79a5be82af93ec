"""One place for test data (factory_boy): forges, repositories, chains, runs, attempts, people and
their grants, and the personas every surface is tested with.

The factories write straight to the database (no forge involved). The short functions below are
what tests call: ``f.chain("acme/app", status="failed")``, ``f.run(chain, "api")``,
``f.persona("viewer")``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import factory
from django.contrib.auth.models import User
from django.utils import timezone
from factory.django import DjangoModelFactory

from chains.models import Chain, Forge, Grant, Identity, Repository, Run, RunAttempt, Team
from chains.status import FINISHED, Status

NAMES = {Forge.Kind.GITLAB: "GitLab", Forge.Kind.GITHUB: "GitHub"}
SLUGS = {Forge.Kind.GITLAB: "gl", Forge.Kind.GITHUB: "gh"}
NOT_STARTED = (Status.QUEUED, Status.WAITING, Status.PENDING)


class ForgeFactory(DjangoModelFactory[Forge]):
    class Meta:
        model = Forge
        django_get_or_create = ("slug",)

    kind = Forge.Kind.GITLAB
    slug = factory.LazyAttribute(lambda o: SLUGS.get(o.kind, o.kind))
    name = factory.LazyAttribute(lambda o: NAMES.get(o.kind, o.slug.upper()))
    api_url = factory.LazyAttribute(lambda o: f"https://{o.slug}.example.com")
    token = "forge-token"
    webhook_secret = "hook-secret"


class RepositoryFactory(DjangoModelFactory[Repository]):
    """A project Baton heard of through a hook: the forge's id is known."""

    class Meta:
        model = Repository
        django_get_or_create = ("forge", "path")

    forge = factory.SubFactory(ForgeFactory)
    path = "acme/app"
    web_url = factory.LazyAttribute(lambda o: f"{o.forge.api_url}/{o.path}")
    default_branch = "main"
    remote_id = factory.Sequence(lambda n: str(7000 + n))


class ChainFactory(DjangoModelFactory[Chain]):
    """A chain of a merge request; ``number=None`` makes one no change started (a push)."""

    class Meta:
        model = Chain

    class Params:
        path = "acme/app"

    forge = factory.SubFactory(ForgeFactory)
    repository = factory.SubFactory(
        RepositoryFactory,
        forge=factory.SelfAttribute("..forge"),
        path=factory.SelfAttribute("..path"),
    )
    change_number = factory.Sequence(lambda n: n + 1)
    change_url = factory.LazyAttribute(
        lambda o: (
            f"{o.forge.api_url}/{o.path}/-/merge_requests/{o.change_number}"
            if o.change_number
            else ""
        )
    )
    title = factory.LazyAttribute(lambda o: f"Change {o.change_number or ''}".strip())
    author = "alice"
    source_branch = factory.Sequence(lambda n: f"feature/{n + 1}")
    target_branch = "main"
    head_sha = factory.Sequence(lambda n: f"{n + 1:08x}" + "ab" * 16)
    upstream_ref = factory.LazyAttribute(
        lambda o: (
            f"refs/merge-requests/{o.change_number}/head"
            if o.change_number
            else f"refs/heads/{o.target_branch}"
        )
    )
    reason = "merge request opened"
    status = Status.RUNNING

    @factory.post_generation
    def backdate(obj: Chain, create: bool, extracted: Any, **kwargs: Any) -> None:
        """Created ``age`` ago (the dashboard sorts and pages by it)."""
        age = kwargs.get("age", extracted) or timedelta(minutes=5)
        if create:
            Chain.objects.filter(pk=obj.pk).update(created_at=timezone.now() - age)
            obj.refresh_from_db()

    @classmethod
    def _after_postgeneration(cls, instance: Chain, create: bool, results: Any = None) -> None:
        """No second save: the post-generation step updated the row already."""


class RunFactory(DjangoModelFactory[Run]):
    """A run that was sent and has a pipeline (``remote_id``), in ``acme/<key>`` by default."""

    class Meta:
        model = Run

    class Params:
        project = None
        seconds = 60  # how long it ran, when it finished
        started = None

    chain = factory.SubFactory(ChainFactory)
    parent = None
    depth = factory.LazyAttribute(lambda o: o.parent.depth + 1 if o.parent else 1)
    key = factory.Sequence(lambda n: f"run-{n}")
    label = ""
    repository = factory.LazyAttribute(
        lambda o: RepositoryFactory.create(forge=o.chain.forge, path=o.project or f"acme/{o.key}")
    )
    ref = "main"
    variables = factory.LazyAttribute(lambda o: {"UPSTREAM_REF": o.chain.upstream_ref})
    masked_variables = factory.LazyFunction(dict)
    status = Status.RUNNING
    remote_id = factory.Sequence(lambda n: str(1000 + n))
    web_url = factory.LazyAttribute(
        lambda o: f"{o.chain.forge.api_url}/{o.repository.path}/-/pipelines/{o.remote_id}"
    )
    dispatch = Run.Dispatch.SENT
    triggered_at = factory.LazyAttribute(
        lambda o: o.started or o.chain.created_at + timedelta(seconds=5)
    )
    started_at = factory.LazyAttribute(
        lambda o: None if o.status in NOT_STARTED else o.triggered_at
    )
    finished_at = factory.LazyAttribute(
        lambda o: (
            o.triggered_at + timedelta(seconds=o.seconds or 0) if o.status in FINISHED else None
        )
    )


class RunAttemptFactory(DjangoModelFactory[RunAttempt]):
    class Meta:
        model = RunAttempt

    run = factory.SubFactory(RunFactory)
    number = 1
    status = Status.FAILED
    remote_id = factory.LazyAttribute(lambda o: str(900 + o.number))
    web_url = factory.LazyAttribute(lambda o: f"{o.run.web_url}-{o.number}")
    error = ""
    triggered_at = factory.SelfAttribute("run.triggered_at")
    started_at = factory.SelfAttribute("run.started_at")
    finished_at = factory.SelfAttribute("run.started_at")


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.LazyAttribute(lambda o: f"pw-{o.username}-123")  # hashed on create
    is_superuser = False
    is_staff = factory.SelfAttribute("is_superuser")

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        manager = cls._get_manager(model_class)
        if kwargs.pop("is_superuser", False):
            kwargs.pop("is_staff", None)
            return manager.create_superuser(*args, **kwargs)
        return manager.create_user(*args, **kwargs)


class GrantFactory(DjangoModelFactory[Grant]):
    class Meta:
        model = Grant

    user = factory.SubFactory(UserFactory)
    projects = "acme/*"
    actions = factory.LazyFunction(lambda: ["view"])


# -- what tests call ------------------------------------------------------------------------------


def forge(kind: str = Forge.Kind.GITLAB, slug: str | None = None, name: str | None = None) -> Forge:
    """The forge called ``slug`` (made once; default slugs: gl, gh)."""
    fields: dict[str, Any] = {"kind": kind}
    if slug is not None:
        fields["slug"] = slug
    if name is not None:
        fields["name"] = name
    return ForgeFactory.create(**fields)


def repository(path: str, on: Forge | None = None) -> Repository:
    return RepositoryFactory.create(forge=on or forge(), path=path)


def chain(
    path: str = "acme/app",
    *,
    on: Forge | None = None,
    number: int | None = 0,
    status: str = Status.RUNNING,
    target: str = "main",
    source: str | None = None,
    age: timedelta = timedelta(minutes=5),
    **fields: Any,
) -> Chain:
    """``number=0`` picks the next number; ``None`` makes a chain no change started (a push)."""
    if number != 0:
        fields["change_number"] = number
    if source is not None:
        fields["source_branch"] = source
    return ChainFactory.create(
        forge=on or forge(),
        path=path,
        status=status,
        target_branch=target,
        backdate__age=age,
        **fields,
    )


def run(
    of: Chain,
    key: str,
    *,
    project: str | None = None,
    status: str = Status.RUNNING,
    parent: Run | None = None,
    ref: str = "main",
    started: datetime | None = None,
    seconds: float | None = 60,
    **fields: Any,
) -> Run:
    return RunFactory.create(
        chain=of,
        key=key,
        project=project,
        status=status,
        parent=parent,
        ref=ref,
        started=started,
        seconds=seconds,
        **fields,
    )


def attempt(of: Run, number: int, status: str = Status.FAILED, error: str = "") -> RunAttempt:
    return RunAttemptFactory.create(run=of, number=number, status=status, error=error)


def user(name: str, *, superuser: bool = False, **fields: Any) -> User:
    return UserFactory.create(username=name, is_superuser=superuser, **fields)


def grant(to: User, projects: str, *actions: str) -> Grant:
    return GrantFactory.create(user=to, projects=projects, actions=list(actions))


def token(of: User) -> str:
    from dashboard.api import tokens

    return tokens.issue(of)[1]


# -- personas -------------------------------------------------------------------------------------

# role: (username, actions granted on the persona's projects; None: no grant at all)
ROLES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "outsider": ("otto", None),  # signed in, no grant
    "viewer": ("vic", ("view",)),
    "operator": ("opal", ("view", "retry", "cancel", "trigger")),
    "manager": ("rita", ("view", "trigger", "retry", "cancel")),  # a release manager
    "member": ("mia", ("view", "trigger", "retry", "cancel")),  # through a team
    "admin": ("ada", None),  # a superuser
}


def persona(role: str, *, projects: str = "acme/*", on: Forge | None = None) -> User | None:
    """The person of ``role`` ("anonymous" is None), with their grant on ``projects``; ``on``: a
    forge where their account of the same name is linked to them (comment commands)."""
    if role == "anonymous":
        return None
    name, actions = ROLES[role]
    person = user(name, superuser=role == "admin")
    if actions is not None:
        if role == "member":
            team, _ = Team.objects.get_or_create(name="app team")
            team.members.add(person)
            Grant.objects.create(team=team, projects=projects, actions=list(actions))
        else:
            grant(person, projects, *actions)
    if on is not None:
        Identity.objects.get_or_create(forge=on, username=name, defaults={"user": person})
    return person


def account(
    on: Forge, name: str, *projects: str, actions: tuple[str, ...] = ("view", "trigger")
) -> User:
    """A Baton user linked to the forge account ``name``, granted ``actions`` on ``projects``."""
    person = user(name)
    Identity.objects.get_or_create(forge=on, username=name, defaults={"user": person})
    for pattern in projects:
        grant(person, pattern, *actions)
    return person
