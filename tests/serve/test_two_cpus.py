"""The README's machine: every shipped Serve config starts with `ray-icma serve` on a local Ray with exactly
2 CPUs and answers over HTTP; an app that cannot fit is refused within seconds, naming each deployment's
ask and the cluster's free resources (instead of never becoming ready)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.es]

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "serve").glob("*.yaml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shipped_configs_start_on_two_cpus_and_too_big_fails_fast(tmp_path, es_url):
    data = yaml.safe_load((ROOT / "configs/serve/icma_app.yaml").read_text())
    data["applications"][0]["name"] = "too-big"
    gen = data["applications"][0]["args"]["generator"]
    gen["deployment_options"] = {"ray_actor_options": {"num_cpus": 3}}
    too_big = tmp_path / "too_big.yaml"
    too_big.write_text(yaml.safe_dump(data))

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a private local Ray, not the shared one
    env["RAY_ICMA_ES_URL"] = es_url
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_two_cpu_probe.py")), str(_free_port()), str(too_big),
         *map(str, CONFIGS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    line = next((l for l in proc.stdout.splitlines() if l.startswith("PROBE-RESULT ")), None)
    assert line, f"probe failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    out = json.loads(line.removeprefix("PROBE-RESULT "))
    assert out["cluster"] == {"CPU": 2.0}, out["cluster"]
    assert len(out["configs"]) == len(CONFIGS) >= 2
    for config, entry in out["configs"].items():
        assert entry["exit_code"] == 0, (config, entry["output"])
        assert (entry["readyz"], entry["retrieve"], entry["mol2cap"]) == (200, 200, 200), (config, entry)
    refused = out["too_big"]
    text = refused["output"]
    assert refused["exit_code"] == 1, text
    assert refused["seconds"] < 15, refused["seconds"]
    # names every deployment with its ask, and what the cluster has free
    assert "ICMAIngress: 1 replica(s) x (CPU 1)" in text and "Generator: 1 replica(s) x (CPU 3)" in text, text
    assert "asks for CPU 4 in total at start, but the cluster has CPU 2 free" in text, text
    assert "cluster free: CPU 2" in text, text
    assert "too-big" not in out["apps_after_refusal"]
