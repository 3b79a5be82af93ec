"""The domain: forges, repositories, chains of triggered runs, deliveries, and the audit log.

Words here are neutral: a *change* is a GitLab merge request or a GitHub pull request; a *pipeline*
is a GitLab pipeline or a GitHub workflow run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db import DatabaseError, connection, models
from django.db.models import Q
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from encrypted_fields.fields import EncryptedCharField, EncryptedJSONField, EncryptedTextField

from chains.status import ACTIVE, Status

if TYPE_CHECKING:
    from chains.config import BatonConfig

# A GitLab group path (acme, acme/platform) or a GitHub org/team slug: segments of letters, digits,
# ".", "_", "-", split by "/" (each segment's characters exclude "/": no backtracking).
_SEGMENT = r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}"
FORGE_GROUP = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,19}}")


class RepositoryQuerySet(models.QuerySet["Repository"]):
    def visible_to(self, user: Any) -> RepositoryQuerySet:
        """The repositories ``user`` may view (the one narrowing: ``chains.policy``)."""
        from chains.policy import visible_repository_ids

        ids = visible_repository_ids(user)
        return self if ids is None else self.filter(pk__in=sorted(ids))


class ChainQuerySet(models.QuerySet["Chain"]):
    def visible_to(self, user: Any) -> ChainQuerySet:
        """The chains whose upstream repository ``user`` may view."""
        from chains.policy import visible_repository_ids

        ids = visible_repository_ids(user)
        return self if ids is None else self.filter(repository_id__in=sorted(ids))


class RunQuerySet(models.QuerySet["Run"]):
    def update(self, **kwargs: Any) -> int:
        """Every bulk write moves ``updated_at`` too (``auto_now`` only acts on ``save()``): it is
        the cursor the dashboard polls on."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)

    def save_each(self, runs: Sequence[Run], fields: Sequence[str]) -> None:
        """``save_each``'s one statement for runs: ``updated_at`` (the dashboard's cursor)
        moves too, as ``Run.save`` moves it. Not for ``masked_variables`` (``Run.save`` keeps
        ``has_masked_variables`` in step with it)."""
        if "masked_variables" in fields:
            raise ValueError("masked_variables is saved with Run.save")
        save_each(runs, [*fields, "updated_at"])

    def visible_to(self, user: Any) -> RunQuerySet:
        """The runs of the chains ``user`` may view (a run in a project they may not view is
        shown as a private project, never by name)."""
        from chains.policy import visible_repository_ids

        ids = visible_repository_ids(user)
        return self if ids is None else self.filter(chain__repository_id__in=sorted(ids))

    # A pipeline webhook's hot statements (most of a fan-out's worker CPU is its webhooks),
    # written out: the ORM spent more CPU building them than PostgreSQL spends running them
    # (docs/benchmarks.md, F1, sessions 7 and 8).

    def of_pipeline(
        self, forge_id: int, project: str, pipeline_id: str, fields: tuple[str, ...]
    ) -> Any:
        """The oldest run of the repository ``project`` (any case) on the forge identified with
        pipeline ``pipeline_id``, read with only ``fields`` (names of Run's columns, the
        ``repository`` among them) and its repository's ``path`` and ``remote_id`` (as
        ``repository`` without a query), or None."""
        return _run_of_row(
            fields,
            "WHERE repository.forge_id = %s AND UPPER(repository.path) = UPPER(%s) "
            "AND run.remote_id = %s ORDER BY run.id LIMIT 1",
            [forge_id, project, pipeline_id],
        )

    def locked(self, run_id: int, fields: tuple[str, ...]) -> Any:
        """The run ``run_id`` read as ``of_pipeline`` reads one, its row locked until the
        caller's transaction ends (``FOR UPDATE OF`` the run's row, as
        ``select_for_update(of=("self",))`` locks it; a database without row locks, SQLite,
        locks the whole database for a writing transaction), or None."""
        if connection.get_autocommit():
            raise TransactionManagementError("a run is locked inside a transaction only")
        lock = " FOR UPDATE OF run" if connection.features.has_select_for_update_of else ""
        return _run_of_row(fields, f"WHERE run.id = %s{lock}", [run_id])

    def heard(self, run_id: int, pipeline_id: str, status: str, *, hooked: bool) -> bool:
        """Note that the forge spoke of the run, if it is still on ``pipeline_id`` in ``status``
        (``last_seen_at``, and ``hooked`` when a webhook said so), leaving ``updated_at`` (the
        dashboard's cursor) as it is: nothing it shows changed. False when the run moved."""
        meta = self.model._meta
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        hooked_too = ", hooked = %s" if hooked else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {meta.db_table} SET last_seen_at = %s{hooked_too} "  # noqa: S608
                "WHERE id = %s AND remote_id = %s AND status = %s",
                [now, *([True] if hooked else []), run_id, pipeline_id, status],
            )
            return bool(cursor.rowcount)


def save_each(objects: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Save ``fields`` of each of ``objects`` (rows of one model) as ``obj.save(update_fields=
    fields)`` would, each value through its field's ``pre_save`` and ``get_db_prep_save``, in
    one statement run for every row (``executemany``: one round trip on PostgreSQL). The
    ORM's ``bulk_update`` (a ``CASE`` per field, its expressions resolved and copied row by
    row) and a save per row cost a fan-out's chunk more CPU than the writes themselves
    (docs/benchmarks.md, F1, session 9). Raises DatabaseError when a row is gone, as a save
    with ``update_fields`` does; model ``save()`` overrides are not called."""
    if not objects:
        return
    meta: Any = type(objects[0])._meta
    written: list[Any] = [meta.get_field(name) for name in dict.fromkeys(fields)]
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(field.column)} = %s" for field in written)
    rows = [
        [field.get_db_prep_save(field.pre_save(obj, False), connection) for field in written]
        + [obj.pk]
        for obj in objects
    ]
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {pk} = %s", rows)  # noqa: S608
        if cursor.rowcount != len(rows):
            raise DatabaseError(
                f"{meta.object_name}: {len(rows) - cursor.rowcount} of {len(rows)} rows to "
                "save are gone"
            )


def _run_of_row(fields: tuple[str, ...], where: str, params: list[Any]) -> Any:
    """The first row of ``SELECT`` the run's ``fields`` and its repository's ``WHERE …``, made
    a Run as a queryset makes one (``Model.from_db``, each column through its field's and the
    database's converters) without a raw queryset's mapping of columns to fields, which cost
    as much as the rest of a webhook's match; its repository a Repository with ``path`` and
    ``remote_id``. None when there is no such row."""
    read, select = _run_columns(fields)
    with connection.cursor() as cursor:
        cursor.execute(f"{select} {where}", params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row[: len(read)])
    for i, field in enumerate(read):
        column = field.get_col(Run._meta.db_table)
        for convert in [
            *connection.ops.get_db_converters(column),
            *field.get_db_converters(connection),
        ]:
            values[i] = convert(values[i], column, connection)
    run: Any = Run.from_db(connection.alias, [field.attname for field in read], values)
    forge_id, path, remote_id = row[len(read) :]
    run.repository = Repository(
        pk=run.repository_id, forge_id=forge_id, path=path, remote_id=remote_id
    )
    return run


@functools.cache
def _run_columns(fields: tuple[str, ...]) -> tuple[list[Any], str]:
    """``_run_of_row``'s fields of Run in the model's order (``Model.from_db`` takes a part of
    them in that order) and its ``SELECT … FROM``; made once per process and tuple of fields."""
    meta: Any = Run._meta
    wanted = {meta.get_field(name) for name in ("id", "repository", *fields)}
    read = [field for field in meta.concrete_fields if field in wanted]
    columns = ", ".join(f"run.{field.column}" for field in read)
    select = (
        f"SELECT {columns}, repository.forge_id, repository.path, "  # noqa: S608
        f"repository.remote_id FROM {meta.db_table} run "
        f"JOIN {Repository._meta.db_table} repository ON repository.id = run.repository_id"
    )
    return read, select


class Forge(models.Model):
    class Kind(models.TextChoices):
        GITLAB = "gitlab", "GitLab"
        GITHUB = "github", "GitHub"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    slug = models.SlugField(unique=True, help_text="Used in the webhook URL (/hooks/the-slug/)")
    name = models.CharField(max_length=100)
    api_url = models.URLField(help_text="Root URL of the forge, e.g. https://gitlab.example.com")
    token = EncryptedCharField(
        max_length=500,
        blank=True,
        null=True,  # a GitHub App forge has none: it mints installation tokens
        help_text="API token; stored encrypted, never shown",
    )
    webhook_secret = EncryptedCharField(
        max_length=500, help_text="Secret the forge sends with webhooks; stored encrypted"
    )
    app_installation = models.BooleanField(
        default=False,
        help_text="GitHub: the token is a GitHub App installation token (mirror with check runs)",
    )
    app_id = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="GitHub App: the App's id. With the private key, Baton mints installation "
        "tokens itself (no token needed)",
    )
    app_private_key = EncryptedTextField(
        blank=True, null=True, help_text="GitHub App: the App's private key (PEM); encrypted"
    )
    forge_permissions = models.BooleanField(
        default=False,
        help_text="When no grant matches, let the forge decide: GitLab Developer or above on the "
        "target, GitHub write access",
    )
    bot_username = models.CharField(
        max_length=255, blank=True, help_text="Baton's own account here (its comments are ignored)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    hooks_seen_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When its last webhook delivery arrived"
    )

    class Meta:
        permissions = [
            (
                "manage_forge",
                "Can set up forges (API URL, token, webhook secret) and test their connection",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_github_app(self) -> bool:
        """A GitHub App forge: Baton mints installation tokens with the App's private key."""
        return self.kind == self.Kind.GITHUB and bool(self.app_id and self.app_private_key)


class AppInstallation(models.Model):
    """One installation (an organisation or account) of a forge's GitHub App, with the last
    installation token minted for it: one per installation, shared by every Baton process and
    renewed before it expires."""

    forge = models.ForeignKey(Forge, on_delete=models.CASCADE, related_name="app_installations")
    app_id = models.PositiveBigIntegerField()
    installation_id = models.PositiveBigIntegerField()
    account = models.CharField(max_length=255, blank=True)
    token = EncryptedTextField(blank=True, null=True)  # encrypted fields keep "" as NULL
    minted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["forge", "app_id", "installation_id"], name="app_installation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.forge.slug}: installation {self.installation_id} ({self.account or '?'})"


class ProjectAnswer(Protocol):
    """What a forge says about a project (``bots.forges.base.RemoteProject``)."""

    @property
    def id(self) -> str: ...
    @property
    def web_url(self) -> str: ...
    @property
    def default_branch(self) -> str: ...
    @property
    def public(self) -> bool: ...


class Repository(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "public"
        INTERNAL = "internal", "internal"
        PRIVATE = "private", "private"

    forge = models.ForeignKey(Forge, on_delete=models.CASCADE, related_name="repositories")
    path = models.CharField(max_length=255, help_text="Full path, e.g. acme/app")
    visibility = models.CharField(
        max_length=10,
        choices=Visibility.choices,
        default=Visibility.PRIVATE,
        help_text="Comments on a public project never name a project that is not public",
    )
    remote_id = models.CharField(max_length=64, blank=True)
    default_branch = models.CharField(max_length=255, blank=True)
    web_url = models.URLField(blank=True)

    objects = RepositoryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(fields=["forge", "path"], name="repository_unique_path"),
        ]

    def __str__(self) -> str:
        return f"{self.forge.slug}:{self.path}"

    def update_from(self, remote: ProjectAnswer) -> list[str]:
        """Bring the row up to date with the forge's answer about the project (its id, link,
        default branch and whether it is public) and save what changed; returns those fields."""
        wanted = {
            "remote_id": remote.id,
            "web_url": remote.web_url,
            "default_branch": remote.default_branch,
            "visibility": self.Visibility.PUBLIC if remote.public else self.Visibility.PRIVATE,
        }
        changed = [name for name, value in wanted.items() if value and getattr(self, name) != value]
        for name in changed:
            setattr(self, name, wanted[name])
        if changed and self.pk is not None:
            self.save(update_fields=changed)
        return changed


class DeliveryManager(models.Manager["Delivery"]):
    def record(
        self,
        forge: Forge,
        event: str,
        key: str,
        payload: object,
        *,
        handled: bool,
        text: str | None = None,
    ) -> tuple[int | None, bool]:
        """Store a delivery unless its key is known: one INSERT … ON CONFLICT DO NOTHING.
        ``text``: the payload's JSON, when the caller has written it already. Returns (id,
        created); the id is None for a repeat."""
        now = timezone.now()
        cast = "::jsonb" if connection.vendor == "postgresql" else ""
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (forge_id, event, dedupe_key, received_at, processed_at, "  # noqa: S608
                f"outcome, detail, payload, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                f"%s{cast}, 0) ON CONFLICT (forge_id, dedupe_key) DO NOTHING RETURNING id",
                [
                    forge.pk,
                    event[:100],
                    key,
                    now,
                    None if handled else now,
                    Delivery.Outcome.QUEUED if handled else Delivery.Outcome.IGNORED,
                    "" if handled else ignored_reason(event),
                    json.dumps(payload) if text is None else text,
                ],
            )
            row = cursor.fetchone()
        return (row[0], True) if row else (None, False)

    def take(
        self, delivery_id: int, *, now: datetime, lease_until: datetime, cap: int, detail: str
    ) -> tuple[int, str, object, int] | None:
        """Take a free delivery for a new attempt (not processed, no live lease, fewer than
        ``cap`` attempts) in one ``UPDATE … RETURNING``: its forge id, event, payload and the
        attempt's number, or None. A second worker's UPDATE waits for the first's and then
        finds the delivery leased."""
        table = self.model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET attempts = attempts + 1, lease_until = %s, detail = %s "  # noqa: S608
                "WHERE id = %s AND processed_at IS NULL AND attempts < %s "
                "AND (lease_until IS NULL OR lease_until <= %s) "
                "RETURNING forge_id, event, payload, attempts",
                [lease_until, detail, delivery_id, cap, now],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        forge_id, event, payload, attempts = row
        field: Any = self.model._meta.get_field("payload")
        return forge_id, event, field.from_db_value(payload, None, connection), attempts

    def finish(self, delivery_id: int, outcome: str, detail: str) -> None:
        """The delivery is processed (its lease given up), with its outcome and why."""
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.model._meta.db_table} SET processed_at = %s, outcome = %s, "  # noqa: S608
                "detail = %s, lease_until = NULL WHERE id = %s",
                [now, outcome, detail[:2000], delivery_id],
            )


def ignored_reason(event: str) -> str:
    """Why a delivery was ignored at intake: its event is not one Baton acts on."""
    return f"{event[:100] or 'an event without a name'}: not an event Baton acts on"


class Delivery(models.Model):
    """One webhook delivery as received; its dedupe key makes a repeat a no-op."""

    class Outcome(models.TextChoices):
        QUEUED = "queued", "queued"
        PROCESSED = "processed", "processed"
        IGNORED = "ignored", "ignored"
        REJECTED = "rejected", "rejected (malformed)"
        FAILED = "failed", "failed"

    forge = models.ForeignKey(Forge, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100)
    dedupe_key = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.QUEUED)
    detail = models.TextField(blank=True)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    # A worker's claim while it handles the delivery, renewed as it works (bots/leases.py): the
    # sweeper hands the delivery on only once this has passed.
    lease_until = models.DateTimeField(null=True, blank=True)

    objects = DeliveryManager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["forge", "dedupe_key"], name="delivery_unique_key"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="delivery_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.dedupe_key}"


class Chain(models.Model):
    """Everything one upstream change (at one head commit) set off downstream."""

    forge = models.ForeignKey(Forge, on_delete=models.PROTECT, related_name="chains")
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="chains")
    delivery = models.OneToOneField(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="chain"
    )
    change_number = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    change_url = models.URLField(blank=True)
    title = models.CharField(max_length=500, blank=True)
    author = models.CharField(max_length=255, blank=True)
    runs_for = models.CharField(
        max_length=255,
        blank=True,
        help_text="The forge account whose permissions the chain runs with: the change's author",
    )
    actor = models.CharField(
        max_length=255,
        blank=True,
        help_text="Who set the chain off (opened, pushed, reopened, commented, re-ran); when not "
        "the author, the chain also needs their permissions",
    )
    trigger_action = models.CharField(
        max_length=20,
        blank=True,
        help_text="What happened to the change (opened, reopened, new_commits, rerun): with the "
        "commit, what a repeated delivery is recognised by",
    )
    runs_for_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The Baton user who started the chain from the dashboard or the API (then "
        "``actor`` is that user's name): their grants count as well as the author's",
    )
    source_branch = models.CharField(max_length=255, blank=True)
    target_branch = models.CharField(max_length=255, blank=True)
    head_sha = models.CharField(max_length=64)
    upstream_ref = models.CharField(max_length=255)
    from_fork = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, help_text="Why the chain started")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, help_text="Why the chain could not be planned")
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    summary_comment_id = models.CharField(max_length=64, blank=True)
    summary_digest = models.CharField(max_length=64, blank=True)
    mirrored_status = models.CharField(max_length=20, blank=True)
    mirror_requested_at = models.DateTimeField(null=True, blank=True)
    mirror_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ChainQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["repository", "change_number", "-created_at"]),
            models.Index(fields=["target_branch"], name="chain_target_branch"),
        ]

    def __str__(self) -> str:
        return f"chain {self.pk} {self.repository.path}!{self.change_number} @ {self.head_sha[:8]}"


def new_run_nonce() -> str:
    """An unguessable per-send marker (``BATON_RUN_NONCE``): a pipeline is taken for a run only if
    it carries this, so nobody can make their own pipeline pass for one of Baton's."""
    return secrets.token_hex(16)


class Run(models.Model):
    """One downstream pipeline the chain triggers (a child pipeline when the target is itself)."""

    class Strategy(models.TextChoices):
        DEPEND = "depend", "depend"
        MIRROR = "mirror", "mirror"
        ASYNC = "async", "async"

    class Dispatch(models.TextChoices):
        # Where Baton's send of the run stands (the `dispatch` field; not GitHub's
        # workflow_dispatch or repository_dispatch, which are how a send reaches a workflow).
        # Kept under this name: renaming the column would buy nothing but a migration.
        IDLE = "idle", "not sent"
        SENDING = "sending", "sending"  # a worker holds the lease; the forge may have it already
        SENT = "sent", "sent"

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="runs")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    depth = models.PositiveSmallIntegerField(default=1)
    key = models.CharField(max_length=100)
    label = models.CharField(max_length=255, blank=True)
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="runs")
    is_child = models.BooleanField(default=False, help_text="A pipeline in the upstream project")
    ref = models.CharField(max_length=255)
    workflow = models.CharField(max_length=255, blank=True, help_text="GitHub: workflow to run")
    variables = models.JSONField(default=dict, help_text="Variables sent, masked ones excluded")
    undelivered = models.JSONField(
        default=list, blank=True, help_text="Variables the target does not declare as inputs"
    )
    masked_variables = EncryptedJSONField(default=dict, blank=True)
    # Whether ``masked_variables`` holds any: it is encrypted, so the database cannot tell, and
    # the scrubbing of every pipeline webhook reads only the runs that have some
    # (bots/scrubbing.py). Kept by ``save`` and by the planner's bulk creates.
    has_masked_variables = models.BooleanField(default=False, editable=False)
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.DEPEND)
    interruptible = models.BooleanField(default=True)
    soft_fail = models.BooleanField(default=False, help_text="Its failure does not fail the chain")
    depends_on = models.JSONField(default=list, blank=True, help_text="Keys of runs it waits for")
    allow_dependency_failure = models.BooleanField(default=False)
    cancel_policy = models.CharField(
        max_length=10,
        default="propagate",
        help_text="propagate: canceled with its parent; detach: left running",
    )
    mode = models.CharField(
        max_length=24,
        default="new",
        help_text="new | rerun-latest | rerun-last-successful (Drone's downstream semantics)",
    )
    wait_timeout = models.PositiveIntegerField(
        default=0, help_text="Seconds to wait for a running pipeline on the ref; 0: no wait"
    )
    wait_until = models.DateTimeField(null=True, blank=True)
    deploy_environment = models.CharField(max_length=255, blank=True)
    reused_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A green run of an earlier chain this one stands for",
    )

    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    error = models.TextField(blank=True, help_text="What went wrong, in words")
    failed_jobs = models.JSONField(
        default=dict,
        blank=True,
        help_text="Why its pipeline failed: {attempt, pipeline, jobs: [{name, stage, reason, "
        "url, step}]} as the forge named them (chains/failures.py: at most 10, bounded)",
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    # `retry:` of its target (chains/retrying.py): automatic retries after a failure.
    retry_max = models.PositiveSmallIntegerField(
        default=0, help_text="Automatic retries allowed (`retry: max`, 0 to 3)"
    )
    retry_when = models.JSONField(
        default=list, blank=True, help_text="Failure reasons that are retried; empty: any"
    )
    retried_for = models.CharField(
        max_length=120, blank=True, help_text="Why the current attempt is an automatic retry"
    )
    quarantine_reason = models.CharField(
        max_length=255, blank=True, help_text="Its project was quarantined when it was planned"
    )
    remote_id = models.CharField(max_length=64, blank=True, db_index=True)
    web_url = models.URLField(blank=True)

    dispatch = models.CharField(max_length=10, choices=Dispatch.choices, default=Dispatch.IDLE)
    lease_until = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Waiting for rate limit")
    reserved_at = models.FloatField(null=True, blank=True, help_text="Rate-limit slot held")
    send_attempts = models.PositiveSmallIntegerField(default=0)
    nonce = models.CharField(
        max_length=64,
        default=new_run_nonce,
        editable=False,
        help_text="Secret marker sent as BATON_RUN_NONCE; never shown",
    )
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the current send began")
    cancel_requested = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    # Moved by every write (save, update_fields, queryset update): the dashboard's poll cursor.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="Last news from the forge")
    hooked = models.BooleanField(
        default=False, help_text="Webhooks arrive for it (so it is polled only when long quiet)"
    )
    mirrored_status = models.CharField(max_length=20, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["chain", "depth", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "key"],
                condition=Q(parent__isnull=True),
                name="run_unique_key_in_chain",
            ),
            models.UniqueConstraint(
                fields=["parent", "key"],
                condition=Q(parent__isnull=False),
                name="run_unique_key_under_parent",
            ),
        ]
        indexes = [
            models.Index(fields=["ref", "chain"], name="run_ref"),
            models.Index(
                fields=["status", "last_seen_at"],
                condition=Q(status__in=sorted(ACTIVE)),
                name="run_active",
            ),
            # Duration history of a target (chains/history.py): last N green runs of a project.
            models.Index(fields=["repository", "status", "-finished_at"], name="run_history"),
            # Flaky targets (chains/retrying.py with_flakiness): the few runs ever retried.
            models.Index(fields=["repository"], condition=Q(attempt__gt=1), name="run_retried"),
            # Downstream health (chains/history.py): ``run_health``, PostgreSQL only, made by
            # migration 0015_run_health_index (a covering expression index; SQLite takes neither).
        ]

    def __str__(self) -> str:
        return f"run {self.pk} {self.key} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if "masked_variables" in self.__dict__:  # loaded (the dashboard defers it)
            self.has_masked_variables = bool(self.masked_variables)
        fields = kwargs.get("update_fields")
        if fields and "masked_variables" in fields and "has_masked_variables" not in fields:
            fields = [*fields, "has_masked_variables"]
            kwargs["update_fields"] = fields
        # ``auto_now`` writes only the fields asked for: a partial save moves the cursor too.
        if fields and "updated_at" not in fields:
            kwargs["update_fields"] = [*fields, "updated_at"]
        super().save(*args, **kwargs)

    @property
    def is_finished(self) -> bool:
        return self.status not in ACTIVE


class RunAttempt(models.Model):
    """An earlier attempt of a run, kept when the run is retried."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices)
    remote_id = models.CharField(max_length=64, blank=True)
    web_url = models.URLField(blank=True)
    error = models.TextField(blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="run_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} attempt {self.number} ({self.status})"

    @classmethod
    def of(cls, run: Run) -> RunAttempt:
        """The run's current attempt as it is kept before a retry starts the next (unsaved)."""
        return cls(
            run=run,
            number=run.attempt,
            status=run.status,
            remote_id=run.remote_id,
            web_url=run.web_url,
            error=run.error,
            triggered_at=run.triggered_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class Quarantine(models.Model):
    """A known-flaky target project: until it expires, its runs' failures are soft failures
    (chains/quarantine.py), shown everywhere as ``quarantined: <reason>``."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="quarantines")
    reason = models.CharField(max_length=200, help_text="Shown on every page, status and summary")
    expires_at = models.DateTimeField(help_text="Its failures count again after this")
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-expires_at"]
        indexes = [models.Index(fields=["repository", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.repository_id} quarantined: {self.reason}"


class Rule(models.Model):
    """Admin-defined targets in the `.baton.yml` schema, for projects matching a pattern."""

    name = models.CharField(max_length=100)
    projects = models.CharField(
        max_length=255, help_text="Glob over project paths, e.g. acme/* or acme/**; * for all"
    )
    config = models.TextField(
        help_text="The same schema as .baton.yml; masked variable values read ••••"
    )
    secrets = EncryptedJSONField(
        default=dict,
        blank=True,
        help_text="The values of the config's masked variables, by where they are (encrypted)",
    )
    enabled = models.BooleanField(default=True)
    position = models.PositiveIntegerField(
        default=0, help_text="Rules apply after the file, lowest position first"
    )

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Masked values never reach the config column: they go to ``secrets``, encrypted."""
        from chains.config import ConfigError
        from chains.rule_secrets import seal

        fields = kwargs.get("update_fields")
        if fields is None or "config" in fields:
            # An invalid rule fails its chains in words; nothing can be taken out of it.
            with contextlib.suppress(ConfigError):
                self.config, self.secrets = seal(self.config, dict(self.secrets or {}))
            if fields is not None:
                kwargs["update_fields"] = {*fields, "secrets"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from chains.config import ConfigError, parse_config

        try:
            parse_config(self.config, standalone=False)
        except ConfigError as exc:
            raise ValidationError({"config": str(exc)}) from None

    def parsed(self) -> BatonConfig:
        """The config with its masked values put back (for planning only; never shown)."""
        from chains.config import parse_config
        from chains.rule_secrets import unseal

        return unseal(parse_config(self.config, standalone=False), self.secrets or {})

    def applies_to(self, project: str) -> bool:
        from chains.conditions import glob_match

        return self.projects.strip() == "*" or glob_match(self.projects.strip(), project)


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Grant(models.Model):
    """What a team or a person may do on the projects a pattern names."""

    class Action(models.TextChoices):
        VIEW = "view", "view"
        TRIGGER = "trigger", "trigger"
        RETRY = "retry", "retry"
        CANCEL = "cancel", "cancel"
        DEPLOY = "deploy", "deploy"
        QUARANTINE = "quarantine", "quarantine"
        ADMIN = "admin", "admin (everything)"

    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
    )
    forge = models.ForeignKey(
        Forge,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Only on this forge (empty: every forge)",
    )
    forge_group = models.CharField(
        max_length=255,
        blank=True,
        help_text="Or to a GitLab group (acme/platform) or a GitHub team (acme/release-team) "
        "of the forge named above: everyone who signed in with that forge and belongs to it",
    )
    projects = models.CharField(
        max_length=255, help_text="Glob over project paths: acme/*, acme/**, * for all"
    )
    actions = models.JSONField(
        default=list, help_text="Among view, trigger, retry, cancel, deploy, quarantine, admin"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=False, user__isnull=True, forge_group="")
                | Q(team__isnull=True, user__isnull=False, forge_group="")
                | Q(team__isnull=True, user__isnull=True, forge__isnull=False) & ~Q(forge_group=""),
                name="grant_to_a_team_a_user_or_a_forge_group",
            )
        ]

    def __str__(self) -> str:
        who = self.team or self.user or f"group {self.forge_group}"
        return f"{who}: {', '.join(self.actions)} on {self.projects}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Forge group and team names compare without case, as the forges do.
        self.forge_group = self.forge_group.strip().strip("/").lower()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        unknown = sorted(set(self.actions or []) - set(self.Action.values))
        if unknown:
            raise ValidationError({"actions": f"unknown actions: {', '.join(unknown)}"})
        if not self.actions:
            raise ValidationError({"actions": "name at least one action"})
        holders = [bool(self.team_id), bool(self.user_id), bool(self.forge_group.strip())]
        if sum(holders) != 1:
            raise ValidationError("grant to a team, to a user or to a forge group (one of them)")
        if self.forge_group.strip() and not self.forge_id:
            raise ValidationError({"forge": "a forge group's grant names its forge"})
        if self.forge_group and not FORGE_GROUP.fullmatch(self.forge_group.strip().strip("/")):
            raise ValidationError(
                {"forge_group": "a group path (acme/platform) or org/team (acme/release-team)"}
            )


class Identity(models.Model):
    """A forge account linked to a Baton user."""

    class Link(models.TextChoices):
        ADMIN = "admin", "linked by an admin"
        EMAIL = "email", "verified e-mail"
        SIGNIN = "signin", "signed in with the forge"

    forge = models.ForeignKey(Forge, on_delete=models.CASCADE, related_name="identities")
    username = models.CharField(max_length=255)
    remote_id = models.CharField(max_length=64, blank=True, help_text="The account's id there")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities"
    )
    linked_by = models.CharField(max_length=10, choices=Link.choices, default=Link.ADMIN)
    email = models.EmailField(blank=True, help_text="Verified e-mail the forge gave at sign-in")
    groups_read_at = models.DateTimeField(
        null=True, blank=True, help_text="When its groups or teams were read (at sign-in)"
    )

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["forge", "username"], name="identity_unique_account")
        ]

    def __str__(self) -> str:
        return f"{self.username} on {self.forge.slug} → {self.user}"


class ForgeMembership(models.Model):
    """A GitLab group or GitHub team (``org/team``) an identity belonged to when its person last
    signed in with the forge. Grants naming it count while the reading is fresh
    (``BATON_SIGNIN_GROUPS_MAX_AGE``)."""

    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="memberships")
    name = models.CharField(max_length=255, help_text="Lower-case group path or org/team")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identity", "name"], name="membership_once")]

    def __str__(self) -> str:
        return f"{self.identity.username} in {self.name}"


class CommentReply(models.Model):
    """A comment with `/baton` commands Baton has answered: handled once, answered in place."""

    forge = models.ForeignKey(Forge, on_delete=models.CASCADE)
    comment_id = models.CharField(max_length=64)
    reply_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["forge", "comment_id"], name="comment_reply_once")
        ]

    def __str__(self) -> str:
        return f"reply {self.reply_id} to comment {self.comment_id}"


class AuditEvent(models.Model):
    class Surface(models.TextChoices):
        WEBHOOK = "webhook", "webhook"
        COMMENT = "comment", "comment"
        DASHBOARD = "dashboard", "dashboard"
        API = "api", "API"
        ADMIN = "admin", "admin"
        SYSTEM = "system", "system"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=255, help_text="Who: a Baton user or forge account")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    surface = models.CharField(max_length=20, choices=Surface.choices)
    action = models.CharField(max_length=50)
    chain = models.ForeignKey(Chain, null=True, blank=True, on_delete=models.SET_NULL)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL)
    target = models.CharField(max_length=500, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S %Z} {self.actor} {self.action} {self.target}"


class RateBudget(models.Model):
    """Pacing shared by every process for one forge token (or narrower scope): the send times
    reserved within the last minute, and a block set when the forge said to back off."""

    key = models.CharField(max_length=255, unique=True)
    slots = models.JSONField(default=list, help_text="Reserved send times (Unix seconds)")
    blocked_until = models.FloatField(default=0.0, help_text="Unix seconds")
    last_sent = models.FloatField(default=0.0, help_text="When a request last went (Unix seconds)")

    def __str__(self) -> str:
        return self.key
