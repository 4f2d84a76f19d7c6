"""Metrics that reach a real Prometheus (scripts/start_prometheus.sh scrapes the test Ray cluster): the app's
own series (stage times, refusals, adapter in use, max replicas) arrive and the recording rules evaluate on
them; the rules pass `promtool check rules` and their unit tests; the Grafana dashboard queries only series
that exist (Serve's own or the app's) or recorded rules."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "cluster" / "monitoring"


def _promtool() -> str:
    from tests.conftest import _missing_service

    tool = shutil.which("promtool")
    if tool is None:
        _missing_service("promtool is not installed (Debian package `prometheus`; scripts/setup.sh installs it)")
    return tool


def test_rules_pass_promtool_check_and_unit_tests():
    tool = _promtool()
    check = subprocess.run([tool, "check", "rules", "rules.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr
    unit = subprocess.run([tool, "test", "rules", "rules_test.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    alerts = {r["alert"] for g in yaml.safe_load((MONITORING / "rules.yml").read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    assert alerts == {"ICMAHighErrorRate", "ICMAHighLatencyP95", "ICMARefusingRequests", "ICMAReplicasAtMax"}


def test_dashboard_queries_known_series():
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    recorded = {r["record"] for g in yaml.safe_load((MONITORING / "rules.yml").read_text())["groups"]
                for r in g["rules"] if "record" in r}
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 6
    for expr in exprs:
        names = set(re.findall(r"\b(icma:[a-z0-9_:]+|ray_(?:serve|icma)_[a-z0-9_]+)", expr))
        assert names, expr
        for name in names:
            assert name in recorded or name.startswith(("ray_serve_", "ray_icma_")), (name, expr)
        assert "ray_icma_requests" not in expr and "ray_icma_route_latency" not in expr  # Serve's own, not duplicated


def _query(url: str, promql: str) -> list[dict]:
    r = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


@pytest.mark.ray_cluster
def test_app_series_arrive_in_prometheus(prometheus_url, icma_app, auth_app, chebi20_test_file):
    from ray_icma.data import load_records

    q = load_records(chebi20_test_file).records[7]
    for _ in range(3):
        ok = requests.post(f"{icma_app}/v1/mol2cap", json={"smiles": q.smiles, "max_new_tokens": 2}, timeout=120)
        assert ok.status_code == 200, ok.text
    assert requests.post(f"{auth_app}/v1/retrieve", json={"task": "cap2mol", "query": q.text},
                         timeout=30).status_code == 401
    assert requests.get(f"{auth_app}/readyz", timeout=30).status_code == 200
    wanted = {
        "stage times": 'sum by (stage) (ray_icma_stage_latency_ms_count{stage=~"retrieve|rerank|generate"})',
        "refusals": 'ray_icma_refusals_total{reason="auth"}',
        "adapter in use": 'ray_icma_adapter_requests_total{adapter="mol2cap",task="mol2cap"}',
        "max replicas": 'ray_icma_deployment_max_replicas{application="icma-auth"}',
        "Serve's requests by route/status": 'ray_serve_num_http_requests_total{application="icma-test",route="/v1/mol2cap"}',
        "recording rule": 'icma:stage_latency_ms:p95_5m',
    }
    deadline, missing = time.monotonic() + 150, dict(wanted)
    while missing and time.monotonic() < deadline:
        for what, promql in list(missing.items()):
            if _query(prometheus_url, promql):
                missing.pop(what)
        time.sleep(3)
    assert not missing, f"never arrived in Prometheus at {prometheus_url}: {missing}"
    stages = {r["metric"]["stage"]: float(r["value"][1]) for r in _query(prometheus_url, wanted["stage times"])}
    assert set(stages) == {"retrieve", "rerank", "generate"} and all(v >= 1 for v in stages.values()), stages
    assert float(_query(prometheus_url, wanted["adapter in use"])[0]["value"][1]) >= 3
    maxima = {r["metric"]["deployment"]: float(r["value"][1]) for r in _query(prometheus_url, wanted["max replicas"])}
    assert maxima == {"ICMAIngress": 1.0}, maxima  # the auth app's ingress runs num_replicas=1 (retrieval only)
