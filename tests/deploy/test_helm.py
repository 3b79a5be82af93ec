"""The Helm chart (deploy/helm/baton/) rendered by a strict Go-template renderer (gotemplate.py;
no helm binary on these machines): valid YAML, every value a template names is in values.yaml,
and the parts docs/deploy.md describes — web, worker and beat Deployments, a Service, an optional
Ingress, secrets as files from an existing Secret, a migration hook, probes on /healthz and
/readyz, non-root pods."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.gotemplate import Chart, TemplateError

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "baton"
INGRESS_ON = {
    "ingress": {"enabled": True, "className": "nginx", "tlsSecretName": "baton-tls"},
    "extraEnv": {"BATON_MAX_DEPTH": 7},
    "imagePullSecrets": [{"name": "registry"}],
    "image": {"tag": "1.2.3"},
}


@pytest.fixture(scope="module")
def chart() -> Chart:
    return Chart(CHART)


def _by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def test_chart_metadata() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "baton" and meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    assert meta["appVersion"]


def test_every_values_reference_in_the_templates_exists_in_values_yaml() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    text = "".join(p.read_text() for p in (CHART / "templates").iterdir())
    references = set(re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
    assert len(references) > 20
    for reference in sorted(references):
        node: Any = values
        for key in reference.strip(".").split("."):
            assert isinstance(node, dict) and key in node, f".Values{reference} not in values.yaml"
            node = node[key]


@pytest.mark.parametrize("overrides", [None, INGRESS_ON], ids=["defaults", "ingress"])
def test_chart_renders_to_valid_kubernetes_objects(chart: Chart, overrides) -> None:
    docs = list(chart.documents(overrides))
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    expected = [
        "Deployment/rel-baton-beat",
        "Deployment/rel-baton-web",
        "Deployment/rel-baton-worker",
        "Job/rel-baton-migrate",
        "Service/rel-baton-web",
    ]
    if overrides:
        expected.insert(3, "Ingress/rel-baton")
    assert kinds == expected
    for doc in docs:
        assert (
            doc["apiVersion"] and doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
        )


def test_the_strict_renderer_refuses_a_value_missing_from_values_yaml(tmp_path: Path) -> None:
    for part in ("Chart.yaml", "values.yaml"):
        (tmp_path / part).write_text((CHART / part).read_text())
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "x.yaml").write_text("a: {{ .Values.web.replcias }}\n")
    with pytest.raises(TemplateError, match="replcias"):
        Chart(tmp_path).render()


def test_web_probes_and_pods_run_as_non_root(chart: Chart) -> None:
    objects = _by_name(list(chart.documents(INGRESS_ON)))
    web = _container(objects["Deployment/rel-baton-web"])
    assert web["args"] == ["web"] and web["image"] == "baton:1.2.3"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Django answers only to ALLOWED_HOSTS: probes must name the host.
    assert web["livenessProbe"]["httpGet"]["httpHeaders"] == [
        {"name": "Host", "value": "baton.example.com"}
    ]
    env = {e["name"]: e["value"] for e in web["env"]}
    assert env["WEB_CONCURRENCY"] == "2" and env["BATON_MAX_DEPTH"] == "7"
    for name, doc in objects.items():
        if name.split("/")[0] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        container = _container(doc)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    ingress = objects["Ingress/rel-baton"]
    assert ingress["spec"]["tls"][0]["secretName"] == "baton-tls"
    assert ingress["spec"]["rules"][0]["host"] == "baton.example.com"


def test_secrets_come_from_an_existing_secret_as_files(chart: Chart) -> None:
    for doc in chart.documents():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in _container(doc)["env"]}
        assert env["SECRET_KEY_FILE"] == "/run/secrets/baton/SECRET_KEY"
        assert env["DATABASE_URL_FILE"] == "/run/secrets/baton/DATABASE_URL"
        assert env["CELERY_BROKER_URL_FILE"] == "/run/secrets/baton/CELERY_BROKER_URL"
        assert not {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} & set(env)
        assert {"name": "secrets", "secret": {"secretName": "baton"}} in pod["volumes"]


def test_migrations_run_as_a_hook_before_install_and_upgrade(chart: Chart) -> None:
    objects = _by_name(list(chart.documents()))
    job = objects["Job/rel-baton-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert _container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "Job/rel-baton-migrate" not in _by_name(
        list(chart.documents({"migrate": {"enabled": False}}))
    )


def test_worker_and_a_single_scheduler(chart: Chart) -> None:
    objects = _by_name(list(chart.documents({"worker": {"replicas": 5}})))
    worker = objects["Deployment/rel-baton-worker"]
    assert worker["spec"]["replicas"] == 5 and _container(worker)["args"] == ["worker"]
    beat = objects["Deployment/rel-baton-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert _container(beat)["args"] == ["beat"]
    service = objects["Service/rel-baton-web"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"
