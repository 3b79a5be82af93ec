"""One chain end to end, followed in the worker's JSON log lines by its ids, and counted in the
metrics of the web process (/metrics) and of the worker (BATON_WORKER_METRICS_PORT)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from chains.models import Chain
from tests.e2e.conftest import Forges, Worker, eventually
from tests.e2e.test_gitlab_chain import chain_done, open_mr

pytestmark = [pytest.mark.e2e]


def lines(worker: Worker) -> list[str]:
    path = Path(worker.log_dir) / f"worker-{worker.starts}.log"
    return path.read_text(errors="replace").splitlines()


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def total(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(
        value
        for sample, have, value in found
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def test_json_logs_follow_one_chain_and_metrics_count_it(
    forges: Forges, idle_worker: Worker, live_server: Any
) -> None:
    forges.project("acme/api")
    web = forges.project("acme/web")
    forges.sandbox.commit(web["id"], {"x": "1"}, branch="release/stable")
    open_mr(forges)
    chain: Chain = eventually(chain_done, 40, "the chain to finish")
    run_ids = set(chain.runs.values_list("pk", flat=True))
    assert chain.delivery_id is not None

    # Every worker line about this chain is a JSON object carrying its chain_id.
    def chain_lines() -> list[dict[str, Any]]:
        found = []
        for line in lines(idle_worker):
            if not line.startswith("{"):
                assert f"chain {chain.pk} " not in line, f"not a JSON line: {line!r}"
                continue
            record = json.loads(line)
            if record.get("chain_id") == chain.pk:
                found.append(record)
        return found

    records = eventually(
        lambda: (r := chain_lines()) and {x.get("run_id") for x in r} >= run_ids and r,
        20,
        "worker lines for every run of the chain",
    )
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    messages = [r["message"] for r in records]
    assert any(m.startswith(f"chain {chain.pk} started") for m in messages), messages
    # The delivery the web process stored is the one the worker handled for this chain.
    assert any(r.get("delivery_id") == chain.delivery_id for r in records)
    # A run's lines name its chain too (the task for a run looks it up or gets it in headers).
    assert {r["run_id"] for r in records if "run_id" in r} >= run_ids
    # No other chain's lines claim to be this one's.
    assert all(r.get("run_id") in run_ids | {None} for r in records)

    # The web process: intake, and what the database holds.
    response = requests.get(f"{live_server.url}/metrics", timeout=10)
    assert response.status_code == 200
    web_samples = samples(response.text)
    received = "baton_webhooks_received_total"
    assert total(web_samples, received, forge="gitlab", result="accepted") >= 1
    assert total(web_samples, "baton_intake_seconds_count", forge="gitlab") >= 1
    assert total(web_samples, "baton_runs", status="success") == len(run_ids)
    assert total(web_samples, "baton_chains", status="success") >= 1
    assert total(web_samples, "baton_last_delivery_timestamp_seconds", forge="gitlab") > 0

    # The worker: deliveries handled, triggers, forge calls, queue wait and task times.
    scraped = requests.get(f"http://127.0.0.1:{idle_worker.metrics_port}/metrics", timeout=10)
    assert scraped.status_code == 200
    found = samples(scraped.text)
    assert total(found, "baton_deliveries_total", forge="gitlab", outcome="processed") >= 1
    assert total(found, "baton_triggers_total", forge="gitlab", result="triggered") >= len(run_ids)
    assert total(found, "baton_forge_requests_total", forge="gitlab", status="2xx") >= 3
    assert total(found, "baton_forge_request_seconds_count", forge="gitlab") >= 3
    assert total(found, "baton_queue_wait_seconds_count", task="bots.tasks.process_delivery") >= 1
    assert total(found, "baton_task_seconds_count", state="SUCCESS") >= len(run_ids)
