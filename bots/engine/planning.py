"""From a change to a chain: read `.baton.yml` (and what it refers to) through the forge, plan,
and create the Chain and its Runs in one transaction; supersede the change's previous chain.
Also the nested step: what a triggered project's own `.baton.yml` sets off in turn."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from bots import caching, kicks, logcontext, services
from bots.engine import expansion, fanout
from bots.engine.mirroring import mirror_new, request_mirror
from bots.engine.principals import (
    allowed,
    check_project,
    confirm_change,
    lock_change,
    principals,
    repeat_of,
    still_open,
)
from bots.engine.tracking import release
from bots.events import ChangeAction, ChangeEvent, PushEvent
from bots.forges.base import Forge as ForgeClient
from bots.forges.base import ForgeError, RemoteProject
from bots.forges.registry import forge_for
from chains import audit, deadline, quarantine, runstate
from chains.conditions import Context
from chains.config import BatonConfig, ConfigError, merge, parse_config
from chains.dotenv import parse_dotenv
from chains.models import Chain, Delivery, Forge, Repository, Rule, Run
from chains.paths import is_full_sha
from chains.planner import Change, Plan, PlannedRun, change_context, plan
from chains.policy import Principal, UserPrincipal, Verdict
from chains.status import Status
from notify import hooks as notify_hooks

log = logging.getLogger(__name__)


class PlanningError(Exception):
    pass


REASONS = {
    ChangeAction.OPENED: "opened",
    ChangeAction.REOPENED: "reopened",
    ChangeAction.NEW_COMMITS: "new commits",
    ChangeAction.RERUN: "re-run",
}


def ensure_repository(
    forge: Forge,
    path: str,
    *,
    remote_id: str = "",
    web_url: str = "",
    public: bool | None = None,
    default_branch: str = "",
    row: Repository | None = None,
) -> Repository:
    """The project's row (``row``, when the caller has read it), made if Baton has none yet,
    brought up to date with what is given of it."""
    repo = row or Repository.objects.get_or_create(forge=forge, path=path)[0]
    changed: list[str] = []
    if default_branch and repo.default_branch != default_branch:
        repo.default_branch, changed = default_branch, [*changed, "default_branch"]
    if public is not None:
        visibility = Repository.Visibility.PUBLIC if public else Repository.Visibility.PRIVATE
        if repo.visibility != visibility:
            repo.visibility, changed = visibility, [*changed, "visibility"]
    if remote_id and repo.remote_id != remote_id:
        repo.remote_id, changed = remote_id, [*changed, "remote_id"]
    if web_url and repo.web_url != web_url:
        repo.web_url, changed = web_url, [*changed, "web_url"]
    if changed:
        repo.save(update_fields=changed)
    return repo


def upstream_repository(forge: Forge, event: ChangeEvent | PushEvent) -> Repository | str:
    """The row of the project a change or push hook is from, brought up to date with what the
    hook says of it (id, link, visibility, default branch); or, when the hook's project id does
    not fit the project Baton knows under that path, why not (in words)."""
    change = event.change
    row = Repository.objects.filter(forge=forge, path=change.project).first()
    wrong_project = check_project(
        forge, change.project, event.project_id, known=row.remote_id if row else ""
    )
    if wrong_project:
        return wrong_project
    return ensure_repository(
        forge,
        change.project,
        remote_id=event.project_id,
        web_url=change.project_url,
        public=event.public,
        default_branch=event.default_branch,
        row=row,
    )


def seen_repository(forge: Forge, path: str) -> Repository:
    """The row of a project Baton heard of through a hook that does not say how visible it is (a
    comment, a re-run): when no hook or forge answer has filled it in yet, the forge is asked, so
    what Baton writes there is redacted by the project's real visibility, never a default."""
    repo = ensure_repository(forge, path)
    if repo.remote_id:
        return repo
    try:
        remote = forge_for(forge).get_project(path)
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return repo
    repo.update_from(remote)
    return repo


def resolve_forge(name: str | None, upstream: Forge) -> Forge:
    """The forge a target names (`github:acme/docs`): a forge slug, or a kind with one forge."""
    if not name:
        return upstream
    by_slug = Forge.objects.filter(slug=name).first()
    if by_slug is not None:
        return by_slug
    if name == upstream.kind:
        return upstream
    matches = list(Forge.objects.filter(kind=name)[:2])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PlanningError(f"no forge called {name!r} is set up in Baton")
    raise PlanningError(f"several {name} forges are set up; name one by its slug")


# --- reading what a plan needs -----------------------------------------------------------------


AT_COMMIT_SECONDS = 60.0  # how long a file read at a commit is remembered


def read_file(forge: Forge, project: str, path: str, ref: str) -> str | None:
    """A file of ``project`` at ``ref`` (None when there is none). A file at a commit (a full
    SHA) never changes: it is remembered for AT_COMMIT_SECONDS, so the push hook and the change
    hook that one `git push` sends read `.baton.yml` once between them. A branch is read
    every time."""
    client = forge_for(forge)
    if not is_full_sha(ref):
        return client.read_file(project, path, ref)
    return caching.remembered(
        caching.key("file-at-commit", forge.pk, project, path, ref),
        AT_COMMIT_SECONDS,
        lambda: client.read_file(project, path, ref),
    )


def read_config(forge: Forge, project: str, ref: str) -> BatonConfig | None:
    """The project's `.baton.yml` at ``ref`` (None when it has none). Raises ConfigError."""
    text = read_file(forge, project, settings.BATON_CONFIG_PATH, ref)
    return None if text is None else parse_config(text)


def with_rules(config: BatonConfig, project: str) -> BatonConfig:
    """The file merged with the enabled admin rules that apply to the project."""
    rules = [
        rule.parsed() for rule in Rule.objects.filter(enabled=True) if rule.applies_to(project)
    ]
    return merge(config, *rules) if rules else config


def read_params(
    forge: Forge, project: str, ref: str, config: BatonConfig
) -> dict[str, dict[str, str] | None]:
    paths = {t.params_file for t in config.downstream if t.params_file}
    params: dict[str, dict[str, str] | None] = {}
    for path in sorted(paths):
        deadline.check()
        text = read_file(forge, project, path, ref)
        params[path] = None if text is None else parse_dotenv(text, path=path)
    return params


def plan_change(forge: Forge, event: ChangeEvent) -> tuple[Plan, str]:
    """The plan for a change, or an empty plan and why none could be made (in words)."""
    change = event.change
    client = forge_for(forge)
    # A change from a fork never gains from its own edits: read the file from the target branch.
    config_ref = change.target_branch if event.from_fork else change.head_sha
    path = settings.BATON_CONFIG_PATH
    try:
        config = read_config(forge, change.project, config_ref) or BatonConfig()
    except ConfigError as exc:
        return Plan(()), f"{path} is invalid: {exc}"
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return Plan(()), f"could not read {path}: {exc.message}"
    try:
        config = with_rules(config, change.project)
    except ConfigError as exc:
        return Plan(()), f"the admin rules for {change.project} do not fit {path}: {exc}"
    try:
        params = read_params(forge, change.project, config_ref, config)
    except ConfigError as exc:
        return Plan(()), f"a params_file of {path} cannot be used: {exc}"
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return Plan(()), f"could not read {path}: {exc.message}"
    changed_files = _lazy(lambda: client.changed_files(change.project, change.number or 0))
    context = Context(**{**change_context(change).__dict__, "changed_files": changed_files})
    try:
        return plan(change, config, context=context, params=params), ""
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return Plan(()), f"could not read the changed files: {exc.message}"


def _lazy(load: Callable[[], Sequence[str]]) -> Callable[[], Sequence[str]]:
    return functools.cache(load)


# --- changes -> chains -------------------------------------------------------------------------


def handle_change(
    forge: Forge,
    event: ChangeEvent,
    delivery: Delivery | None,
    *,
    only: frozenset[str] | None = None,
    principal: UserPrincipal | None = None,
) -> str:
    """``only``: plan just these targets (`/baton run key…`). ``principal``: the Baton user who
    started it from the dashboard or the API: their grants count as well as the author's (a
    forge account who acted counts the same way, through ``event.actor``)."""
    if event.action in (ChangeAction.EDITED, ChangeAction.MERGED):
        return f"{event.action}: nothing to trigger"
    change = event.change
    upstream = upstream_repository(forge, event)
    if isinstance(upstream, str):
        return upstream
    if event.action == ChangeAction.CLOSED:
        if delivery is not None and (refused := still_open(forge_for(forge), event)):
            return refused

        closer = services.Actor(event.actor or change.author or "baton", "webhook")
        open_chains = Chain.objects.filter(
            repository=upstream, change_number=change.number, superseded_by__isnull=True
        )
        for chain in open_chains:
            services.cancel_chain(
                chain, actor=closer, reason="the change was closed", only_interruptible=True
            )
        return "closed: interruptible runs canceled"

    # A delivery said so: the same event under another key is a repeat (checked again under
    # the lock below; this first look spares the forge the reads).
    repeats = delivery is not None
    if repeats and (first := repeat_of(upstream, event)) is not None:
        return f"a repeat of chain {first} (same change, commit and action)"
    confirmed = confirm_change(forge_for(forge), event)
    if isinstance(confirmed, str):
        return confirmed
    event, change = confirmed, confirmed.change
    actor = event.actor or change.author
    the_plan, error = plan_change(forge, event)
    if only is not None and not error:
        the_plan = the_plan.only(only)
    targets = [] if error else resolve_targets(forge, upstream, the_plan.runs)
    people = principals(forge, change.author, actor, principal)
    targets = keep_targets([permitted(people, *target) for target in targets])
    reason = REASONS[event.action]
    try:
        # A delivery handled again after its chain was written: the chain's insert fails
        # (one chain per delivery), caught as IntegrityError below.
        with transaction.atomic():
            lock_change(upstream, change.number)
            if repeats and (first := repeat_of(upstream, event)) is not None:
                return f"a repeat of chain {first} (same change, commit and action)"
            previous = list(
                Chain.objects.select_for_update(of=("self",)).filter(
                    repository=upstream, change_number=change.number, superseded_by__isnull=True
                )
            )
            reusable = (
                _green_runs(previous, change.head_sha) if event.action == ChangeAction.RERUN else {}
            )
            chain = Chain(
                forge=forge,
                repository=upstream,
                delivery=delivery,
                change_number=change.number,
                change_url=change.url,
                title=change.title[:500],
                author=change.author,
                runs_for=change.author,
                runs_for_user=principal.user if principal else None,
                actor=actor,
                trigger_action=str(event.action),
                source_branch=change.source_branch,
                target_branch=change.target_branch,
                head_sha=change.head_sha,
                upstream_ref=change.upstream_ref,
                from_fork=event.from_fork,
                reason=f"{reason} by {actor}" if actor else reason,
                error=error,
                summary_comment_id=previous[0].summary_comment_id if previous else "",
            )
            held = quarantine.reasons(repository.pk for _, repository, _ in targets)
            runs = [new_run(chain, *target, held=held, reuse=reusable) for target in targets]
            # Written with the chain, not settled and requested after (the row is new: nothing
            # to lock, read or update): its status from its runs, and a mirror asked for.
            chain.status, chain.finished_at = runstate.new_chain_status(error, runs)
            chain.mirror_requested_at = timezone.now()
            chain.save(force_insert=True)
            logcontext.bind(chain_id=chain.pk)  # this task's lines and the tasks it queues
            Chain.objects.filter(pk__in=[p.pk for p in previous]).update(superseded_by=chain)
            created = start_runs(runs)
            notify_hooks.chain_planned(chain.pk, the_plan.notify)  # its `notify:` channels
            log.info(
                "chain %s started for %s!%s: %s runs",
                chain.pk,
                change.project,
                change.number,
                len(created),
            )
            audit.record(
                "chain.start",
                actor=actor or "unknown",
                surface="webhook",
                chain=chain,
                target=f"{change.project}!{change.number}",
                detail={
                    "author": change.author,
                    "reason": reason,
                    "sha": change.head_sha,
                    "runs": len(created),
                    "excluded": dict(the_plan.excluded),
                    "error": error,
                },
            )
            for old in previous:
                transaction.on_commit(functools.partial(_cancel_superseded, old))
            mirror_new(chain.pk)
    except IntegrityError:
        return "chain exists already"
    return f"chain {chain.pk} with {len(created)} runs" + (f" (error: {error})" if error else "")


def start_runs(runs: list[Run]) -> list[Run]:
    """Insert a new chain's runs (in the caller's transaction) and, after commit, send those
    that may go: a single plain run from this task at once (``fanout.claim_alone``: written
    claimed, no queue trip), any others from tasks; runs that wait for reused ones are
    released."""
    alone = fanout.claim_alone(runs)
    created = Run.objects.bulk_create(runs)
    if alone is not None:
        transaction.on_commit(functools.partial(fanout.send_now, alone))
    kicks.trigger_all(r.pk for r in created if r.status == Status.QUEUED and r is not alone)
    if any(run.status == Status.WAITING for run in created):
        chain_id = created[0].chain_id
        transaction.on_commit(lambda: release(chain_id))
    return created


def resolve_targets(
    forge: Forge, upstream: Repository, planned_runs: Sequence[PlannedRun]
) -> list[tuple[PlannedRun, Repository, str]]:
    """Each target with its repository. Nothing is written: a project Baton has not seen yet is an
    unsaved Repository (its visibility unknown, so treated as private) until ``keep_targets``."""
    resolved: list[tuple[PlannedRun, Repository, str]] = []
    wanted: dict[tuple[int, str], Repository] = {}
    for planned in planned_runs:
        deadline.check()
        if planned.is_child:
            resolved.append((planned, upstream, planned.error))
            continue
        try:
            target_forge = resolve_forge(planned.forge, forge)
        except PlanningError as exc:
            resolved.append((planned, upstream, str(exc)))
            continue
        key = (target_forge.pk, planned.project)
        if key not in wanted:
            wanted[key] = Repository(forge=target_forge, path=planned.project)
        resolved.append((planned, wanted[key], planned.error))
    _known(wanted)
    return [(planned, wanted.get((r.forge_id, r.path), r), e) for planned, r, e in resolved]


def _known(wanted: dict[tuple[int, str], Repository]) -> None:
    """Put the stored rows in place of the unsaved ones (one query per forge), each with the
    forge record the unsaved one has (read with every row, its secrets were decrypted twice a
    row)."""
    paths: dict[int, list[str]] = {}
    for forge_id, path in wanted:
        paths.setdefault(forge_id, []).append(path)
    for forge_id, some in paths.items():
        for repo in Repository.objects.filter(forge_id=forge_id, path__in=some):
            repo.forge = wanted[(forge_id, repo.path)].forge
            wanted[(forge_id, repo.path)] = repo


UNKNOWN_PROJECT = "(a project Baton does not know)"


def unknown_repository(forge: Forge) -> Repository:
    """The one row per forge that runs of refused or missing targets point at: Baton keeps no row
    for a project it has not seen; the run's error says, in words, what the file named."""
    repo, _ = Repository.objects.get_or_create(
        forge=forge, path=UNKNOWN_PROJECT, defaults={"visibility": Repository.Visibility.PRIVATE}
    )
    return repo


def keep_targets(
    targets: list[tuple[PlannedRun, Repository, str]],
) -> list[tuple[PlannedRun, Repository, str]]:
    """Rows for the targets Baton has not seen yet: only for a target the policy permitted (no
    error) and the forge confirms exists, with the visibility the forge gives. Refused, skipped
    and missing targets point at ``unknown_repository``; a `.baton.yml` naming hundreds of
    projects that do not exist adds no repository. The forge is asked about the new targets
    side by side (``CONFIRM_THREADS`` at a time); the rows are written here, in this thread."""
    new = {
        id(repository): repository
        for planned, repository, error in targets
        if repository.pk is None and not (error or planned.skip)
    }
    answers = _ask_forges(list(new.values()))
    confirmed = _confirmed_rows(new, answers)
    kept = []
    for planned, repository, error in targets:
        if repository.pk is None:
            if error or planned.skip:
                repository = unknown_repository(repository.forge)
            else:
                repository, error = confirmed[id(repository)]
        kept.append((planned, repository, error))
    return kept


CONFIRM_THREADS = 32  # forge reads about new targets in flight at once, per planning task


def _ask_forges(candidates: list[Repository]) -> dict[int, RemoteProject | ForgeError]:
    """Each new target's project on its forge (an answer, or the permanent error); a transient
    error is raised (the delivery is retried). One at a time for one target; side by side for
    many, so a fan-out to 100 new projects costs a few forge round trips, not 100."""

    def ask(candidate: Repository) -> RemoteProject | ForgeError:
        deadline.check()
        try:
            return forge_for(candidate.forge).get_project(candidate.path)
        except ForgeError as exc:
            if not exc.permanent:
                raise
            return exc

    def ask_in_pool(candidate: Repository) -> RemoteProject | ForgeError:
        try:
            return ask(candidate)
        finally:
            connections.close_all()  # this thread's own, if an adapter read a token from the db

    if len(candidates) <= 1:
        return {id(c): ask(c) for c in candidates}
    # The deadline (a context variable) goes with each call into the pool's threads.
    with ThreadPoolExecutor(min(CONFIRM_THREADS, len(candidates))) as pool:
        futures = {
            id(c): pool.submit(contextvars.copy_context().run, ask_in_pool, c) for c in candidates
        }
        return {key: future.result() for key, future in futures.items()}


def _confirmed_rows(
    new: dict[int, Repository], answers: dict[int, RemoteProject | ForgeError]
) -> dict[int, tuple[Repository, str]]:
    """The rows of the targets the forge confirmed (created together: one INSERT for a fan-out
    to new projects, a row someone else created meanwhile kept and brought up to date), and
    the missing ones in words, pointing at ``unknown_repository``."""
    out: dict[int, tuple[Repository, str]] = {}
    found: dict[int, tuple[Repository, RemoteProject]] = {}
    for key, candidate in new.items():
        remote = answers[key]
        if isinstance(remote, ForgeError):
            forge = candidate.forge
            out[key] = (
                unknown_repository(forge),
                (f"{candidate.path} could not be found on {forge.name}: {remote.message}"),
            )
        else:
            found[key] = (candidate, remote)
    if not found:
        return out
    fresh = []
    for candidate, remote in found.values():
        row = Repository(forge=candidate.forge, path=candidate.path)
        row.update_from(remote)  # unsaved: sets the fields only
        fresh.append(row)
    Repository.objects.bulk_create(fresh, ignore_conflicts=True)
    rows: dict[tuple[int, str], Repository] = {}
    by_forge: dict[int, list[str]] = {}
    for candidate, _ in found.values():
        by_forge.setdefault(candidate.forge_id, []).append(candidate.path)
    for forge_id, paths in by_forge.items():
        for row in Repository.objects.filter(forge_id=forge_id, path__in=paths).select_related(
            "forge"
        ):
            rows[(forge_id, row.path)] = row
    for key, (candidate, remote) in found.items():
        row = rows[(candidate.forge_id, candidate.path)]
        row.update_from(remote)  # saves only what differs (a row created meanwhile)
        out[key] = row, ""
    return out


def permitted(
    people: list[Principal], planned: PlannedRun, repository: Repository, error: str
) -> tuple[PlannedRun, Repository, str]:
    """Buildkite's rule: a chain triggers a target only if the person it runs for may (and
    whoever else set it off)."""
    if error or planned.skip:
        return planned, repository, error
    action = "deploy" if planned.deploy else "trigger"
    verdict = allowed(people, action, repository)
    return planned, repository, "" if verdict else verdict.reason


def _fingerprint(repository_id: int, ref: str, variables: dict[str, str]) -> tuple[object, ...]:
    return (repository_id, ref, tuple(sorted(variables.items())))


def _green_runs(previous: list[Chain], head_sha: str) -> dict[tuple[object, ...], Run]:
    """Successful runs of earlier chains on the same commit, by what they were sent with."""
    same_commit = [c.pk for c in previous if c.head_sha == head_sha]
    runs = Run.objects.filter(chain_id__in=same_commit, status=Status.SUCCESS, parent=None)
    return {_fingerprint(r.repository_id, r.ref, r.variables): r for r in runs}


def new_run(
    chain: Chain,
    planned: PlannedRun,
    repository: Repository,
    error: str,
    *,
    held: dict[int, str],
    parent: Run | None = None,
    reuse: dict[tuple[object, ...], Run] | None = None,
) -> Run:
    run = Run(
        chain=chain,
        parent=parent,
        depth=parent.depth + 1 if parent else 1,
        key=planned.key,
        label=planned.label,
        repository=repository,
        is_child=planned.is_child,
        ref=planned.ref or "",
        workflow=planned.workflow or "",
        variables=planned.variables,
        masked_variables=planned.masked_variables,
        has_masked_variables=bool(planned.masked_variables),
        strategy=planned.strategy,
        interruptible=planned.interruptible,
        soft_fail=planned.soft_fail,
        depends_on=list(planned.depends_on),
        allow_dependency_failure=planned.allow_dependency_failure,
        cancel_policy=planned.cancel,
        mode=planned.mode,
        wait_timeout=planned.wait_timeout,
        deploy_environment=planned.deploy or "",
        retry_max=planned.retry.max,
        retry_when=list(planned.retry.when),
    )
    if why := held.get(repository.pk, ""):
        run.soft_fail, run.quarantine_reason = True, why  # its failures do not fail the chain
    waits = bool(planned.depends_on) or parent is not None
    runstate.initial(run, waits=waits, error=error, skip=planned.skip or "")
    green = (reuse or {}).get(_fingerprint(repository.pk, run.ref, run.variables))
    if green is not None and run.status in (Status.QUEUED, Status.WAITING):
        runstate.reuse(run)
        run.reused_from = green
        run.remote_id, run.web_url, run.dispatch = green.remote_id, green.web_url, Run.Dispatch.SENT
        run.started_at, run.finished_at = green.started_at, green.finished_at
        run.error = f"reused: the same pipeline already passed in chain {green.chain_id}"
    return run


def _cancel_superseded(chain: Chain) -> None:
    services.cancel_chain(
        chain, actor=services.BATON, reason="superseded by a newer commit", only_interruptible=True
    )


def current_change(
    forge: Forge, project: str, number: int, person: str | None = None
) -> ChangeEvent:
    """The change as the forge has it now, asked for by ``person`` (default: its author); it
    runs for its author, and needs ``person``'s permissions too."""
    repo = seen_repository(forge, project)
    client = forge_for(forge)
    remote = client.get_change(project, number)
    change = Change(
        forge=forge.slug,
        project=project,
        project_url=repo.web_url,
        number=number,
        url=remote.url,
        source_branch=remote.source_branch,
        target_branch=remote.target_branch,
        head_sha=remote.head_sha,
        upstream_ref=client.change_ref(number),
        title=remote.title,
        author=remote.author,
        child_ref=remote.child_ref,
    )
    return ChangeEvent(
        action=ChangeAction.RERUN,
        change=change,
        project_id=repo.remote_id,
        from_fork=remote.from_fork,
        actor=person or remote.author,
        confirmed=True,
    )


@dataclass(frozen=True)
class DryRun:
    """What a change would trigger now, and whether it may: `/baton plan` and the dashboard."""

    change: Change
    plan: Plan
    error: str
    targets: list[tuple[PlannedRun, Repository, str, Verdict]]


def dry_run(
    forge: Forge,
    project: str,
    number: int,
    person: str | None,
    verdict_for: Callable[[str, str, Repository], Verdict],
) -> DryRun:
    """Plan the change as it is now, for ``person`` (default: its author), without starting
    anything; ``verdict_for(person, action, repo)`` says whether they may trigger (or deploy)
    each target."""
    event = current_change(forge, project, number, person)
    the_plan, error = plan_change(forge, event)
    upstream = seen_repository(forge, project)
    targets = []
    for planned, repository, problem in (
        [] if error else resolve_targets(forge, upstream, the_plan.runs)
    ):
        deadline.check()
        action = "deploy" if planned.deploy else "trigger"
        verdict = verdict_for(event.change.author, action, repository)
        if verdict and event.actor and event.actor != event.change.author:
            verdict = verdict_for(event.actor, action, repository)
        targets.append((planned, repository, problem, verdict))
    return DryRun(event.change, the_plan, error, targets)


def rerun_change(
    chain_id: int, actor: str, only: frozenset[str] | None = None, user_id: int | None = None
) -> str:
    """Plan the chain's change again on its latest commit, as if it had just been opened;
    green runs of an earlier chain on the same commit, sent with the same variables, are reused.
    It runs for the change's author, and needs the permissions of whoever asked as well:
    ``user_id``, the Baton user who asked from the dashboard or the API (never a forge account
    that happens to carry the same name), else the forge account ``actor`` (a comment)."""
    old = Chain.objects.select_related("forge", "repository").get(pk=chain_id)
    if old.change_number is None:
        return "not a change"
    if user_id is not None:
        user = get_user_model().objects.filter(pk=user_id).first()
        principal = UserPrincipal(user)
        event = current_change(
            old.forge, old.repository.path, old.change_number, principal.username
        )
        return handle_change(old.forge, event, None, only=only, principal=principal)
    event = current_change(old.forge, old.repository.path, old.change_number, actor)
    return handle_change(old.forge, event, None, only=only)


# --- nested chains -----------------------------------------------------------------------------


def lineage(run: Run) -> list[tuple[int, str, str]]:
    """(forge id, forge slug, project path) from the upstream change down to ``run``: the
    projects a chain passed through, whatever ref each ran on. A run's ancestry is its chain's
    upstream project and its parents (``Run.parent``), each in this same chain: Baton starts a
    chain only from a change, a push or a tag, never from a pipeline it triggered."""
    chain = run.chain
    steps: list[tuple[int, str, str]] = []
    node: Run | None = run
    while node is not None:
        repository = node.repository
        steps.append((repository.forge_id, repository.forge.slug, repository.path))
        node = (
            Run.objects.select_related("repository__forge").filter(pk=node.parent_id).first()
            if node.parent_id
            else None
        )
    steps.append((chain.forge_id, chain.forge.slug, chain.repository.path))
    return list(reversed(steps))


def cycle_path(path: list[tuple[int, str, str]], forge_id: int, slug: str, project: str) -> str:
    """The loop that triggering ``project`` would close, in words ("acme/app → acme/api →
    acme/app"; each with its forge, "gitlab:acme/app", when the loop crosses forges), or ""
    when ``project`` is not on ``path``. Projects compare by forge and path, not by ref:
    forges spell paths case-insensitively."""
    here = (forge_id, project.lower())
    on_path = [(f, p.lower()) for f, _, p in path]
    if here not in on_path:
        return ""
    loop = [*path[on_path.index(here) :], (forge_id, slug, project)]
    across = len({f for f, _, _ in loop}) > 1
    return " → ".join(f"{s}:{p}" if across else p for _, s, p in loop)


def _downstream_config(client: ForgeClient, repository: Repository, ref: str) -> BatonConfig | None:
    """A triggered project's `.baton.yml` at ``ref``, remembered per process for
    BATON_DOWNSTREAM_CONFIG_TTL seconds (a fan-out into one project reads it once)."""
    text = caching.remembered(
        caching.key("downstream-config", repository.pk, ref),
        settings.BATON_DOWNSTREAM_CONFIG_TTL,
        lambda: client.read_file(repository.path, settings.BATON_CONFIG_PATH, ref),
    )
    return None if text is None else parse_config(text)


def _child_depth(run: Run) -> int:
    """How many `self` child pipelines are stacked up to and including ``run``."""
    depth = 0
    node: Run | None = run
    while node is not None and node.is_child:
        depth += 1
        node = node.parent
    return depth


def expand_run(run_id: int) -> str:
    """Add what the triggered project's own `.baton.yml` sets off (`on: [upstream]`) as runs
    under ``run``; they start when it succeeds. Cycles and limits are refused before dispatch."""
    run = (
        Run.objects.select_related("chain__forge", "chain__repository", "repository__forge")
        .filter(pk=run_id)
        .first()
    )
    if run is None or run.children.exists() or run.status == Status.CANCELED:
        return "nothing to expand"
    client = forge_for(run.repository.forge)
    try:
        config = _downstream_config(client, run.repository, run.ref)
        if config is None or not any("upstream" in t.on for t in config.downstream):
            expansion.nothing_in(run.repository_id, run.ref)
            return "no upstream-triggered targets"
        params = read_params(run.repository.forge, run.repository.path, run.ref, config)
    except ConfigError as exc:
        Run.objects.filter(pk=run_id, error="").update(
            error=f"its {settings.BATON_CONFIG_PATH} is invalid, so nothing further runs: {exc}"
        )
        return "invalid downstream config"
    except ForgeError as exc:
        if not exc.permanent:
            raise
        return f"could not read the downstream config: {exc.message}"
    chain = run.chain
    change = Change(
        forge=run.repository.forge.slug,
        project=run.repository.path,
        project_url=run.repository.web_url,
        number=chain.change_number,
        url=chain.change_url,
        source_branch=run.ref,
        target_branch=chain.target_branch,
        head_sha="",
        upstream_ref=f"refs/heads/{run.ref}",
        title=chain.title,
        author=chain.author,
    )
    context = Context(
        branch=run.ref,
        target_branch=chain.target_branch,
        source="upstream",
        title=chain.title,
        author=chain.author,
    )
    extra = {"UPSTREAM_PIPELINE_ID": run.remote_id} if run.remote_id else {}
    the_plan = plan(change, config, context=context, params=params, upstream_extra=extra)
    people = principals(
        chain.forge,
        chain.runs_for or chain.author,
        chain.actor,
        UserPrincipal(chain.runs_for_user) if chain.runs_for_user_id else None,
    )
    targets = keep_targets(
        [
            permitted(people, *target)
            for target in resolve_targets(run.repository.forge, run.repository, the_plan.runs)
        ]
    )
    path = lineage(run)
    room = settings.BATON_MAX_RUNS - chain.runs.count()
    held = quarantine.reasons(repository.pk for _, repository, _ in targets)
    children: list[Run] = []
    for planned, repository, error in targets:
        error = error or _refusal(run, planned, repository, path, room - len(children))
        children.append(new_run(chain, planned, repository, error, held=held, parent=run))
    try:
        with transaction.atomic():
            # The parent's row first, as every writer of runs does before the chain's: its new
            # children check their key against it at commit, and a pipeline event holding it
            # while waiting for the chain would otherwise deadlock with us.
            list(Run.objects.select_for_update(of=("self",)).filter(pk=run.pk).values_list("pk"))
            if run.children.exists():
                return "expanded already"
            Run.objects.bulk_create(children)
            audit.record(
                "chain.expand",
                actor="baton",
                surface="system",
                run=run,
                target=run.repository.path,
                detail={"runs": len(children)},
            )
            request_mirror(chain.pk)
            transaction.on_commit(lambda: release(chain.pk))
    except IntegrityError:
        return "expanded already"
    return f"{len(children)} runs under run {run.pk}"


def _refusal(
    run: Run,
    planned: PlannedRun,
    repository: Repository,
    path: list[tuple[int, str, str]],
    room: int,
) -> str:
    if room <= 0:
        return f"refused: the chain already has {settings.BATON_MAX_RUNS} runs"
    if run.depth + 1 > settings.BATON_MAX_DEPTH:
        return f"refused: chains nest at most {settings.BATON_MAX_DEPTH} levels deep"
    if planned.is_child and _child_depth(run) >= 2:
        return "refused: child pipelines (project: self) nest at most 2 levels"
    if planned.is_child:
        return ""  # a pipeline of the run's own project, bounded by the child limit above
    loop = cycle_path(path, repository.forge_id, repository.forge.slug, repository.path)
    return f"refused: this would trigger a cycle {loop}" if loop else ""
