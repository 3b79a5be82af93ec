"""From an upstream change and its `.baton.yml` to the plan: which runs, where, with what.

Pure: no database, no network. The engine turns a plan into Chain and Run rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chains.config import BatonConfig, Target, Variable

EXPANSION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Change:
    """The upstream change as Baton sees it, in neutral words."""

    forge: str  # forge slug
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


@dataclass(frozen=True)
class Plan:
    runs: tuple[PlannedRun, ...]


def upstream_variables(change: Change) -> dict[str, str]:
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
    }
    return {k: v for k, v in values.items() if v}


def expand(text: str, values: dict[str, str]) -> str:
    """`$VAR` and `${VAR}` from ``values``; unknown names are left as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return EXPANSION.sub(replace, text)


def plan(change: Change, config: BatonConfig) -> Plan:
    upstream = upstream_variables(change)
    return Plan(
        runs=tuple(_plan_target(change, config.variables, t, upstream) for t in config.downstream)
    )


def _plan_target(
    change: Change, global_vars: tuple[Variable, ...], target: Target, upstream: dict[str, str]
) -> PlannedRun:
    # Precedence, lowest first: global variables, the target's own, then what Baton passes from
    # upstream (UPSTREAM_*), which always wins - as GitLab lets upstream-passed variables win.
    merged: dict[str, Variable] = {v.name: v for v in global_vars}
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
    if is_child and ref is None:
        ref = change.source_branch
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
    )
