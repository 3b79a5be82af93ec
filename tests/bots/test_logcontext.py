"""Log ids (bots/logcontext.py): the filter puts them on every record, both formats write them."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from pythonjsonlogger.json import JsonFormatter

from bots import logcontext


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("bots.x", logging.INFO, __file__, 1, message, args or ("x",), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


@pytest.fixture(autouse=True)
def no_ids() -> None:
    logcontext.clear()


def test_filter_adds_the_ids_set_and_only_those() -> None:
    logcontext.bind(chain_id=12, run_id="40", delivery_id=None, other=3)
    made = record()
    assert logcontext.ContextFilter().filter(made) is True
    assert (made.chain_id, made.run_id) == (12, 40)  # type: ignore[attr-defined]
    assert not hasattr(made, "delivery_id") and not hasattr(made, "other")


def test_ids_given_with_the_record_win() -> None:
    logcontext.bind(chain_id=12)
    made = record(chain_id=7)
    logcontext.ContextFilter().filter(made)
    assert made.chain_id == 7  # type: ignore[attr-defined]


def test_values_that_are_not_whole_numbers_are_ignored() -> None:
    logcontext.bind(chain_id="12; DROP", run_id=["x"])
    assert logcontext.current() == {}


def test_plain_and_json_formats() -> None:
    logcontext.bind(delivery_id=3, chain_id=12)
    made = record("chain %s started", 12)
    logcontext.ContextFilter().filter(made)
    plain = logcontext.PlainFormatter("%(levelname)s %(message)s").format(made)
    assert plain == "INFO chain 12 started [delivery=3 chain=12]"
    line = JsonFormatter("%(levelname)s %(name)s %(message)s").format(made)
    parsed = json.loads(line)
    assert parsed["message"] == "chain 12 started"
    assert (parsed["delivery_id"], parsed["chain_id"]) == (3, 12)
    assert "run_id" not in parsed


def test_no_ids_no_suffix() -> None:
    made = record()
    logcontext.ContextFilter().filter(made)
    assert logcontext.PlainFormatter("%(message)s").format(made) == "hello x"


def test_bound_restores_and_threads_do_not_share() -> None:
    logcontext.bind(chain_id=1)
    with logcontext.bound(chain_id=2, run_id=5):
        assert logcontext.current() == {"chain_id": 2, "run_id": 5}
        seen: list[dict[str, int]] = []
        thread = threading.Thread(target=lambda: seen.append(logcontext.current()))
        thread.start()
        thread.join()
        assert seen == [{}]
    assert logcontext.current() == {"chain_id": 1}


def test_the_middleware_starts_each_request_clean() -> None:
    logcontext.bind(chain_id=9)  # left over from an earlier request on this thread
    seen: list[dict[str, int]] = []

    def view(request: object) -> str:
        seen.append(logcontext.current())
        logcontext.bind(delivery_id=4)
        return "ok"

    assert logcontext.LogContextMiddleware(view)(object()) == "ok"
    assert seen == [{}] and logcontext.current() == {}


def test_settings_wire_the_filter_and_the_chosen_format(settings) -> None:  # type: ignore[no-untyped-def]
    handler = settings.LOGGING["handlers"]["console"]
    assert handler["filters"] == ["ids"]
    assert handler["formatter"] in {"plain", "json"}
    assert handler["formatter"] == settings.LOG_FORMAT


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': use plain or json"),
        ({"BATON_METRICS_ALLOW": "10.0.0.0/8,everyone"}, "BATON_METRICS_ALLOW: 'everyone'"),
        ({"BATON_PRUNE_BATCH": "0"}, "BATON_PRUNE_BATCH"),
    ],
)
def test_bad_observability_settings_fail_loudly(env: dict[str, str], named: str) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert named in result.stderr
