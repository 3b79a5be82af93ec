"""Celery without a broker: every task a test's code enqueues is recorded as a `Kick` (name,
arguments, countdown) instead of being sent, and a test runs the kicks it wants, one worker
delivery at a time, seeing what a worker would: done, retried (with its countdown) or failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery.app.task import Task
from celery.exceptions import Retry


@dataclass
class Kick:
    name: str  # the task's short name: "trigger_run"
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    countdown: float


@dataclass
class Outcome:
    """What one delivery of a task came to."""

    retried: bool = False
    countdown: float | None = None  # when retried: seconds until the next delivery
    raised: BaseException | None = None  # the task failed (a worker would log it)
    value: Any = None


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def task_named(name: str) -> Task:
    from config.celery import app

    app.loader.import_default_modules()  # the apps' tasks modules, as a worker loads them
    if name in app.tasks:
        return app.tasks[name]
    found = [task for full, task in app.tasks.items() if short(full) == name]
    if len(found) > 1:  # which one a short name means must not depend on import order
        raise KeyError(f"{name!r} names several tasks: {sorted(t.name for t in found)}")
    if not found:
        raise KeyError(f"no task called {name!r}")
    return found[0]


def deliver(name: str, *args: Any, retries: int = 0, **kwargs: Any) -> Outcome:
    """Run one delivery of the task ``name`` as a worker would hand it over the ``retries``-th
    time (so a retry is answered, not executed: the Outcome says when it would come back)."""
    task = task_named(name)
    task.push_request(
        args=args,
        kwargs=kwargs,
        retries=retries,
        is_eager=True,  # a retry raises Retry here instead of going to a broker
        called_directly=False,
        id=f"test-{short(task.name)}",
        delivery_info={},
    )
    try:
        value = task.run(*args, **kwargs)
    except Retry as retry:
        when = retry.when
        countdown = float(when) if isinstance(when, int | float) else None
        return Outcome(retried=True, countdown=countdown)
    except Exception as exc:
        return Outcome(raised=exc)
    finally:
        task.pop_request()
    return Outcome(value=value)


class Kicks:
    """The tasks enqueued so far: ``pending`` not yet run by the test, ``sent`` all of them."""

    def __init__(self) -> None:
        self.pending: list[Kick] = []
        self.sent: list[Kick] = []

    def record(self, task: Task, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        countdown = options.get("countdown") or 0.0
        kick = Kick(short(task.name), tuple(args or ()), dict(kwargs or {}), float(countdown))
        self.pending.append(kick)
        self.sent.append(kick)

    def names(self, *, pending: bool = False) -> list[str]:
        return [k.name for k in (self.pending if pending else self.sent)]

    def of(self, name: str, *, pending: bool = True) -> list[Kick]:
        return [k for k in (self.pending if pending else self.sent) if k.name == name]

    def take(self, name: str) -> list[Kick]:
        """Remove and return the pending kicks of ``name``."""
        taken = self.of(name)
        self.pending = [k for k in self.pending if k.name != name]
        return taken

    def clear(self) -> None:
        self.pending.clear()


def install(monkeypatch: Any) -> Kicks:
    kicks = Kicks()

    def apply_async(task: Task, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        kicks.record(task, args, kwargs, **options)

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return kicks
