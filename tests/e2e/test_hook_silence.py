"""Webhooks that go quiet mid-chain (issue 14): the sandbox stops delivering (a drop fault on
every delivery, as when GitLab disables a failing hook) while the chain's pipelines run. Baton
notices the forge's silence and polls all its open runs — one list call per repository — so
every run reaches the forge's final state within a minute, not after BATON_POLL_AFTER_HOOKED
(900 s), and the admin console says "no webhooks from <forge> for …".

The worker runs with BATON_POLL_AFTER=3 (tests/e2e/conftest.py), the fast clocks of every e2e
test, and for this test BATON_HOOK_SILENCE=6 (so that the pipelines need run only seconds past
it); BATON_POLL_AFTER_HOOKED keeps its 900 s default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from chains.models import Chain
from tests.e2e.conftest import Forges, Worker, eventually
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]

QUICK = [f"q{i:02d}" for i in range(12)]
SLOW = "slow"  # still running at the forge while the console is looked at
FINAL = {"success", "failed", "canceled", "skipped"}
MESSAGE = "no webhooks from Sandbox GitLab for"
SILENCE = 6  # seconds: BATON_HOOK_SILENCE, the worker's and the console's


@pytest.fixture
def quick_silence(worker: Worker) -> Iterator[None]:
    """The suite's worker with BATON_HOOK_SILENCE=SILENCE for this test, and its own clocks
    again after it (requested before ``forges``, so set up before and torn down after it)."""
    worker.restart(BATON_HOOK_SILENCE=str(SILENCE))
    yield
    worker.restart()


def test_runs_finish_and_the_console_says_so_when_the_hooks_go_quiet(
    quick_silence: None, forges: Forges, settings: Any
) -> None:
    settings.BATON_HOOK_SILENCE = float(SILENCE)  # the console runs in this process
    for i, key in enumerate(QUICK):
        # Long enough for the hooks to stop while they run; some fail.
        outcome = "failed" if i % 4 == 3 else "success"
        forges.project(f"acme/{key}", pending=0.3, running=12.0, outcome=outcome)
    # Still running when the console is looked at, after the quick runs have been polled.
    forges.project(f"acme/{SLOW}", pending=0.3, running=40.0)
    keys = [*QUICK, SLOW]
    open_mr(forges, "downstream:\n" + "".join(f"  - {{project: acme/{k}}}\n" for k in keys))

    def runs() -> dict[str, Any]:
        chain = Chain.objects.filter(change_number=1).first()
        found = chain.runs.select_related("repository") if chain else []
        return {r.repository.path.split("/")[1]: r for r in found}

    def all_running() -> bool:
        now = runs()
        return len(now) == len(keys) and all(
            r.status == "running" and r.hooked for r in now.values()
        )

    eventually(all_running, 40, "every run to be running, told by webhooks")
    dropped = forges.sandbox.add_fault(mode="drop_webhooks")  # the hook goes quiet

    def forge_done() -> dict[str, str] | None:
        ends = {k: forges.sandbox.pipelines(f"acme/{k}")[0]["status"] for k in QUICK}
        return ends if set(ends.values()) <= FINAL else None

    ends = eventually(forge_done, 40, "the forge to finish the quick pipelines")

    def baton_caught_up() -> bool:
        now = runs()
        return all(now[k].status == ends[k] for k in QUICK)

    eventually(baton_caught_up, 60, "every quick run to reach the forge's final state")
    assert runs()[SLOW].status == "running"
    faults = {f["id"]: f for f in forges.sandbox.faults()}
    assert faults[dropped["id"]]["injected"] >= len(QUICK), "the end events were dropped"

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = reverse("admin:chains_forge_change", args=[forges.forge.pk])
    assert MESSAGE in client.get(page).content.decode()
    listing = client.get(reverse("admin:chains_forge_changelist")).content.decode()
    assert MESSAGE in listing

    chain = eventually(chain_done, 90, "the slow run to reach its end too")
    assert {r.key: r.status for r in chain.runs.all()}["slow"] == "success"
