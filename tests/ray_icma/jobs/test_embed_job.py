"""The Ray Data embedding job on the real cluster: Parquet + FAISS index equal to a local
encode, invalid SMILES counted, incremental add, and the `ray-icma index` commands."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ray_icma.cli.app import app
from ray_icma.jobs.embed import add_molecules, embed_molecules, read_embeddings, read_manifest
from retrieval.encoders import GNNEncoder
from retrieval.indexes import FaissIndex

pytestmark = pytest.mark.ray_cluster

# The shared test cluster may be fully booked by other jobs (e.g. Ray Train workers); actors that
# reserve no CPU are still real actors on the cluster but never wait for a free slot.
CPUS = 0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small random-init GIN saved in the released layout (no ../shared needed)."""
    torch.manual_seed(11)
    encoder = GNNEncoder("gin", num_layer=3, emb_dim=32)
    for bn in encoder.batch_norms:
        bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_gin.pth"
    torch.save(encoder.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def built(ray_cluster, checkpoint, chebi20_pool_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "pool"
    seen: list[int] = []
    result = embed_molecules(chebi20_pool_file, out, checkpoint=checkpoint, batch_size=64, concurrency=2,
                             num_cpus_per_actor=CPUS, progress=seen.append)
    return result, out, seen


def test_job_output_equals_local_encoding(built, checkpoint, chebi20_pool_file):
    result, out, seen = built
    pool = pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str})
    assert result.n_rows == len(pool) == 300 and sum(seen) == 300
    ids, valid, vectors = read_embeddings(out)
    assert ids == pool["CID"].tolist()  # input order restored
    local, local_valid = GNNEncoder.from_pretrained(checkpoint).encode_smiles(pool["SMILES"].tolist())
    np.testing.assert_allclose(vectors, local, rtol=1e-4, atol=1e-5)
    assert (valid == local_valid).all() and result.n_valid == int(local_valid.sum())
    index = FaissIndex.load(out)
    assert len(index) == result.index_size == result.n_valid
    reference = FaissIndex(32).add(local[local_valid], np.array(ids)[local_valid])
    hits, expected = index.search(local[:20], k=5), reference.search(local[:20], k=5)
    np.testing.assert_array_equal(hits.indices, expected.indices)
    assert read_manifest(out)["gnn_type"] == "gin"


def test_invalid_smiles_counted_and_add_without_rebuild(built, checkpoint, chebi20_pool_file, tmp_path):
    out = tmp_path / "pool"  # its own copy: adding to the shared module index would change what other tests read
    shutil.copytree(built[1], out)
    first_id = pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str})["CID"][0]
    new = [("new-ethanol", "CCO"), ("new-broken", "C1CC("), (first_id, "CC"), ("new-dummy", "*CC(=O)O")]
    before = FaissIndex.load(out)
    result = add_molecules(out, new, batch_size=2, concurrency=1, num_cpus_per_actor=CPUS)
    assert result.n_rows == 3 and result.invalid_ids == ["new-broken"] and result.n_valid == 2
    assert any(first_id in line for line in result.skipped)
    after = FaissIndex.load(out)
    assert len(after) == len(before) + 2 and after.ids[: len(before)] == before.ids
    vector, _ = GNNEncoder.from_pretrained(checkpoint).encode_smiles(["CCO"])
    hit = after.search(vector, k=1)
    assert after.ids[hit.indices[0, 0]] == "new-ethanol" and hit.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    ids, valid, _ = read_embeddings(out)
    assert len(ids) == 303 and ids[-3:] == ["new-ethanol", "new-broken", "new-dummy"] and valid.sum() == len(after)


def test_cli_build_search_and_errors(ray_cluster, checkpoint, chebi20_pool_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-index"
    data = tmp_path / "mols.tsv"
    pool = pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str}).head(60)
    pool.loc[3, "SMILES"] = "C1CC("  # one bad row: reported, not fatal
    pool.to_csv(data, sep="\t", index=False)
    built = runner.invoke(app, ["index", "build", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out),
                                "--kind", "hnsw", "--batch-size", "16", "--concurrency", "2", "--cpus-per-actor", "0", "--no-progress"])
    assert built.exit_code == 0, built.output
    assert "60 molecules embedded (59 valid, 1 invalid SMILES)" in built.output
    found = runner.invoke(app, ["index", "search", "--index", str(out), "-k", "2", pool.loc[0, "SMILES"], "nonsense"])
    assert found.exit_code == 0, found.output
    assert f"{pool.loc[0, 'CID']}:1.000" in found.output and "invalid SMILES" in found.output
    wrong = runner.invoke(app, ["index", "build", "--data", str(data), "--checkpoint", str(checkpoint), "--out", str(out),
                                "--gnn-type", "gat", "--cpus-per-actor", "0", "--no-progress"])
    assert wrong.exit_code == 1 and "looks like gnn_type='gin'" in wrong.output and "Traceback" not in wrong.output
    missing = runner.invoke(app, ["index", "add", "--index", str(tmp_path / "nowhere"), "--data", str(data)])
    assert missing.exit_code == 1 and "embed_job.json is missing" in missing.output
