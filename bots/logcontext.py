"""The ids of the work at hand (delivery, chain, run) on every log line, across processes.

Entry points set them: the webhook view once it stored a delivery, each Celery task before it
starts (from its arguments and from the headers of the message that queued it), and the change
handler once it created a chain. Every task queued while ids are set carries them in its
message headers, so a chain's lines can be followed from the web process into every worker.
``ContextFilter`` puts them on each log record; ``PlainFormatter`` and the JSON formatter of
python-json-logger write them out (docs/operations.md, "Logs").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

IDS = ("delivery_id", "chain_id", "run_id")
HEADER = "baton_ids"  # the Celery message header that carries them

_vars: dict[str, ContextVar[int | None]] = {
    name: ContextVar(f"baton_{name}", default=None) for name in IDS
}


def current() -> dict[str, int]:
    """The ids set now (only those that are set)."""
    return {name: value for name, var in _vars.items() if (value := var.get()) is not None}


def bind(**ids: Any) -> None:
    """Set ids for the rest of this context (a request, a task); unknown names and values that
    are not whole numbers are ignored (they may come from a message header)."""
    for name, value in ids.items():
        var = _vars.get(name)
        if var is None or value is None:
            continue
        try:
            var.set(int(value))
        except (TypeError, ValueError):
            continue


def clear() -> None:
    for var in _vars.values():
        var.set(None)


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Ids set inside the block only."""
    tokens = {name: var.set(var.get()) for name, var in _vars.items()}
    try:
        bind(**ids)
        yield
    finally:
        for name, token in tokens.items():
            _vars[name].reset(token)


class ContextFilter(logging.Filter):
    """Adds the current ids to every record as attributes (``record.chain_id`` …); ids a
    record already carries (``extra=``) are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """The readable format, with the ids at the end: ``… message [chain=12 run=40]``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [
            f"{name.removesuffix('_id')}={value}"
            for name in IDS
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{text} [{' '.join(ids)}]" if ids else text


class LogContextMiddleware:
    """Each request starts with no ids (a thread serves many requests)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        clear()
        try:
            return self.get_response(request)
        finally:
            clear()
