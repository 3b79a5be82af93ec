"""Release managers' pages. Thin: parse, ask ``queries``, shape with ``presenters``, render.

Each page is one template with ``{% partialdef %}`` blocks; an htmx request (a poll, a filter
change, an action) gets only the live part."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from bots import services
from bots.engine.planning import dry_run
from bots.forges.base import ForgeError
from bots.permissions import may
from chains import deadline, eta
from chains.models import Chain, Run
from chains.policy import user_may
from chains.redaction import scrub
from dashboard import actions, live, overview, presenters, queries, repository_views
from dashboard.access import (
    actor,
    decide,
    may_view,
    notice,
    refusal,
    scope,
    viewer_required,
    visible_ids,
)
from dashboard.filters import ChainFilterSet
from dashboard.forms import ReleaseForm
from dashboard.live import current_version, polled

LIST = "dashboard/chain_list.html"
DETAIL = "dashboard/chain_detail.html"

log = logging.getLogger(__name__)


def _list_chains(request: HttpRequest) -> QuerySet[Chain]:
    """What the reader asked for, among the chains they may view only: the list, its cursor and
    its ETag are all computed over the same visible chains (never over hidden ones). The list
    shows the latest chain of each change; earlier ones fold under it."""
    return queries.latest_chains(queries.listed_chains(request.GET, scope(request)))


def _list_version(request: HttpRequest) -> str:
    return queries.chains_version(_list_chains(request), request.GET.get("page"))


@require_GET
@polled(_list_version)
@viewer_required
def chain_list(request: HttpRequest) -> HttpResponse:
    version = current_version(request, _list_version)
    filters = ChainFilterSet(request.GET)
    visible = scope(request)
    show_earlier = request.GET.get("superseded") == "show"
    chains = queries.listed_chains(request.GET, visible)
    grouped = queries.grouped_page(chains, request.GET.get("page"), show_earlier=show_earlier)
    context = {
        "filters": filters,
        "page": grouped.page,
        "rows": overview.change_rows(grouped, visible),
        "grouped": True,
        "show_earlier": show_earlier,
        "poll_url": live.poll_url(request.path, request.GET, version),
    }
    if live.partial(request):
        return live.finish(render(request, f"{LIST}#chain-table", context), version)
    filters.with_choices(*queries.filter_choices(request.user))
    return render(request, LIST, context)


def _chain_version(request: HttpRequest, pk: int) -> str:
    return queries.chain_version(pk, scope(request))


def _chain(request: HttpRequest, pk: int, version: str, **extra: Any) -> HttpResponse:
    detail = queries.chain_detail(pk)
    if detail is None or not may_view(request.user, detail.chain.repository):
        raise Http404("No chain with this number: it may have been deleted.")
    runs = _private_runs_hidden(request, detail.runs, detail.chain)
    acts = any(not refusal(request.user, a, detail.chain.repository) for a in ("retry", "cancel"))
    page = presenters.chain_page(detail.chain, runs, can_act=acts)
    path = reverse("chain-detail", args=[pk])
    context = {"page": page, "chain": page.chain, "poll_url": live.poll_url(path, {}, version)}
    context["eta"] = estimate = eta.for_chain(detail.chain, detail.runs)
    context["eta_text"] = eta.describe(estimate)
    if live.partial(request):
        name = "action-result" if "message" in extra else "chain-live"
        response = render(request, f"{DETAIL}#{name}", context | extra)
        return live.finish(response, version, stop=page.settled and not extra)
    return render(request, DETAIL, context)


def _private_runs_hidden(request: HttpRequest, runs: list[Run], chain: Chain) -> list[Run]:
    """Runs in projects the reader may not view show as "a private project" (and the chain's
    error does not name them)."""
    seen = visible_ids(request.user, [run.repository for run in runs])
    names = private_names_for(seen, runs)
    chain.error = scrub(chain.error, names)
    return [
        presenters.scrubbed(run, names) if run.repository_id in seen else presenters.redacted(run)
        for run in runs
    ]


def private_names_for(seen: set[int], runs: list[Run]) -> set[str]:
    """Paths, keys and labels of the runs whose project the reader may not view."""
    hidden = [run for run in runs if run.repository_id not in seen]
    return {name for run in hidden for name in (run.repository.path, run.key, run.label) if name}


@require_GET
@polled(_chain_version)
@viewer_required
def chain_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _chain(request, pk, current_version(request, _chain_version, pk))


def _act(request: HttpRequest, chain_pk: int, do: Callable[[], str], **extra: Any) -> HttpResponse:
    try:
        message = do()
    except services.ActionRefused as refused:
        if not live.partial(request):
            messages.error(request, str(refused))
            return redirect("chain-detail", chain_pk)
        return notice(request, str(refused), status=409)
    if not live.partial(request):
        messages.success(request, message)
        return redirect("chain-detail", chain_pk)
    return _chain(request, chain_pk, queries.chain_version(chain_pk), message=message, **extra)


@require_POST
@viewer_required
def run_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    action, run = actions.RUN_ACTIONS.get(verb), queries.run_for_action(pk, request.user)
    if action is None or run is None:
        raise Http404("No such run or action.")
    if refused := decide(request, actions.RUN_VERBS[verb], run):
        return refused
    return _act(request, run.chain_id, lambda: action(run, actor(request)))


@require_POST
@viewer_required
def chain_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    action, chain = actions.CHAIN_ACTIONS.get(verb), queries.chain_for_action(pk, request.user)
    if action is None or chain is None:
        raise Http404("No such chain or action.")
    if refused := decide(request, actions.CHAIN_VERBS[verb], chain):
        return refused
    # After a re-run the page keeps polling until the new chain takes over.
    keep = {"keep_polling": verb == "rerun"}
    return _act(request, chain.pk, lambda: action(chain, actor(request)), **keep)


def _release_version(request: HttpRequest) -> str:
    ref = request.GET.get("ref", "").strip()
    shown = queries.shown_ids(request.GET.get("shown", ""))
    visible = scope(request)
    return queries.release_version(ref, shown, visible) if ref else "none"


@require_GET
@polled(_release_version)
@viewer_required
def release(request: HttpRequest) -> HttpResponse:
    form = ReleaseForm(request.GET if "ref" in request.GET else None)
    ref = form.ref_value() if form.is_bound else ""
    # Only chains the reader may view, and in them only runs in projects they may view.
    data = queries.release(ref, scope(request)) if ref else None
    version = data.version if data else _release_version(request)  # of what is shown
    matrix = presenters.release_matrix(ref, data.chains, data.runs) if data else None
    context = {"form": form, "ref": ref, "matrix": matrix}
    shown = {"ref": ref, "shown": ",".join(str(c.pk) for c in data.chains) if data else ""}
    context["poll_url"] = live.poll_url(request.path, shown, version)
    if live.partial(request):
        return live.finish(render(request, "dashboard/release.html#matrix", context), version)
    refs = queries.recent_refs(request.user)
    return render(request, "dashboard/release.html", context | {"refs": refs})


def _repository_version(request: HttpRequest, pk: int) -> str:
    # Over the visible chains only: a hidden repository's cursor is an empty one's.
    chains = queries.listed_chains({}, scope(request)).filter(repository_id=pk)
    return queries.chains_version(chains, request.GET.get("page"))


@require_GET
@polled(_repository_version)
@viewer_required
def repository_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = current_version(request, _repository_version, pk)
    repository = queries.repository(pk)
    if repository is None or not may_view(request.user, repository):
        raise Http404("No such repository.")
    page, progress = queries.chain_page(queries.repository_chains(pk), request.GET.get("page"))
    context = {
        "repository": repository,
        "page": page,
        "rows": presenters.chain_rows(page.object_list, progress),
        "poll_url": live.poll_url(request.path, request.GET, version),
        "in_repository": True,
    }
    if live.partial(request):
        return live.finish(render(request, f"{LIST}#chain-table", context), version)
    runs = queries.runs_in_repository(repository)
    seen = visible_ids(request.user, [run.chain.repository for run in runs])
    context["runs"] = [presenters.with_upstream(r, r.chain.repository_id in seen) for r in runs]
    context["health"] = repository_views.health_for(request, upstream=pk)
    context["standing"] = presenters.health(repository, request.user)
    return render(request, "dashboard/repository.html", context)


@require_POST
@viewer_required
def repository_quarantine(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    """Quarantine the project (reason, days) or lift its quarantine: `quarantine` grant holders."""
    repository = queries.repository(pk)
    if repository is None or not may_view(request.user, repository) or verb not in QUARANTINE:
        raise Http404("No such repository or action.")
    verdict = user_may(request.user, "quarantine", repository)
    if not verdict:
        messages.error(request, f"Not done: {verdict.reason}.")
        return redirect("repository-detail", pk)
    who = actor(request)
    try:
        if verb == "lift":
            services.lift_quarantine(repository, actor=who)
            messages.success(request, f"{repository.path} is no longer quarantined.")
        else:
            days = request.POST.get("days", "")
            found = services.quarantine_project(
                repository,
                reason=request.POST.get("reason", "")[:1000],
                days=int(days) if days.isdigit() and len(days) < 4 else 0,
                actor=who,
            )
            messages.success(request, f"{repository.path} is quarantined: {found.reason}.")
    except services.ActionRefused as refused:
        messages.error(request, f"Not done: {refused}")
    return redirect("repository-detail", pk)


QUARANTINE = ("add", "lift")


MAX_CHANGE_NUMBER = 2**31 - 1  # GitLab's iids and GitHub's numbers are 32-bit integers


@require_GET
@viewer_required
def change_plan(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """What this change would trigger now, for its author: the plan `/baton plan` shows."""
    repository = queries.repository(pk)
    if repository is None or not may_view(request.user, repository):
        raise Http404("No such repository.")
    context: dict[str, Any] = {
        "repository": repository,
        "number": number,
        "change": presenters.change_mark(repository.forge.kind, number),
        "change_noun": presenters.change_noun(repository.forge.kind),
    }
    if not 0 < number <= MAX_CHANGE_NUMBER:  # no forge numbers a change so: no need to ask
        context["error"] = f"The forge has no change {number} in {repository.path}."
        return render(request, "dashboard/plan.html", context, status=404)
    limit = settings.BATON_PLAN_TIME_LIMIT
    try:
        forge = repository.forge
        with deadline.within(limit):
            result = dry_run(
                forge,
                repository.path,
                number,
                None,
                lambda who, action, to: may(forge, who, action, to),
            )
    except ForgeError as exc:
        if exc.status_code in (404, 410):  # no such change: the address is wrong, not the forge
            context["error"] = f"The forge has no change {number} in {repository.path}."
            return render(request, "dashboard/plan.html", context, status=404)
        # The failure may be about a target the reader may not view: its words stay in the log.
        log.warning("plan of %s!%s: the forge could not say: %s", repository.path, number, exc)
        context["error"] = (
            "The forge did not answer as expected while Baton worked out this plan; "
            "try again in a moment (the details are in Baton's log)."
        )
        return render(request, "dashboard/plan.html", context, status=502)
    except deadline.TimeUp:
        context["error"] = (
            f"Baton gave up working out this plan after {limit:g} seconds "
            "(BATON_PLAN_TIME_LIMIT). The forge may be slow, or the change's .baton.yml names "
            "very many targets; try again in a moment, or ask with /baton plan on the change."
        )
        return render(request, "dashboard/plan.html", context, status=503)
    context |= {
        "result": result,
        "rows": presenters.plan_rows(result, lambda to: may_view(request.user, to)),
    }
    return render(request, "dashboard/plan.html", context)
