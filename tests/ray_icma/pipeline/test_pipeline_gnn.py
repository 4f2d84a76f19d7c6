"""A pipeline with a `gnn:` retriever: the embed stage's FAISS index (Ray Data) is what the contexts
stage searches (no in-process re-encoding), and its resume check finds the job's manifest.
The GNN is randomly initialised and seeded here: the test needs no ../shared weights."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_module

torch = require_module("torch")

from ray_icma.data import load_records  # noqa: E402
from ray_icma.jobs.contexts import build_contexts, read_contexts  # noqa: E402
from ray_icma.jobs.embed import MANIFEST  # noqa: E402
from ray_icma.pipeline import load_pipeline_config, run_pipeline  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[3] / "configs" / "pipeline" / "quickstart.yaml"
pytestmark = pytest.mark.ray_cluster


def test_contexts_search_the_embed_stage_index(ray_cluster, tmp_path, chebi20_test_file, chebi20_pool_file):
    from retrieval.encoders import GNNEncoder

    torch.manual_seed(7)
    checkpoint = tmp_path / "gin_seeded.pth"
    torch.save(GNNEncoder(gnn_type="gin").state_dict(), checkpoint)
    overrides = [f"run.root={tmp_path}", "run.name=gnn", f"data.queries={chebi20_test_file}", f"data.pool={chebi20_pool_file}",
                 "data.n_queries=6", "tasks=[mol2cap]", f"retrieval.mol2cap=gnn:{checkpoint}", "retrieval.embed_batch_size=128"]
    result = run_pipeline(load_pipeline_config(QUICKSTART, overrides), until="contexts")
    run_dir = tmp_path / "gnn"
    assert {s["name"]: s["status"] for s in result.stages} == {"data": "ran", "embed": "ran", "contexts": "ran"}
    assert (run_dir / "index" / "gnn" / MANIFEST).is_file()

    for split in ("test", "train"):
        table = read_contexts(run_dir / "contexts" / f"mol2cap_{split}.jsonl")
        assert table.meta["index_dir"] == str(run_dir / "index" / "gnn")  # the built index, not a re-encoding
    # ... and it ranks exactly like encoding the pool in-process
    queries = load_records(run_dir / "data" / "queries.jsonl", validate_smiles=False).records
    pool = load_records(run_dir / "data" / "pool.jsonl", validate_smiles=False).records
    reference = build_contexts(queries, pool, "mol2cap", f"gnn:{checkpoint}", k=10)
    built = read_contexts(run_dir / "contexts" / "mol2cap_test.jsonl")
    for q in queries:
        assert built[q.cid][0] == reference[q.cid][0]
        assert built[q.cid][1] == pytest.approx(reference[q.cid][1], abs=1e-4)

    again = run_pipeline(load_pipeline_config(QUICKSTART, overrides), until="contexts")
    assert {s["name"]: s["status"] for s in again.stages} == {"data": "skipped", "embed": "skipped", "contexts": "skipped"}
    assert json.loads((run_dir / "fingerprints.json").read_text())["embed"]["config"] == {"retriever": f"gnn:{checkpoint}"}
