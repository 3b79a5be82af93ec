"""deploy/prometheus/alerts.yml and deploy/grafana/baton.json: well-formed, and every metric and
label they name is one Baton exports (bots/metrics.py and its database collector)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from bots import metrics
from chains.models import Delivery, Forge

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "baton.json"

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
# Labels Prometheus itself adds, and those of histogram buckets.
BUILTIN_LABELS = {"le", "job", "instance"}
DURATION = re.compile(r"^\d+[smhdwy]$")


@pytest.fixture
def exported(db: None) -> dict[str, set[str]]:
    """Every sample name Baton can export, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for item in vars(metrics).values():
        if isinstance(item, MetricWrapperBase):
            for suffix in SUFFIXES[str(item._type)]:
                names[item._name + suffix] = set(item._labelnames)
    forge = Forge.objects.create(
        kind="gitlab", slug="x", name="x", api_url="http://x:1", token="t", webhook_secret="s"
    )
    Delivery.objects.record(forge, "Push Hook", "k", {}, handled=True)
    for family in metrics.DatabaseCollector().collect():
        # The labels a family declares (one with no sample now, e.g. no silent forge, too).
        declared = set(getattr(family, "_labelnames", ()))
        names[family.name] = declared | {key for sample in family.samples for key in sample.labels}
    return names


PROMQL_WORDS = {
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "by",
    "without",
    "rate",
    "increase",
    "deriv",
    "time",
    "histogram_quantile",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "label_values",
}


def check_expr(expr: str, exported: dict[str, set[str]]) -> None:
    bare = re.sub(r'"[^"]*"', '""', expr)  # no words from inside strings
    named = re.findall(r"\bbaton_[a-z_]+\b", bare)
    assert named, f"{expr!r} names no Baton metric"
    for name in named:
        assert name in exported, f"{name} in {expr!r} is not a metric Baton exports"
    # Labels in matchers and in by (...) must be labels of the metrics named.
    known = set().union(*(exported[name] for name in named)) | BUILTIN_LABELS
    used = set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", bare))
    for group in re.findall(r"\bby\s*\(([^)]*)\)", bare):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    assert used <= known, f"{expr!r} uses labels {sorted(used - known)} Baton does not export"
    words = set(re.findall(r"\b([a-z_]+)\s*\(", bare)) - {"by"}
    assert words <= PROMQL_WORDS, f"unexpected functions {sorted(words - PROMQL_WORDS)}"


def test_alert_rules_have_prometheus_structure(exported: dict[str, set[str]]) -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    names = []
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
            assert isinstance(rule["alert"], str) and re.fullmatch(r"[A-Za-z]+", rule["alert"])
            assert DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            check_expr(rule["expr"], exported)
            names.append(rule["alert"])
    assert len(names) == len(set(names))
    # What the issue asks for: hook silence, failing triggers, rate limits, a growing queue.
    assert {
        "BatonHookSilence",
        "BatonTriggersFailing",
        "BatonRateLimitExhausted",
        "BatonQueueGrowing",
    } <= set(names)


def test_the_dashboard_is_grafana_json_over_baton_metrics(exported: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Baton"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        assert panel["targets"]
        for target in panel["targets"]:
            check_expr(target["expr"].replace("$__rate_interval", "5m"), exported)
    shown = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\bbaton_[a-z_]+\b", target["expr"])
    }
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in shown}
    every = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in exported}
    assert families == every, f"families without a panel: {sorted(every - families)}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            check_expr(variable["query"]["query"], exported)


@pytest.mark.parametrize(
    "expr",
    [
        "rate(baton_webhook_received_total[5m])",  # a misspelt family
        "sum by (repo) (rate(baton_triggers_total[5m]))",  # a label it does not have
        'baton_runs{state="running"}',
        "up == 0",  # no Baton metric at all
    ],
)
def test_the_check_catches_names_baton_does_not_export(
    expr: str, exported: dict[str, set[str]]
) -> None:
    with pytest.raises(AssertionError):
        check_expr(expr, exported)
