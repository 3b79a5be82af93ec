"""What a finished run releases: dependants start when what they wait for passed, are skipped
(in a cascade) when it did not, unless they allow dependency failure; a soft failure passes."""

from __future__ import annotations

from chains.models import Chain, Run
from chains.status import Status
from tests.engine.conftest import Engine

CHAIN = """\
downstream:
  - {key: build, project: acme/api}
  - {key: deploy, project: acme/web, depends_on: [build]}
  - {key: notify, project: acme/docs, depends_on: [deploy]}
"""


def _run(chain: Chain, key: str) -> Run:
    return chain.runs.select_related("repository").get(key=key)


def test_a_dependant_waits_and_starts_when_its_dependency_passes(engine: Engine) -> None:
    engine.config(CHAIN)
    chain = engine.open_change()
    assert _run(chain, "deploy").status == Status.WAITING
    assert [p.project for p in engine.fake.created()] == ["acme/api"]
    engine.pipeline(_run(chain, "build"), Status.SUCCESS)
    deploy = _run(chain, "deploy")
    assert (deploy.status, deploy.dispatch) == (Status.PENDING, Run.Dispatch.SENT)
    assert _run(chain, "notify").status == Status.WAITING
    assert [p.project for p in engine.fake.created()] == ["acme/api", "acme/web"]


def test_a_failed_dependency_skips_its_dependants_in_a_cascade(engine: Engine) -> None:
    engine.config(CHAIN)
    chain = engine.open_change()
    engine.pipeline(_run(chain, "build"), Status.FAILED)
    deploy, notify = _run(chain, "deploy"), _run(chain, "notify")
    assert deploy.status == Status.SKIPPED and deploy.error == "not run: build did not succeed"
    assert notify.status == Status.SKIPPED and notify.error == "not run: deploy did not succeed"
    assert len(engine.fake.created()) == 1
    chain.refresh_from_db()
    assert chain.status == Status.FAILED


def test_allow_dependency_failure_runs_anyway(engine: Engine) -> None:
    engine.config(
        """\
downstream:
  - {key: build, project: acme/api}
  - {key: report, project: acme/docs, depends_on: [build], allow_dependency_failure: true}
"""
    )
    chain = engine.open_change()
    engine.pipeline(_run(chain, "build"), Status.FAILED)
    report = _run(chain, "report")
    assert report.status == Status.PENDING and report.dispatch == Run.Dispatch.SENT


def test_a_soft_failure_lets_dependants_go_and_the_chain_pass(engine: Engine) -> None:
    engine.config(
        """\
downstream:
  - {key: lint, project: acme/api, soft_fail: true}
  - {key: deploy, project: acme/web, depends_on: [lint]}
"""
    )
    chain = engine.open_change()
    engine.pipeline(_run(chain, "lint"), Status.FAILED)
    deploy = _run(chain, "deploy")
    assert deploy.status == Status.PENDING
    engine.pipeline(deploy, Status.SUCCESS)
    chain.refresh_from_db()
    assert chain.status == Status.SUCCESS and chain.finished_at is not None


def test_a_canceled_dependency_skips_its_dependants(engine: Engine) -> None:
    engine.config(CHAIN)
    chain = engine.open_change()
    engine.pipeline(_run(chain, "build"), Status.CANCELED)
    assert _run(chain, "deploy").status == Status.SKIPPED
    assert _run(chain, "notify").status == Status.SKIPPED
    assert len(engine.fake.created()) == 1


def test_a_late_event_never_moves_a_finished_run_backwards(engine: Engine) -> None:
    engine.config(CHAIN)
    chain = engine.open_change()
    build = _run(chain, "build")
    engine.pipeline(build, Status.SUCCESS)
    engine.pipeline(build, Status.RUNNING)
    assert _run(chain, "build").status == Status.SUCCESS
