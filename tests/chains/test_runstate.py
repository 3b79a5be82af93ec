"""The run state machine (chains/runstate.py): one table of moves, the forge's news never moving a
run back, what ready/blocked/passed mean, the release of dependants, and that nothing else
assigns a run's status."""

from __future__ import annotations

import ast
from datetime import datetime
from pathlib import Path

import pytest

from chains import runstate
from chains.models import Run
from chains.runstate import TRANSITIONS, Node, allowed, blocked, passed, ready, releases, reported
from chains.status import FINISHED, Status

ROOT = Path(__file__).resolve().parents[2]
STATE_MODULE = ROOT / "chains" / "runstate.py"


def test_the_table_covers_every_status_and_never_leaves_an_end_for_a_running_state() -> None:
    assert set(TRANSITIONS) == set(Status)
    for end in FINISHED:
        # A finished run starts again only from the beginning (a retry), never mid-way.
        assert not TRANSITIONS[end] & {Status.RUNNING, Status.MANUAL}
    assert allowed(Status.RUNNING, Status.RUNNING)
    assert not allowed(Status.RUNNING, Status.QUEUED)


@pytest.mark.parametrize(
    ("current", "news", "moves"),
    [
        (Status.RUNNING, Status.PENDING, False),  # late news from earlier in the attempt
        (Status.PENDING, Status.RUNNING, True),
        (Status.SUCCESS, Status.RUNNING, False),  # a late event from before the end
        (Status.FAILED, Status.SUCCESS, True),  # the forge retried the pipeline
        (Status.QUEUED, Status.SUCCESS, True),
        (Status.MANUAL, Status.RUNNING, True),
    ],
)
def test_forge_news_never_moves_a_run_back(current: Status, news: Status, moves: bool) -> None:
    assert reported(current, news) is moves


def test_two_ends_out_of_order_settle_on_the_newer_one() -> None:
    first, second = datetime(2026, 1, 1, 12, 0, 0), datetime(2026, 1, 1, 12, 5, 0)
    # failed at 12:00, then the forge retried the pipeline and it succeeded at 12:05
    assert reported(Status.FAILED, Status.SUCCESS, ended_at=first, news_ended_at=second)
    assert not reported(Status.SUCCESS, Status.FAILED, ended_at=second, news_ended_at=first)
    assert not reported(Status.SUCCESS, Status.SUCCESS, ended_at=first, news_ended_at=second)
    run = Run(status=Status.PENDING)
    assert runstate.apply_report(run, Status.SUCCESS, finished_at=second) == (True, True)
    assert runstate.apply_report(run, Status.FAILED, finished_at=first) == (False, False)
    assert runstate.apply_report(run, Status.SUCCESS, finished_at=first) == (False, False)
    assert (run.status, run.finished_at) == (Status.SUCCESS, second)  # a repeat keeps the time


def test_a_re_run_pipelines_first_start_does_not_count_for_the_new_attempt() -> None:
    first_start = datetime(2026, 1, 1, 12, 0, 0)
    first_end, news = datetime(2026, 1, 1, 12, 3, 56), datetime(2026, 1, 1, 12, 4, 5)
    run = Run(status=Status.PENDING)
    runstate.apply_report(run, Status.RUNNING, started_at=first_start, earlier_end=first_end)
    runstate.apply_report(run, Status.SUCCESS, finished_at=news, earlier_end=first_end)
    assert (run.started_at, run.finished_at) == (first_end, news)  # 9 s, not 4 min 05 s


def test_apply_report_sets_the_times_and_says_when_it_newly_finished() -> None:
    run = Run(status=Status.PENDING, error="canceled too late")
    assert runstate.apply_report(run, Status.RUNNING) == (True, False)
    assert run.started_at is not None and run.finished_at is None
    assert runstate.apply_report(run, Status.SUCCESS) == (True, True)
    assert run.finished_at is not None and run.error == ""
    assert runstate.apply_report(run, Status.RUNNING) == (False, False)
    assert run.status == Status.SUCCESS


def test_a_move_the_table_refuses_changes_nothing() -> None:
    run = Run(status=Status.RUNNING)
    assert runstate.move(run, Status.WAITING, error="x") is False
    assert (run.status, run.error) == (Status.RUNNING, "")
    assert runstate.move(run, Status.CANCELED, error="stop") is True
    assert (run.status, run.error) == (Status.CANCELED, "stop")
    assert run.finished_at is not None


def test_restart_is_a_new_attempt_and_refuses_an_active_run() -> None:
    run = Run(status=Status.FAILED)
    assert runstate.restart(run, remote=True) == Status.PENDING
    assert run.finished_at is None
    with pytest.raises(runstate.IllegalMove):
        runstate.restart(Run(status=Status.RUNNING))


def test_passed_ready_and_blocked() -> None:
    build = Node(1, "build", Status.FAILED, soft_fail=True)
    lint = Node(2, "lint", Status.FAILED)
    deploy = Node(3, "deploy", Status.WAITING, depends_on=["build"])
    docs = Node(4, "docs", Status.WAITING, depends_on=["lint"])
    tolerant = Node(5, "report", Status.WAITING, depends_on=["lint"], allow_dependency_failure=True)
    family = [build, lint, deploy, docs, tolerant]
    assert passed(build) and not passed(lint)
    assert ready(deploy, family)  # a soft failure holds nothing up
    assert blocked(docs, family) and not ready(docs, family)
    assert ready(tolerant, family)


def test_a_failed_parent_blocks_even_a_tolerant_child() -> None:
    parent = Node(1, "api", Status.FAILED)
    child = Node(2, "e2e", Status.WAITING, parent_id=1, allow_dependency_failure=True)
    assert blocked(child, [parent, child])


def test_release_queues_what_may_go_and_skips_in_cascade() -> None:
    lint = Node(1, "lint", Status.FAILED)
    docs = Node(2, "docs", Status.WAITING, depends_on=["lint"])
    site = Node(3, "site", Status.WAITING, depends_on=["docs"])
    build = Node(4, "build", Status.SUCCESS)
    deploy = Node(5, "deploy", Status.WAITING, depends_on=["build"])
    later = Node(6, "later", Status.WAITING, depends_on=["build"])
    paced = Node(7, "paced", Status.WAITING, depends_on=["build"], not_before=datetime(2030, 1, 1))
    out = {r.run.key: r for r in releases([lint, docs, site, build, deploy, later, paced])}
    assert out["docs"].status == Status.SKIPPED and [f.key for f in out["docs"].failed] == ["lint"]
    assert out["site"].status == Status.SKIPPED  # skipped because docs was
    assert out["deploy"].status == out["later"].status == Status.QUEUED
    assert "paced" not in out  # waits for a time, not for other runs
    assert docs.status == Status.WAITING  # pure: nothing was changed


def _assigns_run_status(tree: ast.AST) -> list[int]:
    """Lines that assign a run's status: ``<x>.status = …`` (but a chain's), ``Run(status=…)``,
    and ``Run.objects….update(status=…)``."""
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(t, ast.Attribute) and t.attr == "status":
                    owner = ast.unparse(t.value)
                    if "chain" not in owner.lower():
                        lines.append(t.lineno)
        if isinstance(node, ast.Call) and any(k.arg == "status" for k in node.keywords):
            func = ast.unparse(node.func)
            if func == "Run" or (func.startswith("Run.objects") and func.endswith(".update")):
                lines.append(node.lineno)
    return lines


def test_run_status_is_assigned_only_in_the_state_module() -> None:
    offenders = []
    for app in ("bots", "chains", "dashboard", "console", "config"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if path == STATE_MODULE or "migrations" in path.parts:
                continue
            for line in _assigns_run_status(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == [], "Run.status assigned outside chains/runstate.py"
    assert _assigns_run_status(ast.parse(STATE_MODULE.read_text()))  # the check does see them


def test_the_check_catches_each_form() -> None:
    source = (
        "run.status = 'failed'\n"
        "node.status, x = 'queued', 1\n"
        "Run(status='queued')\n"
        "Run.objects.filter(pk=1).update(status='failed')\n"
        "chain.status = 'success'\n"
    )
    assert _assigns_run_status(ast.parse(source)) == [1, 2, 3, 4]
