"""What Baton writes says what happened: a soft-failed run is "soft-failed" (not a plain
success) in its commit status and the summary; nested runs with the same key get their own
status contexts; a re-run mode that found an all-green pipeline says it reused it and
triggered nothing new, and no re-run lists its variables as delivered."""

from __future__ import annotations

from typing import Any

from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import Engine


def _run(chain: Chain, key: str) -> Run:
    return chain.runs.select_related("repository").get(key=key)


def _last_status(engine: Engine, context: str) -> dict[str, Any]:
    return [s for s in engine.fake.statuses if s["context"] == context][-1]


def _summary(engine: Engine) -> str:
    return engine.fake.bodies[-1]


def test_a_soft_failed_run_says_soft_failed_upstream_not_success(engine: Engine) -> None:
    engine.config(
        "downstream:\n  - {key: lint, project: acme/api, soft_fail: true}\n"
        "  - {key: docs, project: acme/docs}\n"
    )
    chain = engine.open_change()
    engine.pipeline(_run(chain, "lint"), Status.FAILED)
    engine.pipeline(_run(chain, "docs"), Status.SUCCESS)
    lint = _last_status(engine, "baton/lint")
    assert lint["status"] == Status.SUCCESS  # it never fails the chain
    assert lint["description"] == "acme/api: soft-failed (allowed to fail)"
    docs = _last_status(engine, "baton/docs")
    assert docs["description"] == "acme/docs: success"
    whole = _last_status(engine, "baton")
    assert whole["status"] == Status.SUCCESS
    assert whole["description"] == "2/2 finished, 1 soft-failed"
    body = _summary(engine)
    assert "✅ success (1 soft-failed)" in body
    assert "| ⚠️ soft-failed (allowed to fail) |" in body
    assert "| ✅ success |" in body  # docs, which did pass


def test_nested_runs_with_the_same_key_get_their_own_status_contexts(engine: Engine) -> None:
    engine.config(
        "downstream:\n  - {key: api, project: acme/api}\n  - {key: web, project: acme/web}\n"
    )
    nested = "downstream:\n  - {key: docs, project: acme/docs, on: [upstream]}\n"
    engine.config(nested, project="acme/api", ref="main")
    engine.config(nested, project="acme/web", ref="main")
    chain = engine.open_change()
    engine.pipeline(_run(chain, "api"), Status.SUCCESS)
    engine.pipeline(_run(chain, "web"), Status.SUCCESS)
    docs = list(chain.runs.filter(key="docs").select_related("parent").order_by("pk"))
    assert [d.parent.key for d in docs if d.parent] == ["api", "web"]
    engine.pipeline(docs[0], Status.FAILED)
    engine.pipeline(docs[1], Status.SUCCESS)
    last = dict(engine.fake.contexts())
    assert last["baton/api/docs"] == "failed"
    assert last["baton/web/docs"] == "success"  # not overwritten by its namesake
    assert "baton/docs" not in last
    assert last["baton"] == "failed"


def test_rerun_last_successful_of_an_all_green_pipeline_says_it_reused_it(
    engine: Engine,
) -> None:
    green = engine.fake.add_pipeline("acme/api", "main", status=Status.SUCCESS)
    engine.config("downstream:\n  - {key: api, project: acme/api, mode: rerun-last-successful}\n")
    chain = engine.open_change()
    api = _run(chain, "api")
    assert (api.status, api.remote_id) == (Status.SUCCESS, green.id)
    assert api.error == (
        f"reused pipeline #{green.id}: it had passed already and the forge had no failed or "
        "canceled job to run again, so nothing new was triggered (mode rerun-last-successful)"
    )
    assert engine.fake.created() == []  # nothing new on the forge
    assert "UPSTREAM_REF" in api.variables  # what the plan meant to send …
    assert {"UPSTREAM_REF", "UPSTREAM_PROJECT", "UPSTREAM_SHA"} <= set(api.undelivered)
    assert set(api.undelivered) == set(api.variables)  # … and that none of it was delivered
    assert _last_status(engine, "baton/api")["description"].startswith(
        f"reused pipeline #{green.id}"
    )
    body = _summary(engine)
    assert "reused pipeline" in body and "so nothing new was triggered" in body
    assert "variables not sent: a re-run keeps the pipeline's own" in body
    assert "no such input" not in body


def test_rerun_latest_of_a_failed_pipeline_runs_it_again_without_sending_variables(
    engine: Engine,
) -> None:
    failed = engine.fake.add_pipeline("acme/api", "main", status=Status.FAILED)
    engine.config("downstream:\n  - {key: api, project: acme/api, mode: rerun-latest}\n")
    chain = engine.open_change()
    api = _run(chain, "api")
    assert (api.status, api.remote_id, api.error) == (Status.PENDING, failed.id, "")
    assert set(api.undelivered) == set(api.variables) and "UPSTREAM_PROJECT" in api.undelivered
    assert engine.fake.created() == []
    assert "variables not sent: a re-run keeps the pipeline's own" in _summary(engine)
