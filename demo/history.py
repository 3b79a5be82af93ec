"""Two weeks of past chains for the demo, so that the chain page shows an ETA and the repository
and downstream health pages show their plots from the first minute (chains/eta.py,
chains/history.py read the runs themselves).

Each past run goes through the run state machine's own writers (chains/runstate.py: planned,
sent, running, finished; a retry is a new attempt with the earlier one kept, as
``bots.services.retry_run`` does), so its attempts, times, failure reasons and the chain's status
are what the engine would have left. The rows are then written with a few bulk inserts.

Durations come from demo/world.py's timings with noise from a fixed seed: the same day gives
the same history. Seeding again the same (UTC) day does nothing; on a later day the old history
is replaced by one ending yesterday.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from bots.forges.base import FailedJob
from chains import failures, runstate
from chains.models import Chain, Repository, Run, RunAttempt
from chains.status import Status
from demo import world

REASON = "seeded demo history"  # what marks the seeded chains (and nothing else)
DAYS = 14
CHAINS_PER_DAY = 6
RELEASE_EVERY = 3  # days between two release tags
NOISE = 0.15  # durations vary by this share around the timing, and a few run much longer
RANDOM_SEED = 13
FIRST_CHANGE = 900  # past merge requests are !900 and up, far from the live demo's !1
TITLES = (
    "Cache search results",
    "Bump the API client",
    "Fix the basket total rounding",
    "Log slow queries",
    "Translate the checkout page",
    "Retry payment webhooks",
    "Drop the legacy export",
    "Paginate the order list",
)
AUTHORS = ("alice", "dora", "gus")


@dataclass(frozen=True)
class Target:
    """How one downstream target behaved over the past two weeks."""

    key: str
    label: str
    path: str
    fails: float = 0.0  # share of runs that fail for good
    flaky: float = 0.0  # share of runs that fail once, then pass on the automatic retry
    reason: str = "script_failure"
    job: str = "test"
    parent: str = ""  # the key of the run that triggers it (a nested run)
    retry: tuple[int, tuple[str, ...]] = (0, ())
    quarantined_days: int = 0  # soft failures over the last days (the quarantine in force)


MR_TARGETS = (
    Target("api", "API service", world.API, fails=0.04, reason="runner_system_failure"),
    Target("docs", "Docs preview (GitHub)", world.DOCS, parent="api", reason="failure"),
    Target(
        "web",
        "Web front end",
        world.WEB,
        flaky=0.3,
        fails=0.03,
        job="e2e-chrome",
        retry=(2, ("script_failure",)),
    ),
    Target(
        "e2e",
        "Browser tests",
        world.E2E,
        fails=0.35,
        reason="runner_system_failure",
        job="browser-farm",
        quarantined_days=4,
    ),
)
RELEASE_TARGETS = (Target("release", "Release packages (tags)", world.PACKAGES, fails=0.1),)


@dataclass
class _Chain:
    chain: Chain
    runs: list[Run] = field(default_factory=list)
    parents: dict[int, int] = field(default_factory=dict)  # run index → parent's run index
    attempts: list[tuple[int, RunAttempt]] = field(default_factory=list)  # (run index, attempt)


def seed(repositories: dict[str, Repository], *, now: datetime | None = None) -> int:
    """Write the history (see the module's docstring); returns how many chains were written
    (0: today's history is already there). ``repositories``: the demo's projects by path
    (demo/seed.py), acme/app among them."""
    now = now or timezone.now()
    end = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)  # today, 00:00 UTC
    seeded = Chain.objects.filter(reason=REASON)
    newest = seeded.order_by("-created_at").values_list("created_at", flat=True).first()
    if newest is not None and end - timedelta(days=1) <= newest < end:
        return 0
    app = repositories[world.APP]
    planned = _plan(app, repositories, end, random.Random(RANDOM_SEED))
    quarantine_from = {
        t.path: end - timedelta(days=t.quarantined_days) for t in MR_TARGETS if t.quarantined_days
    }
    with transaction.atomic():
        seeded.delete()
        _write(planned, quarantine_from)
    return len(planned)


def _plan(
    app: Repository, repositories: dict[str, Repository], end: datetime, rng: random.Random
) -> list[_Chain]:
    out = []
    number = FIRST_CHANGE
    for day in range(DAYS, 0, -1):
        morning = end - timedelta(days=day) + timedelta(hours=8)
        for i in range(CHAINS_PER_DAY):
            at = morning + timedelta(
                minutes=90 * i + rng.randint(0, 40), seconds=rng.randint(0, 59)
            )
            out.append(_merge_request(app, repositories, number, at, rng))
            number += 1
        if day % RELEASE_EVERY == 0:
            version = f"v0.{DAYS - day + 1}.0"
            at = morning + timedelta(hours=9, minutes=rng.randint(0, 30))
            out.append(_release(app, repositories, version, at, rng))
    return out


def _chain(app: Repository, at: datetime, rng: random.Random, **fields: Any) -> Chain:
    author = rng.choice(AUTHORS)
    return Chain(
        forge_id=app.forge_id,
        repository=app,
        head_sha=f"{rng.getrandbits(160):040x}",
        reason=REASON,
        author=author,
        runs_for=author,
        actor=author,
        created_at=at,
        **fields,
    )


def _merge_request(
    app: Repository,
    repositories: dict[str, Repository],
    number: int,
    at: datetime,
    rng: random.Random,
) -> _Chain:
    title = TITLES[number % len(TITLES)]
    branch = "feature/" + title.lower().replace(" ", "-")
    chain = _chain(
        app,
        at,
        rng,
        change_number=number,
        title=title,
        trigger_action="opened",
        source_branch=branch,
        target_branch="main",
        upstream_ref=f"refs/merge-requests/{number}/head",
    )
    return _runs(_Chain(chain), MR_TARGETS, repositories, at, rng)


def _release(
    app: Repository, repositories: dict[str, Repository], tag: str, at: datetime, rng: random.Random
) -> _Chain:
    chain = _chain(app, at, rng, title=tag, upstream_ref=f"refs/tags/{tag}")
    return _runs(_Chain(chain), RELEASE_TARGETS, repositories, at, rng)


def _runs(
    planned: _Chain,
    targets: tuple[Target, ...],
    repositories: dict[str, Repository],
    at: datetime,
    rng: random.Random,
) -> _Chain:
    by_key: dict[str, int] = {}
    for target in targets:
        parent = planned.runs[by_key[target.parent]] if target.parent else None
        run = Run(
            chain=planned.chain,
            key=target.key,
            label=target.label,
            repository=repositories[target.path],
            ref="main",
            depth=2 if parent else 1,
            retry_max=target.retry[0],
            retry_when=list(target.retry[1]),
            created_at=at,
        )
        runstate.initial(run, waits=parent is not None)
        start = at + timedelta(seconds=rng.uniform(2, 6))
        if parent is not None:
            if parent.status != Status.SUCCESS:
                assert parent.finished_at is not None
                names = parent.label or parent.key
                runstate.move(
                    run,
                    Status.SKIPPED,
                    error=f"not run: {names} did not succeed",
                    now=parent.finished_at,
                )
                _keep(planned, by_key, target, run, parent)
                continue
            runstate.move(run, Status.QUEUED)
            start = (parent.finished_at or at) + timedelta(seconds=rng.uniform(1, 3))
        _attempts(planned, len(planned.runs), run, target, start, rng)
        _keep(planned, by_key, target, run, parent)
    return planned


def _keep(
    planned: _Chain, by_key: dict[str, int], target: Target, run: Run, parent: Run | None
) -> None:
    by_key[target.key] = len(planned.runs)
    if parent is not None:
        planned.parents[len(planned.runs)] = planned.runs.index(parent)
    planned.runs.append(run)


def _attempts(
    planned: _Chain, index: int, run: Run, target: Target, start: datetime, rng: random.Random
) -> None:
    """Send and run the run; a flaky one fails first and its `retry:` runs it again."""
    roll = rng.random()
    outcomes = [Status.SUCCESS]
    if roll < target.fails:
        outcomes = [Status.FAILED] * (target.retry[0] + 1 if target.retry[0] else 1)
    elif roll < target.fails + target.flaky:
        outcomes = [Status.FAILED, Status.SUCCESS]
    timing = world.TIMINGS[target.path]
    earlier_end: datetime | None = None
    for number, outcome in enumerate(outcomes, start=1):
        if number > 1:
            planned.attempts.append((index, RunAttempt.of(run)))
            run.attempt = number
            run.retried_for = target.reason
            runstate.restart(run, remote=True)
        pipeline = str(rng.randint(10_000, 99_999))
        run.remote_id = run.remote_id or pipeline
        run.dispatch = Run.Dispatch.SENT
        run.triggered_at = run.triggered_at or start
        runstate.sent(run)
        started = start + timedelta(seconds=timing.pending * rng.uniform(0.5, 2.0))
        runstate.apply_report(run, Status.RUNNING, started_at=started, earlier_end=earlier_end)
        seconds = _duration(timing.running, rng) * (0.4 if outcome == Status.FAILED else 1.0)
        finished = started + timedelta(seconds=seconds)
        runstate.apply_report(run, outcome, finished_at=finished, earlier_end=earlier_end)
        run.last_seen_at = finished
        if outcome == Status.FAILED:
            job = FailedJob(name=target.job, stage="test", reason=target.reason, url="", step="")
            run.failed_jobs = failures.stored([job], attempt=number, pipeline=run.remote_id)
        earlier_end = finished
        start = finished + timedelta(seconds=rng.uniform(1, 4))


def _duration(typical: float, rng: random.Random) -> float:
    """A duration around ``typical``: gaussian noise, and now and then a slow run."""
    seconds = typical * (1 + rng.gauss(0, NOISE))
    if rng.random() < 0.05:
        seconds *= rng.uniform(1.5, 2.2)
    return max(1.0, seconds)


def _write(planned: list[_Chain], quarantine_from: dict[str, datetime]) -> None:
    for item in planned:
        runs = item.runs
        for run in runs:
            since = quarantine_from.get(run.repository.path)
            if since is not None and item.chain.created_at >= since:
                run.soft_fail, run.quarantine_reason = True, world.QUARANTINE_REASON
        views = [
            runstate.view(r.status, r.strategy, r.dispatch == Run.Dispatch.SENT, r.soft_fail)
            for r in runs
        ]
        item.chain.status = runstate.chain_status("", views)
        item.chain.finished_at = max(r.finished_at for r in runs if r.finished_at)
    started = {id(item.chain): item.chain.created_at for item in planned}  # the insert moves it
    chains = Chain.objects.bulk_create([item.chain for item in planned])
    _backdate(Chain, chains, "created_at", lambda c: started[id(c)])
    for item in planned:
        for run in item.runs:
            run.chain = item.chain
    top = [run for item in planned for i, run in enumerate(item.runs) if i not in item.parents]
    Run.objects.bulk_create(top)
    nested = []
    for item in planned:
        for child, parent in item.parents.items():
            item.runs[child].parent = item.runs[parent]
            nested.append(item.runs[child])
    Run.objects.bulk_create(nested)
    runs = [run for item in planned for run in item.runs]
    _backdate(Run, runs, "created_at", lambda r: r.triggered_at or r.finished_at)
    _backdate(Run, runs, "updated_at", lambda r: r.finished_at)
    attempts = []
    for item in planned:
        for index, attempt in item.attempts:
            attempt.run = item.runs[index]
            attempts.append(attempt)
    RunAttempt.objects.bulk_create(attempts)


def _backdate(
    model: type[Chain] | type[Run],
    rows: Sequence[Any],
    name: str,
    when: Callable[[Any], datetime | None],
) -> None:
    """``auto_now`` fields take the time of the insert: give them the past time, in one
    statement per batch (bulk_update writes the values as they are)."""
    for row in rows:
        setattr(row, name, when(row))
    model.objects.bulk_update(rows, [name], batch_size=500)
