"""Ray Job entrypoint: one ICMT training run (``run_training``), result summary written as JSON.

    python tests/integration/jobs/train_job.py CONFIG.yaml RESULT.json [key=value ...]

What a RayJob's ``entrypoint`` runs; the job supervisor sets ``RAY_ADDRESS`` so ``run_training``
joins the cluster the job was submitted to.
"""
from __future__ import annotations

import json
import sys
import time


def main(config_path: str, result_path: str, overrides: list[str]) -> None:
    from ray_icma.train import load_train_config, run_training

    started = time.time()
    result = run_training(load_train_config(config_path, overrides))
    summary = {
        "started": started,
        "finished": time.time(),
        "adapter_dir": result.adapter_dir,
        "checkpoint_path": result.checkpoint_path,
        "loss_history": result.loss_history,
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str))},
    }
    with open(result_path, "w") as fh:
        json.dump(summary, fh, indent=1)
    print(f"[train_job] {len(result.loss_history)} steps, final loss {result.loss_history[-1]['loss']:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
