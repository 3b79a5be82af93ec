"""What the dashboard's buttons do: each calls one domain verb and says what happened, in words,
or raises ``services.ActionRefused`` saying why not."""

from __future__ import annotations

from collections.abc import Callable

from bots import services
from chains.models import Chain, Run

RunAction = Callable[[Run, services.Actor], str]
ChainAction = Callable[[Chain, services.Actor], str]


def _name(run: Run) -> str:
    return run.label or run.key


def retry_run(run: Run, actor: services.Actor) -> str:
    run = services.retry_run(run, actor=actor)
    return f"Retrying {_name(run)}: attempt {run.attempt} is on its way."


def cancel_run(run: Run, actor: services.Actor) -> str:
    if not services.cancel_run(run, actor=actor):
        raise services.ActionRefused(
            f"{_name(run)} was not canceled: it has already finished or a cancel is under way."
        )
    return f"Canceling {_name(run)}."


def cancel_chain(chain: Chain, actor: services.Actor) -> str:
    count = services.cancel_chain(chain, actor=actor)
    if not count:
        raise services.ActionRefused("Nothing to cancel: no run of this chain is still active.")
    return f"Canceling {count} run{'s' if count != 1 else ''}."


def retry_failed(chain: Chain, actor: services.Actor) -> str:
    count = services.retry_failed(chain, actor=actor)
    return f"Retrying {count} failed run{'s' if count != 1 else ''}."


def rerun_chain(chain: Chain, actor: services.Actor) -> str:
    services.rerun_chain(chain, actor=actor)
    return (
        "Re-running on the change's latest commit: a new chain will replace this one in a moment."
    )


def retry_subtree(run: Run, actor: services.Actor) -> str:
    count = services.retry_subtree(run, actor=actor)
    others = count - 1
    return (
        f"Starting {_name(run)} again with the {others} run{'s' if others != 1 else ''} it set off."
    )


# The policy verb each button asks for (``chains.policy.needs`` says what it touches).
RUN_VERBS = {"retry": "retry", "retry-subtree": "retry-subtree", "cancel": "cancel"}
CHAIN_VERBS = {"cancel": "cancel-chain", "retry-failed": "retry-failed", "rerun": "rerun"}

RUN_ACTIONS: dict[str, RunAction] = {
    "retry": retry_run,
    "cancel": cancel_run,
    "retry-subtree": retry_subtree,
}
CHAIN_ACTIONS: dict[str, ChainAction] = {
    "cancel": cancel_chain,
    "retry-failed": retry_failed,
    "rerun": rerun_chain,
}
