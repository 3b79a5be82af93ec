"""With PROMETHEUS_MULTIPROC_DIR, /metrics sums what every process on the host counted (gunicorn
workers, Celery prefork children)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]

COUNT = """
import django
django.setup()
from bots import metrics
metrics.trigger("gl", "triggered")
metrics.forge_call("gl", "GET", 200, 0.1, {"RateLimit-Remaining": "{remaining}"})
"""

SCRAPE = """
import django
django.setup()
from prometheus_client import generate_latest
from config.metrics import registries
print(generate_latest(registries()[0]).decode())
"""


def run(code: str, directory: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counts_of_every_process_are_summed(tmp_path: Path) -> None:
    run(COUNT.replace("{remaining}", "50"), tmp_path)
    run(COUNT.replace("{remaining}", "40"), tmp_path)
    text = run(SCRAPE, tmp_path)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    triggered = ("baton_triggers_total", (("forge", "gl"), ("result", "triggered")))
    assert samples[triggered] == 2
    requests = ("baton_forge_request_seconds_count", (("forge", "gl"),))
    assert samples[requests] == 2
    # A gauge is the newest value any process set, not a sum.
    assert samples[("baton_forge_rate_limit_remaining", (("forge", "gl"),))] == 40
