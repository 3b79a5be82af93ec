"""From an upstream change and its `.baton.yml` to the plan: which runs, where, with what, in
which order, and which targets the rules leave out and why.

Pure: no database, no network. The engine reads what the plan needs (the file, params files,
changed files) and turns the plan into Chain and Run rows; `/baton plan` and the dashboard show
the same plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from chains import deadline
from chains.conditions import ConditionError, Context, branch_matches
from chains.config import BatonConfig, NotifyEntry, Target, Variable
from chains.globs import PatternError
from chains.paths import PathError, check_ref
from chains.retrying import NO_RETRY, RetryPolicy

EXPANSION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Change:
    """The upstream change as Baton sees it, in neutral words."""

    forge: str  # forge slug or kind
    project: str  # acme/app
    project_url: str
    number: int | None  # MR iid / PR number
    url: str
    source_branch: str
    target_branch: str
    head_sha: str
    upstream_ref: str  # refs/merge-requests/<iid>/head, refs/pull/<n>/head, refs/heads/<b>
    title: str = ""
    author: str = ""
    message: str = ""
    labels: tuple[str, ...] = ()
    # The ref a `project: self` target runs on unless it names one: the change's own ref where
    # the forge runs pipelines of a change (GitLab merge request pipelines); "" = source_branch.
    child_ref: str = ""


@dataclass(frozen=True)
class PlannedRun:
    key: str
    label: str
    forge: str | None  # None: the upstream's forge; else a forge slug or kind named in the file
    project: str  # full path; for a child pipeline, the upstream project
    is_child: bool
    ref: str | None  # None: the target's default branch
    workflow: str | None
    strategy: str
    interruptible: bool
    variables: dict[str, str] = field(default_factory=dict)
    masked_variables: dict[str, str] = field(default_factory=dict)
    skip: str | None = None
    soft_fail: bool = False
    depends_on: tuple[str, ...] = ()
    allow_dependency_failure: bool = False
    cancel: str = "propagate"
    mode: str = "new"
    wait_timeout: int = 0
    deploy: str | None = None
    retry: RetryPolicy = NO_RETRY
    error: str = ""  # the run cannot be planned (e.g. its params_file is missing)


@dataclass(frozen=True)
class Plan:
    runs: tuple[PlannedRun, ...]
    excluded: tuple[tuple[str, str], ...] = ()  # (key, why the rules leave it out)
    notify: tuple[NotifyEntry, ...] = ()  # the `notify:` list (notify/ sends the messages)

    def only(self, keys: frozenset[str]) -> Plan:
        """Just the named targets; dependencies on the others are dropped."""
        kept = tuple(
            _replace(run, depends_on=tuple(k for k in run.depends_on if k in keys))
            for run in self.runs
            if run.key in keys
        )
        left_out = tuple((run.key, "not named") for run in self.runs if run.key not in keys)
        return Plan(runs=kept, excluded=self.excluded + left_out, notify=self.notify)


def upstream_variables(change: Change, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The UPSTREAM_* variables of ARCHITECTURE.md (BATON_* ids are added when a run is sent)."""
    values = {
        "UPSTREAM_REF": change.upstream_ref,
        "UPSTREAM_PROJECT": change.project,
        "UPSTREAM_PROJECT_URL": change.project_url,
        "UPSTREAM_SHA": change.head_sha,
        "UPSTREAM_BRANCH": change.source_branch,
        "UPSTREAM_TARGET_BRANCH": change.target_branch,
        "UPSTREAM_MR_IID": str(change.number) if change.number is not None else "",
        "UPSTREAM_MR_URL": change.url,
        **(extra or {}),
    }
    return {k: v for k, v in values.items() if v}


def expand(text: str, values: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` from ``values``; unknown names are left as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return EXPANSION.sub(replace, text)


def change_context(change: Change, source: str = "merge_request") -> Context:
    return Context(
        branch=change.source_branch,
        target_branch=change.target_branch,
        source=source,
        message=change.message or change.title,
        title=change.title,
        author=change.author,
        labels=change.labels,
    )


def plan(
    change: Change,
    config: BatonConfig,
    *,
    context: Context | None = None,
    params: Mapping[str, Mapping[str, str] | None] | None = None,
    upstream_extra: Mapping[str, str] | None = None,
) -> Plan:
    """``params``: the parsed `params_file`s by path (None: the file does not exist)."""
    context = context or change_context(change)
    upstream = upstream_variables(change, upstream_extra)
    plain_globals = {v.name: v.value for v in config.variables if not v.masked}
    context = Context(**{**context.__dict__, "variables": {**plain_globals, **upstream}})
    runs: list[PlannedRun] = []
    excluded: list[tuple[str, str]] = []
    for target in config.downstream:
        deadline.check()
        why_not = _excluded(target, context)
        if why_not:
            excluded.append((target.key, why_not))
            continue
        runs.append(_plan_target(change, config.variables, target, upstream, params or {}))
    kept = {run.key for run in runs}
    # A dependency the rules left out is no dependency.
    runs = [_replace(run, depends_on=tuple(k for k in run.depends_on if k in kept)) for run in runs]
    return Plan(runs=tuple(runs), excluded=tuple(excluded), notify=config.notify)


def _replace(run: PlannedRun, **changes: object) -> PlannedRun:
    return PlannedRun(**{**run.__dict__, **changes})  # type: ignore[arg-type]


def _excluded(target: Target, context: Context) -> str:
    if context.source not in target.on:
        return f"runs on {', '.join(target.on)}, not on {context.source}"
    branch = context.target_branch if context.source == "merge_request" else context.branch
    try:
        if not branch_matches(target.branches, branch):
            return f"branch {branch!r} does not match {' '.join(target.branches)!r}"
    except PatternError as exc:
        return f"branches: {exc}"
    if target.condition is not None:
        try:
            if not target.condition.evaluate(context):
                return f"if: {target.condition.text} is false"
        except ConditionError as exc:
            return f"if: {exc}"
    return ""


def _plan_target(
    change: Change,
    global_vars: tuple[Variable, ...],
    target: Target,
    upstream: dict[str, str],
    params: Mapping[str, Mapping[str, str] | None],
) -> PlannedRun:
    # Precedence, lowest first: global variables (as `inherit` allows; those of the admin rule
    # that set the target win over the file's), the params_file, the
    # target's own variables, then what Baton passes from upstream (UPSTREAM_*), which always
    # wins - as GitLab lets upstream-passed variables win.
    inherit = target.inherit_variables
    merged: dict[str, Variable] = {
        v.name: v
        for v in (*global_vars, *target.rule_variables)
        if inherit is True or (not isinstance(inherit, bool) and v.name in inherit)
    }
    error = ""
    if target.params_file:
        values = params.get(target.params_file)
        if values is None:
            error = f"params_file {target.params_file} not found at {change.head_sha[:12]}"
        else:
            merged.update({k: Variable(k, v) for k, v in values.items()})
    merged.update({v.name: v for v in target.variables})
    plain_context = {**{n: v.value for n, v in merged.items() if not v.masked}, **upstream}
    variables: dict[str, str] = {}
    masked: dict[str, str] = {}
    for name, var in merged.items():
        if name in upstream:
            continue
        value = expand(var.value, plain_context)
        (masked if var.masked else variables)[name] = value
    variables.update(upstream)

    forge_name, _, path = target.project.rpartition(":")
    is_child = target.project == "self"
    ref = expand(target.ref, plain_context) if target.ref else None
    if is_child and ref is None:  # a merge request's pipeline ref, its branch, or the tag pushed
        ref = (
            change.child_ref
            or change.source_branch
            or change.upstream_ref.removeprefix("refs/tags/")
        )
    if ref is not None and not error:
        try:
            check_ref(ref)
        except PathError as exc:  # a $VARIABLE expanded to something that is not a ref
            error = f"ref {ref[:80]!r} (after expanding variables): {exc}"
    return PlannedRun(
        key=target.key,
        label=target.label or target.key,
        forge=forge_name or None,
        project=change.project if is_child else path,
        is_child=is_child,
        ref=ref,
        workflow=target.workflow,
        strategy=target.strategy,
        interruptible=target.interruptible,
        variables=variables,
        masked_variables=masked,
        skip=target.skip,
        soft_fail=target.soft_fail,
        depends_on=target.depends_on,
        allow_dependency_failure=target.allow_dependency_failure,
        cancel=target.cancel,
        mode=target.mode,
        wait_timeout=target.wait_timeout,
        deploy=target.deploy,
        retry=target.retry,
        error=error,
    )
