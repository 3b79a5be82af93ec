"""`project: self` on a forge that runs pipelines of a change (GitLab merge request pipelines):
the run goes through create_change_pipeline on the change's ref, fork changes included, and is
followed, looked up and reported like any other run."""

from __future__ import annotations

from chains.models import Run
from chains.status import Status
from tests.engine.conftest import APP, Engine
from tests.fakes.forge import uncertain

MR_REF = "refs/merge-requests/7/head"

SELF = """\
variables:
  RELEASE_STREAM: stable
downstream:
  - {key: checks, project: self}
"""


def test_self_runs_the_changes_own_pipeline_on_its_ref(engine: Engine) -> None:
    engine.config(SELF, ref="main")  # a fork's change is planned from the target branch
    chain = engine.open_change(from_fork=True, child_ref=MR_REF)
    checks = engine.runs(chain)["checks"]
    assert engine.fake.called("create_pipeline") == []
    [call] = engine.fake.called("create_change_pipeline")
    project, number, variables = call.args
    assert (project, number) == (APP, 7)
    assert variables["BATON_RUN_ID"] == str(checks.pk)
    [pipeline] = engine.fake.created()
    assert pipeline.ref == MR_REF and pipeline.variables == {}
    assert (checks.ref, checks.remote_id, checks.dispatch) == (
        MR_REF,
        pipeline.id,
        Run.Dispatch.SENT,
    )
    # The endpoint takes no variables: the run says which it could not deliver.
    assert "RELEASE_STREAM" in checks.undelivered and "UPSTREAM_SHA" in checks.undelivered
    assert "BATON_RUN_NONCE" not in checks.undelivered  # the secret marker is never listed

    engine.pipeline(checks, Status.SUCCESS)
    checks.refresh_from_db()
    assert checks.status == Status.SUCCESS


def test_an_uncertain_change_pipeline_is_looked_up_on_the_ref_not_resent(engine: Engine) -> None:
    engine.config(SELF)
    engine.fake.fail("create_change_pipeline", uncertain(), after_effect=True)
    chain = engine.open_change(child_ref=MR_REF)
    checks = engine.runs(chain)["checks"]
    assert checks.dispatch == Run.Dispatch.SENDING
    [reached] = engine.fake.created()
    Run.objects.filter(pk=checks.pk).update(not_before=None, lease_until=None)
    engine.deliver("trigger_run", checks.pk)
    engine.drain()
    checks.refresh_from_db()
    assert len(engine.fake.called("create_change_pipeline")) == 1  # looked up, not resent
    [look_up] = engine.fake.called("find_pipeline")
    assert look_up.args[:2] == (APP, MR_REF)
    assert (checks.remote_id, checks.dispatch) == (reached.id, Run.Dispatch.SENT)


def test_self_without_a_change_ref_runs_on_the_source_branch(engine: Engine) -> None:
    # A forge without pipelines of a change (GitHub) leaves child_ref empty: as before.
    engine.config(SELF)
    chain = engine.open_change()
    checks = engine.runs(chain)["checks"]
    assert engine.fake.called("create_change_pipeline") == []
    [call] = engine.fake.called("create_pipeline")
    assert call.args[:2] == (APP, "feature")
    assert call.args[2]["RELEASE_STREAM"] == "stable"
    assert checks.undelivered == []


def test_self_with_a_ref_of_its_own_is_a_branch_pipeline_with_variables(engine: Engine) -> None:
    engine.config("downstream:\n  - {key: nightly, project: self, ref: main}\n")
    chain = engine.open_change(child_ref=MR_REF)
    assert engine.runs(chain)["nightly"].ref == "main"
    assert engine.fake.called("create_change_pipeline") == []
    [call] = engine.fake.called("create_pipeline")
    assert call.args[:2] == (APP, "main")
    assert "BATON_RUN_ID" in call.args[2]


def test_another_project_on_a_merge_request_ref_is_no_change_pipeline(engine: Engine) -> None:
    # Only the change's own project runs the change's pipeline; a target elsewhere whose ref
    # happens to read refs/merge-requests/7/head gets an ordinary pipeline with variables.
    engine.config(f"downstream:\n  - {{key: api, project: acme/api, ref: {MR_REF}}}\n")
    engine.open_change(child_ref=MR_REF)
    assert engine.fake.called("create_change_pipeline") == []
    [call] = engine.fake.called("create_pipeline")
    assert call.args[:2] == ("acme/api", MR_REF)
