"""Every database read the dashboard makes, in one place.

Each function issues a fixed number of queries, whatever the number of chains and runs, and the
``*_version`` functions answer in one query: they fold what a page shows into a short cursor, so an
unchanged poll is answered without rendering anything.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from chains.models import Chain, Forge, Repository, Run, RunAttempt
from chains.status import FINISHED, Status
from dashboard.filters import filtered

PAGE_SIZE = 25
MAX_PAGE = 1_000_000  # a larger ?page= is the last page, not an OFFSET PostgreSQL cannot hold
# Run fields a summary never shows; masked variables are encrypted, so loading them costs.
UNSHOWN_RUN_FIELDS = ("variables", "masked_variables")


def _secrets(prefix: str) -> list[str]:
    """A forge's encrypted fields, never shown: deferred so that they are not decrypted."""
    return [f"{prefix}token", f"{prefix}webhook_secret"]


RECENT_REFS = 500  # how many recent chains suggest refs for the release picker


def listed_chains(params: Any, repositories: frozenset[int] | None) -> QuerySet[Chain]:
    """The chains of ``repositories`` (None: every one) that the query parameters ``params``
    ask for (dashboard.filters.ChainFilterSet), newest first."""
    chains = Chain.objects.all()
    if repositories is not None:
        chains = chains.filter(repository_id__in=sorted(repositories))
    return filtered(params, chains)


def repository_chains(pk: int) -> QuerySet[Chain]:
    """The chains that started in repository ``pk``, newest first."""
    return Chain.objects.filter(repository_id=pk).order_by("-created_at", "-pk")


@dataclass
class Progress:
    done: int = 0
    total: int = 0


def _progress(chain_ids: list[int]) -> dict[int, Progress]:
    rows = (
        Run.objects.filter(chain_id__in=chain_ids)
        .values("chain_id")
        .annotate(total=Count("pk"), done=Count("pk", filter=Q(status__in=sorted(FINISHED))))
        .order_by()
    )
    return {row["chain_id"]: Progress(row["done"], row["total"]) for row in rows}


def chain_page(
    chains: QuerySet[Chain], page_number: Any
) -> tuple[Page[Chain], dict[int, Progress]]:
    """One page of ``chains`` and each one's progress: three queries."""
    chains = chains.select_related("repository", "forge").defer(*_secrets("forge__"))
    page = Paginator(chains, PAGE_SIZE).get_page(page_number)
    page.object_list = list(page.object_list)
    return page, _progress([chain.pk for chain in page.object_list])


def filter_choices(user: Any) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(repositories ``user`` may view, forges) for the filter form: two queries."""
    visible = Repository.objects.visible_to(user)
    repositories = list(visible.order_by("path").values_list("pk", "path"))
    forges = [
        (forge.pk, str(forge)) for forge in Forge.objects.defer(*_secrets("")).order_by("name")
    ]
    return repositories, forges


# --- one chain ---------------------------------------------------------------------------------


@dataclass
class ChainDetail:
    chain: Chain
    runs: list[Run] = field(default_factory=list)


def chain_detail(pk: int) -> ChainDetail | None:
    """The chain, its runs with their repositories and earlier attempts: three queries."""
    attempts = Prefetch("attempts", queryset=RunAttempt.objects.order_by("-number"))
    chain = (
        Chain.objects.select_related("repository", "forge")
        .defer(*_secrets("forge__"))
        .prefetch_related(
            Prefetch(
                "runs",
                queryset=Run.objects.select_related("repository")
                .prefetch_related(attempts)
                .order_by("depth", "pk"),
            )
        )
        .filter(pk=pk)
        .first()
    )
    if chain is None:
        return None
    return ChainDetail(chain, list(chain.runs.all()))


def run_chain_id(run_pk: int) -> int | None:
    return Run.objects.filter(pk=run_pk).values_list("chain_id", flat=True).first()


def run_for_action(pk: int, user: Any) -> Run | None:
    """The run, if ``user`` may view its chain (else None: no such run, as far as they know)."""
    runs = Run.objects.visible_to(user).select_related("repository", "chain__repository")
    return runs.filter(pk=pk).first()


def chain_for_action(pk: int, user: Any) -> Chain | None:
    """The chain, if ``user`` may view it."""
    chains = Chain.objects.visible_to(user).select_related("repository", "forge")
    return chains.filter(pk=pk).first()


# --- release matrix ----------------------------------------------------------------------------


def _latest_release_chain_ids(
    ref: str, repositories: frozenset[int] | None = None
) -> QuerySet[Chain, Any]:
    """The newest chain per upstream project that targets ``ref`` or ran something on it.

    A union of two index lookups (``Chain.target_branch``, ``Run.ref``) rather than an OR, which
    would read every chain."""
    targets = Chain.objects.filter(target_branch=ref).values("pk").order_by()
    ran_on = Run.objects.filter(ref=ref).values("chain_id").order_by()
    chains = Chain.objects.filter(pk__in=targets.union(ran_on))
    if repositories is not None:
        chains = chains.filter(repository_id__in=sorted(repositories))
    return chains.values("repository_id").annotate(latest=Max("pk")).values("latest").order_by()


@dataclass(frozen=True)
class MatrixRun:
    """What a release matrix cell shows of a run: no variables, no error text."""

    pk: int
    chain_id: int
    repository_id: int
    path: str  # its project's
    key: str
    label: str
    status: str
    quarantine_reason: str


@dataclass
class Release:
    ref: str
    chains: list[Chain]
    runs: dict[int, list[MatrixRun]]  # by chain
    version: str  # the cursor of exactly these chains


def release(ref: str, repositories: frozenset[int] | None = None) -> Release:
    """Each project's latest chain for ``ref`` among those whose project is in ``repositories``
    (None: every project), its cursor, and the runs of those chains in projects in
    ``repositories``: five queries. The runs are read as plain rows (a matrix holds hundreds)."""
    head = _release_head(ref, repositories)  # first: news coming in shows on the next poll
    ids = [row["latest"] for row in _latest_release_chain_ids(ref, repositories)]
    version = _digest(head + _shown_signature(ids, repositories))
    chains = list(
        Chain.objects.filter(pk__in=ids)
        .select_related("repository", "forge")
        .defer(*_secrets("forge__"))
        .order_by("repository__path")
    )
    shown = Run.objects.filter(chain__in=ids)
    if repositories is not None:
        shown = shown.filter(repository_id__in=sorted(repositories))
    fields = ("pk", "chain_id", "repository_id", "repository__path", "key", "label", "status")
    runs: dict[int, list[MatrixRun]] = defaultdict(list)
    for row in shown.order_by("depth", "pk").values_list(*fields, "quarantine_reason"):
        runs[row[1]].append(MatrixRun(*row))
    return Release(ref, chains, dict(runs), version)


def recent_refs(user: Any) -> list[str]:
    """Target branches of recent chains ``user`` may view, most recent first, for the ref
    picker: one query."""
    seen: dict[str, None] = {}
    chains = Chain.objects.visible_to(user).exclude(target_branch="")
    refs = chains.order_by("-created_at")[:RECENT_REFS]
    for ref in refs.values_list("target_branch", flat=True):
        seen.setdefault(ref, None)
    return list(seen)


# --- one repository ----------------------------------------------------------------------------


def repository(pk: int) -> Repository | None:
    return (
        Repository.objects.select_related("forge").defer(*_secrets("forge__")).filter(pk=pk).first()
    )


def runs_in_repository(repository: Repository, limit: int = 10) -> list[Run]:
    """The latest pipelines Baton triggered in this repository (as a downstream): one query."""
    return list(
        Run.objects.filter(repository=repository)
        .select_related("chain__repository", "chain__forge")
        .defer(*UNSHOWN_RUN_FIELDS, *_secrets("chain__forge__"))
        .order_by("-created_at", "-pk")[:limit]
    )


# --- cursors for polling -----------------------------------------------------------------------
#
# Plain SQL, written once: building the same aggregate through the ORM costs more than running it.
# Each cursor folds what a page shows into a few numbers. Runs: every write moves the run's
# ``updated_at`` (``Run.save`` and ``RunQuerySet.update`` see to it), so the count and the sum of
# those times change with any change to any run, whatever it was (a retry message of the same
# length included) — a sum rather than a maximum, so that a write committed after a later one is
# not missed. Chains: a status change moves the weighted sum (every status has its own weight),
# a new chain the count and id sum, and times and the superseding chain have their own terms.

CHAIN_TABLE = Chain._meta.db_table
RUN_TABLE = Run._meta.db_table
_WEIGHTS = " ".join(f"WHEN '{s.value}' THEN {10**i}" for i, s in enumerate(Status))


def _weight(column: str) -> str:
    return f"(CASE {column} {_WEIGHTS} ELSE 0 END)"


def _stamp(column: str) -> str:
    """A timestamp as a number, to the microsecond where the database keeps it."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})"  # numeric: exact
    return f"julianday({column})"  # SQLite


_RUN_TERMS = f"COUNT(*), SUM({_stamp('r.updated_at')})"

# Only constants (table names, status words) and ORM-compiled SQL are formatted in; every value
# is a parameter.
CHAIN_VERSION_SQL = f"""
SELECT c.status, c.error, c.superseded_by_id, c.finished_at, c.mirror_requested_at,
    c.mirror_lease_until, r.*
FROM {CHAIN_TABLE} c,
    (SELECT {_RUN_TERMS} FROM {RUN_TABLE} r WHERE r.chain_id = %s) r
WHERE c.id = %s{{chains}}"""  # noqa: S608

_CHAIN_TERMS = f"""COUNT(*), SUM(c.id), SUM(c.id * {_weight("c.status")}),
    SUM(CASE WHEN c.superseded_by_id IS NULL THEN 0 ELSE c.superseded_by_id END),
    MAX(c.finished_at)"""

_CHAINS_VERSION_SQL = f"""
WITH w AS ({{window}})
SELECT c.*, r.* FROM
    (SELECT {_CHAIN_TERMS} FROM {CHAIN_TABLE} c WHERE c.id IN (SELECT * FROM w)) c,
    (SELECT {_RUN_TERMS} FROM {RUN_TABLE} r WHERE r.chain_id IN (SELECT * FROM w)) r"""  # noqa: S608

# The release matrix: what is new for the ref (a chain that targets it, a run on it) ...
# ({chains}: the reader's visibility on a chain's ``repository_id``, "" for an administrator;
# {runs}: the runs on the ref, counted per chain from the index ``run_ref``; for a reader, only
# those of chains they may view, each chain's project looked up by primary key: never a scan of
# every chain, whatever the planner thinks of the visibility array) ...
_RELEASE_HEAD_SQL = f"""
SELECT (SELECT MAX(id) FROM {CHAIN_TABLE} WHERE target_branch = %s{{chains}}) AS newest, q.*
FROM ({{runs}}) q"""  # noqa: S608
_RUNS_ON_REF = f"SELECT MAX(r.chain_id), COUNT(*) FROM {RUN_TABLE} r WHERE r.ref = %s"  # noqa: S608
_RUNS_ON_REF_VISIBLE = f"""
SELECT MAX(g.chain_id), CAST(SUM(g.runs) AS bigint)
FROM (SELECT chain_id, COUNT(*) AS runs FROM {RUN_TABLE} WHERE ref = %s GROUP BY chain_id) g
WHERE {{visible}}"""  # noqa: S608
_PROJECT_OF_CHAIN = f"(SELECT v.repository_id FROM {CHAIN_TABLE} v WHERE v.id = g.chain_id)"  # noqa: S608

# ... and how the chains on the page stand ({ids}: the chains' ids; the runs counted are those of
# the shown chains the reader may view, found by primary key).
_SHOWN_SQL = f"""
SELECT c.*, r.* FROM
    (SELECT {_CHAIN_TERMS} FROM {CHAIN_TABLE} c WHERE {{ids}}{{chains}}) c,
    (SELECT {_RUN_TERMS} FROM {RUN_TABLE} r
        WHERE r.chain_id IN (SELECT id FROM {CHAIN_TABLE} WHERE {{ids}}{{chains}})) r"""  # noqa: S608
MAX_SHOWN = 500


def _digest(row: Any) -> str:
    return hashlib.blake2b(repr(row).encode(), digest_size=8).hexdigest()


def chain_version(pk: int, repositories: frozenset[int] | None = None) -> str:
    """A cursor for everything the chain page shows: one query. A chain outside
    ``repositories`` (what the reader may view; None: everything) has the cursor of a chain
    that does not exist, so a poll can neither tell it exists nor follow it."""
    chains, visible = _visibility(repositories)
    with connection.cursor() as cursor:
        cursor.execute(CHAIN_VERSION_SQL.format(chains=chains), [pk, pk, *visible])
        return _digest(cursor.fetchone())


def _chains_signature(window: QuerySet[Any, Any]) -> str:
    try:
        sql, params = window.query.sql_with_params()
    except EmptyResultSet:  # the reader may view no project: an empty window
        return _digest("nothing")
    with connection.cursor() as cursor:
        cursor.execute(_CHAINS_VERSION_SQL.format(window=sql), params)
        return _digest(cursor.fetchone())


def chains_version(chains: QuerySet[Chain], page_number: Any) -> str:
    """A cursor for one page of ``chains``: one query."""
    try:
        number = min(max(int(page_number or 1), 1), MAX_PAGE)
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * PAGE_SIZE
    return _chains_signature(chains.values("pk")[start : start + PAGE_SIZE])


def _placeholders(ids: list[int]) -> str:
    return ", ".join(["%s"] * len(ids)) or "NULL"


def _among(column: str, values: list[int], *, opaque: bool = False) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL (planned once, however
    many values), a list of placeholders elsewhere.

    ``opaque``: a filter on rows found otherwise (by primary key, ref or target branch), never
    an index condition, and an array the planner does not look into: it reaches the plan as a
    value read at run time (a one-row subquery), not a constant. The planner estimates ``= ANY``
    of a constant array element by element against the column's statistics (with 200 visible
    projects named four times, 1.4 ms of a release cursor's planning), and, given an array it
    cannot see, would guess it selective and read every visible chain through the
    ``repository_id`` index; ``IS TRUE`` keeps the condition out of any index."""
    if connection.vendor != "postgresql":
        return f"{column} IN ({_placeholders(values)})", list(values)
    if opaque:
        return f"({column} = ANY((SELECT %s::bigint[])::bigint[])) IS TRUE", [values]
    return f"{column} = ANY(%s)", [values]


def _visibility(
    repositories: frozenset[int] | None, column: str = "repository_id"
) -> tuple[str, list[Any]]:
    """The SQL condition narrowing chains (by ``column``, their ``repository_id``) to what the
    reader may view, and its parameters ("" for an administrator)."""
    if repositories is None:
        return "", []
    condition, params = _among(column, sorted(repositories), opaque=True)
    return f" AND {condition}", params


def _release_head_sql(ref: str, repositories: frozenset[int] | None) -> tuple[str, list[Any]]:
    chains, visible = _visibility(repositories)
    if repositories is None:
        runs, runs_params = _RUNS_ON_REF, [ref]
    else:
        own, own_params = _visibility(repositories, _PROJECT_OF_CHAIN)
        runs = _RUNS_ON_REF_VISIBLE.format(visible=own.removeprefix(" AND "))
        runs_params = [ref, *own_params]
    sql = _RELEASE_HEAD_SQL.format(chains=chains, runs=runs)
    return sql, [ref, *visible, *runs_params]


def _release_head(ref: str, repositories: frozenset[int] | None) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(*_release_head_sql(ref, repositories))
        return tuple(cursor.fetchone() or ())


def _shown_sql(ids: list[int], repositories: frozenset[int] | None) -> tuple[str, list[Any]]:
    """How the chains ``ids`` stand, counting only those the reader may view (``?shown=`` is
    the reader's to write: it must not report on a hidden chain)."""
    chains, visible = _visibility(repositories)
    among, shown = _among("id", ids)
    sql = _SHOWN_SQL.format(ids=among, chains=chains)
    return sql, [*shown, *visible, *shown, *visible]


def _shown_signature(ids: list[int], repositories: frozenset[int] | None) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(*_shown_sql(ids, repositories))
        return tuple(cursor.fetchone() or ())


def release_version(ref: str, shown: list[int], repositories: frozenset[int] | None) -> str:
    """A cursor for the release matrix of ``ref`` showing chains ``shown``, over what the reader
    may view (``repositories``; None: everything): one query for an administrator, two index
    lookups and two small aggregates (with the indexes in docs/dashboard.md)."""
    head, head_params = _release_head_sql(ref, repositories)
    now, now_params = _shown_sql(shown, repositories)
    sql = f"SELECT h.*, s.* FROM ({head}) h, ({now}) s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*head_params, *now_params])
        return _digest(tuple(cursor.fetchone() or ()))


def shown_ids(text: str) -> list[int]:
    """The chain ids a release page says it shows (``?shown=3,7,12``), at most MAX_SHOWN."""
    ids = [int(part) for part in text.split(",")[:MAX_SHOWN] if part.strip().isdigit()]
    return sorted(set(ids))


# --- the chain list, grouped by change ---------------------------------------------------------
#
# Every earlier chain of a change (or of a pushed branch or tag) is superseded by the next one
# (bots/engine/planning.py, pushes.py), so the latest chain of each change is the one no chain
# superseded, and a change's chains share (repository, change number, upstream ref).

EARLIER_SHOWN = 10  # earlier chains listed under a change when superseded chains are shown


def latest_chains(chains: QuerySet[Chain]) -> QuerySet[Chain]:
    """The latest chain of each change among ``chains``."""
    return chains.filter(superseded_by__isnull=True)


def change_key(chain: Chain) -> tuple[int, int | None, str]:
    return (chain.repository_id, chain.change_number, chain.upstream_ref)


@dataclass(frozen=True)
class RunDot:
    """What a mini status icon needs of a run: no variables, no error text."""

    pk: int
    chain_id: int
    parent_id: int | None
    repository_id: int
    key: str
    label: str
    status: str
    depth: int


@dataclass
class GroupedPage:
    page: Page[Chain]
    runs: dict[int, list[RunDot]]  # by chain, in tree order (depth, id)
    earlier_counts: dict[tuple[int, int | None, str], int]
    earlier: dict[tuple[int, int | None, str], list[Chain]]  # only when asked for


def _same_changes(heads: list[Chain]) -> QuerySet[Chain]:
    """The superseded chains of the changes of ``heads`` (a superset, narrowed in Python)."""
    numbers = sorted({c.change_number for c in heads if c.change_number is not None})
    refs = sorted({c.upstream_ref for c in heads if c.change_number is None})
    return Chain.objects.filter(
        Q(change_number__in=numbers) | Q(change_number__isnull=True, upstream_ref__in=refs),
        repository_id__in=sorted({c.repository_id for c in heads}),
        superseded_by__isnull=False,
    )


def grouped_page(chains: QuerySet[Chain], page_number: Any, *, show_earlier: bool) -> GroupedPage:
    """One page of the latest chain per change among ``chains``, each one's runs (for the mini
    status icons and the progress bar), how many earlier chains each change had, and (with
    ``show_earlier``) the newest EARLIER_SHOWN of them: four queries, five with the earlier."""
    heads = latest_chains(chains).select_related("repository", "forge").defer(*_secrets("forge__"))
    page = Paginator(heads, PAGE_SIZE).get_page(page_number)
    page.object_list = list(page.object_list)
    listed = page.object_list
    runs: dict[int, list[RunDot]] = defaultdict(list)
    if not listed:
        return GroupedPage(page, {}, {}, {})
    fields = ("pk", "chain_id", "parent_id", "repository_id", "key", "label", "status", "depth")
    for row in (
        Run.objects.filter(chain_id__in=[c.pk for c in listed])
        .order_by("chain_id", "depth", "pk")
        .values_list(*fields)
    ):
        runs[row[1]].append(RunDot(*row))
    wanted = {change_key(c) for c in listed}
    same = _same_changes(listed)
    counts: dict[tuple[int, int | None, str], int] = {}
    for row in (
        same.values("repository_id", "change_number", "upstream_ref")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        key = (row["repository_id"], row["change_number"], row["upstream_ref"])
        if key in wanted:
            counts[key] = row["n"]
    earlier: dict[tuple[int, int | None, str], list[Chain]] = defaultdict(list)
    if show_earlier and counts:
        numbered = same.annotate(
            n=Window(
                RowNumber(),
                partition_by=[F("repository_id"), F("change_number"), F("upstream_ref")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        ).filter(n__lte=EARLIER_SHOWN)
        for chain in numbered.only(
            "pk",
            "repository_id",
            "change_number",
            "upstream_ref",
            "head_sha",
            "status",
            "created_at",
            "superseded_by_id",
            "title",
        ).order_by("-created_at", "-pk"):
            if change_key(chain) in wanted:
                earlier[change_key(chain)].append(chain)
    return GroupedPage(page, dict(runs), counts, dict(earlier))
