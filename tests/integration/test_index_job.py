"""The index-building job submitted through Ray's Jobs API to the multi-host cluster, as a RayJob
would: `ray-icma index build` on the 300-row ChEBI-20 pool with a small random GIN."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch


pytestmark = [pytest.mark.ray_cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def gnn_checkpoint(tmp_path_factory):
    """A small random-init GIN in the released (pretrain-gnns) state-dict layout."""
    from retrieval.encoders import GNNEncoder

    torch.manual_seed(7)
    encoder = GNNEncoder("gin", num_layer=3, emb_dim=32)
    for bn in encoder.batch_norms:  # non-trivial running stats, as in a trained checkpoint
        bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("gnn") / "tiny_gin.pth"
    torch.save(encoder.state_dict(), path)
    return path


def test_index_build_job_on_netns_nodes(netns_cluster, ray_icma_bin, gnn_checkpoint, chebi20_pool_file, tmp_path):
    from ray_icma.jobs.embed import read_embeddings, read_manifest
    from retrieval.encoders import GNNEncoder
    from retrieval.indexes import FaissIndex

    out = tmp_path / "pool-index"
    job = netns_cluster.run(
        [ray_icma_bin, "index", "build", "--data", chebi20_pool_file, "--checkpoint", gnn_checkpoint, "--out", out,
         "--batch-size", "64", "--concurrency", "2", "--no-progress"],
        timeout=420,
    )
    assert job.status == "SUCCEEDED", job.logs[-4000:]
    assert "300 molecules embedded" in job.logs

    # Outputs: Parquet embeddings in input order, equal to a local encode; the index holds the valid ones.
    pool = pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str})
    ids, valid, vectors = read_embeddings(out)
    assert ids == pool["CID"].tolist()
    local, local_valid = GNNEncoder.from_pretrained(gnn_checkpoint).encode_smiles(pool["SMILES"].tolist())
    np.testing.assert_allclose(vectors, local, rtol=1e-4, atol=1e-5)
    assert (valid == local_valid).all()
    index = FaissIndex.load(out)
    assert len(index) == int(local_valid.sum()) == read_manifest(out)["n_valid"]

    # Every indexed molecule finds itself at rank 0 (cosine 1); a different id there must be an identical vector.
    queries = vectors[valid]
    hits = index.search(queries, k=1)
    np.testing.assert_allclose(hits.scores[:, 0], 1.0, atol=1e-4)
    valid_ids = np.array(ids)[valid]
    top_ids = np.array(index.ids)[hits.indices[:, 0]]
    for row in np.flatnonzero(top_ids != valid_ids):
        other = int(np.flatnonzero(valid_ids == top_ids[row])[0])
        np.testing.assert_allclose(queries[row], queries[other], atol=1e-5)

    # The encoder actors ran on the netns worker nodes (the head has no CPUs).
    nodes = {n.node_id: n.node_ip for n in netns_cluster.alive_nodes()}
    listed = netns_cluster.list_actors()
    # This job's actors only: the state API keeps dead actors of earlier jobs, some on a node a fault test
    # has since killed (no longer alive, so its IP is unknown here: CI saw None in the set once).
    ray_job_id = netns_cluster.client().get_job_info(job.job_id).job_id
    actors = [a for a in listed if "EmbedBatches" in (a.class_name or "") and a.node_id  # placed ones (a pool may leave one pending)
              and a.job_id == ray_job_id]
    assert actors, "no encoder actors recorded by the state API"
    actor_ips = {nodes.get(a.node_id) for a in actors}
    assert actor_ips <= {netns_cluster.node_ip(i) for i in range(1, netns_cluster.n_nodes + 1)}, actor_ips
