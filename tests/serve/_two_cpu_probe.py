"""Run by tests/serve/test_two_cpus.py in a subprocess (its own local Ray with exactly 2 CPUs, gone when
this process exits): start each config given with `ray-icma serve --no-blocking`, call it over HTTP,
delete it; then start the too-big config and time its refusal. Prints one JSON line with what happened.

    python tests/serve/_two_cpu_probe.py PORT TOO_BIG_CONFIG CONFIG...
"""
from __future__ import annotations

import json
import sys
import time


def main() -> int:
    import ray
    import requests
    from ray import serve
    from typer.testing import CliRunner

    from ray_icma.cli.app import app

    port, too_big, configs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False, object_store_memory=300 * 1024**2)
    out: dict = {"cluster": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}, "configs": {}}
    runner = CliRunner()
    for config in configs:
        t0 = time.monotonic()
        res = runner.invoke(app, ["serve", config, "--no-blocking", "--port", str(port)])
        entry: dict = {"exit_code": res.exit_code, "output": res.output[-3000:], "deploy_s": time.monotonic() - t0}
        if res.exit_code == 0:
            base = f"http://127.0.0.1:{port}"
            ready = requests.get(f"{base}/readyz", timeout=60)
            entry["readyz"] = ready.status_code
            entry["retrieve"] = requests.post(f"{base}/v1/retrieve", json={"task": "cap2mol", "query": "an amino acid"},
                                              timeout=120).status_code
            mol = requests.post(f"{base}/v1/mol2cap", json={"smiles": "CC(=O)Oc1ccccc1C(=O)O", "max_new_tokens": 8},
                                timeout=300)
            entry["mol2cap"] = mol.status_code
            entry["mol2cap_body"] = mol.text[:500]
            for name in list(serve.status().applications):
                serve.delete(name)
            deadline = time.monotonic() + 60  # replicas give their CPUs back
            while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
        out["configs"][config] = entry
    t0 = time.monotonic()
    res = runner.invoke(app, ["serve", too_big, "--no-blocking", "--port", str(port)])
    out["too_big"] = {"exit_code": res.exit_code, "output": res.output[-3000:], "seconds": time.monotonic() - t0}
    out["apps_after_refusal"] = sorted(serve.status().applications)
    print("PROBE-RESULT " + json.dumps(out), flush=True)
    serve.shutdown()
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
