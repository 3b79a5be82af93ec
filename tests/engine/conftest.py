"""The engine on SQLite (or PostgreSQL when DATABASE_URL says so), with a FakeForge and no broker.

`engine` is a GitLab forge record with a linked author allowed to trigger acme/*, a FakeForge that
knows acme/app (the upstream), acme/api, acme/docs and acme/web, and verbs that drive the engine
through its public entry points the way the workers would: `open_change` (a webhook's change
event), `pipeline` (a webhook's pipeline event), `drain` (run what was enqueued, after commit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from bots.engine.planning import handle_change
from bots.engine.tracking import handle_pipeline
from bots.events import ChangeAction, ChangeEvent, PipelineEvent
from chains.models import Chain, Delivery, Forge, Grant, Identity, Run
from chains.planner import Change
from chains.status import Status
from tests.fakes.forge import FakeForge
from tests.fakes.tasks import Kicks, Outcome, deliver

APP = "acme/app"
SHA = "a" * 40
NEWER_SHA = "b" * 40
CONFIG = ".baton.yml"
ACTIONS = ["view", "trigger", "retry", "cancel", "deploy"]


@dataclass
class Engine:
    forge: Forge
    fake: FakeForge
    kicks: Kicks
    capture: Callable[..., AbstractContextManager[Any]]
    author: User
    ran: list[str] = field(default_factory=list)

    def step(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and then what it left for after commit (as a real commit would)."""
        with self.capture(execute=True):
            return fn(*args, **kwargs)

    def config(self, text: str, *, project: str = APP, ref: str = SHA) -> None:
        self.fake.add_file(project, CONFIG, ref, text)

    def change_event(
        self,
        *,
        number: int = 7,
        sha: str = SHA,
        action: ChangeAction = ChangeAction.OPENED,
        author: str = "alice",
        from_fork: bool = False,
        target: str = "main",
        child_ref: str = "",
    ) -> ChangeEvent:
        self.fake.add_change(
            APP,
            number,
            author=author,
            head_sha=sha,
            from_fork=from_fork,
            target_branch=target,
            child_ref=child_ref,
        )
        change = Change(
            forge=self.forge.slug,
            project=APP,
            project_url=f"https://forge.test/{APP}",
            number=number,
            url=f"https://forge.test/{APP}/-/merge_requests/{number}",
            source_branch="feature",
            target_branch=target,
            head_sha=sha,
            upstream_ref=f"refs/merge-requests/{number}/head",
            title="A change",
            author=author,
            child_ref=child_ref,
        )
        return ChangeEvent(
            action=action,
            change=change,
            project_id=self.fake.projects[APP].id,
            from_fork=from_fork,
            public=False,
        )

    def open_change(self, **kwargs: Any) -> Chain:
        """A change event as a webhook brings it, and what it enqueues drained."""
        detail = self.step(handle_change, self.forge, self.change_event(**kwargs), None)
        self.drain()
        chain = Chain.objects.filter(change_number=kwargs.get("number", 7)).order_by("pk").last()
        assert chain is not None, detail
        return chain

    def pipeline(self, run: Run, status: Status, *, hooked: bool = True) -> str:
        """The forge moves the run's pipeline to ``status`` and says so in a webhook."""
        run.refresh_from_db()
        self.fake.set_status(run.repository.path, run.remote_id, status)
        event = PipelineEvent(
            project=run.repository.path,
            project_id=self.fake.projects[run.repository.path].id,
            pipeline_id=run.remote_id,
            status=status,
            web_url="",
        )
        delivery = None
        if hooked:
            delivery = Delivery.objects.create(
                forge=self.forge,
                event="Pipeline Hook",
                dedupe_key=f"pipeline-{run.remote_id}-{status}-{Delivery.objects.count()}",
                payload={},
            )
        detail = self.step(handle_pipeline, self.forge, event, delivery)
        self.drain()
        return detail

    def deliver(self, name: str, *args: Any, retries: int = 0) -> Outcome:
        """One worker delivery of a task, with what it leaves for after commit."""
        with self.capture(execute=True):
            return deliver(name, *args, retries=retries)

    def drain(self, *, within: float = 1.0, limit: int = 100) -> list[str]:
        """Run the enqueued tasks due within ``within`` seconds, and what they enqueue in turn;
        a retry comes back as a kick with its countdown."""
        ran: list[str] = []
        while limit:
            due = [k for k in self.kicks.pending if k.countdown <= within]
            if not due:
                break
            kick = due[0]
            self.kicks.pending.remove(kick)
            outcome = self.deliver(kick.name, *kick.args)
            ran.append(kick.name)
            if outcome.raised is not None:
                raise outcome.raised
            if outcome.retried:
                self.kicks.pending.append(
                    type(kick)(kick.name, kick.args, kick.kwargs, outcome.countdown or 0.0)
                )
                if (outcome.countdown or 0.0) <= within:
                    limit -= 1  # an immediate retry (e.g. mirroring claimed elsewhere)
            limit -= 1
        self.ran.extend(ran)
        return ran

    def runs(self, chain: Chain) -> dict[str, Run]:
        return {r.key: r for r in chain.runs.select_related("repository").order_by("pk")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is an engine unit test: it runs on any database, without a broker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.engine)


@pytest.fixture
def engine(
    db: None,
    fake_forge: FakeForge,
    kicks: Kicks,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> Iterator[Engine]:
    settings.BATON_REPEAT_WINDOW = 0.0  # tests send the same event on purpose
    forge = Forge.objects.create(
        kind=Forge.Kind.GITLAB,
        slug="gl",
        name="GitLab",
        api_url="https://gl.example.com",
        token="glpat-engine",
        webhook_secret="hook-secret",
        bot_username="baton-bot",
    )
    for path in (APP, "acme/api", "acme/docs", "acme/web"):
        fake_forge.add_project(path)
    author = User.objects.create_user("alice", "alice@example.com")  # no password: no hashing
    Identity.objects.create(forge=forge, username="alice", user=author)
    Grant.objects.create(user=author, projects="acme/*", actions=ACTIONS)
    yield Engine(forge, fake_forge, kicks, django_capture_on_commit_callbacks, author)
