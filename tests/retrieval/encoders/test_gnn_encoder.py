"""GNN encoder: the convolutions against an independent plain-torch re-implementation of
pretrain-gnns' layers (in the original torch_geometric 1.0 convention: messages gathered from
edge_index[1], summed into edge_index[0]), strict checkpoint loading, and encode_smiles."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from retrieval.encoders import GNN_TYPES, CheckpointMismatchError, GNNEncoder, detect_gnn_type
from retrieval.featurize import smiles_to_graph
from tests.conftest import require_shared

MOLECULES = ["CCO", "c1ccccc1C(=O)[O-].[Na+]", "C[C@H](N)C(=O)O", "F/C=C/F", "*CC#N", "[NH3]->[Cu+2]", "O"]


def _randomised(gnn_type: str, seed: int = 0) -> GNNEncoder:
    """A random encoder whose batch norms have non-trivial running statistics and affine terms."""
    torch.manual_seed(seed)
    encoder = GNNEncoder(gnn_type)
    for bn in encoder.batch_norms:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.3, 0.3)
    if gnn_type == "gat":
        for conv in encoder.gnns:
            conv.bias.data.uniform_(-0.1, 0.1)
    return encoder.eval()


def _reference_graph_embedding(encoder: GNNEncoder, smiles: str) -> torch.Tensor:
    sd = encoder.state_dict()
    g = smiles_to_graph(smiles)
    n, d = g.x.size(0), encoder.emb_dim
    loops = torch.arange(n)
    edge_index = torch.cat([g.edge_index, torch.stack([loops, loops])], dim=1)
    edge_attr = torch.cat([g.edge_attr, torch.tensor([[4, 0]] * n)], dim=0)
    target, source = edge_index[0], edge_index[1]  # torch_geometric 1.0: x_i = x[ei[0]], x_j = x[ei[1]]
    h = sd["x_embedding1.weight"][g.x[:, 0]] + sd["x_embedding2.weight"][g.x[:, 1]]
    for layer in range(encoder.num_layer):
        p = f"gnns.{layer}."
        e = sd[p + "edge_embedding1.weight"][edge_attr[:, 0]] + sd[p + "edge_embedding2.weight"][edge_attr[:, 1]]
        if encoder.gnn_type == "gin":
            agg = torch.zeros(n, d).index_add_(0, target, h[source] + e)
            out = F.linear(F.relu(F.linear(agg, sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"])), sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"])
        elif encoder.gnn_type == "gcn":
            hl = F.linear(h, sd[p + "linear.weight"], sd[p + "linear.bias"])
            deg = torch.bincount(target, minlength=n).float()
            norm = deg[target].rsqrt() * deg[source].rsqrt()
            out = torch.zeros(n, d).index_add_(0, target, norm[:, None] * (hl[source] + e))
        elif encoder.gnn_type == "graphsage":
            hl = F.linear(h, sd[p + "linear.weight"], sd[p + "linear.bias"])
            summed = torch.zeros(n, d).index_add_(0, target, hl[source] + e)
            out = F.normalize(summed / torch.bincount(target, minlength=n).float()[:, None], dim=-1)
        else:  # gat, 2 heads
            heads = 2
            hw = F.linear(h, sd[p + "weight_linear.weight"], sd[p + "weight_linear.bias"]).view(n, heads, d)
            xj = hw[source] + e.view(-1, heads, d)
            alpha = F.leaky_relu((torch.cat([hw[target], xj], dim=-1) * sd[p + "att"]).sum(-1), 0.2)
            weights = torch.zeros_like(alpha)
            for node in range(n):  # softmax over the edges arriving at each node
                mask = target == node
                weights[mask] = torch.softmax(alpha[mask], dim=0)
            out = torch.zeros(n, heads, d).index_add_(0, target, xj * weights[..., None]).mean(1) + sd[p + "bias"]
        b = f"batch_norms.{layer}."
        out = (out - sd[b + "running_mean"]) / torch.sqrt(sd[b + "running_var"] + 1e-5) * sd[b + "weight"] + sd[b + "bias"]
        h = F.relu(out) if layer < encoder.num_layer - 1 else out
    return h.mean(0)


@pytest.mark.parametrize("gnn_type", GNN_TYPES)
def test_layers_match_plain_torch_reference(gnn_type):
    encoder = _randomised(gnn_type)
    vectors, valid = encoder.encode_smiles(MOLECULES, batch_size=3)
    assert valid.all()
    expected = torch.stack([_reference_graph_embedding(encoder, s) for s in MOLECULES]).numpy()
    np.testing.assert_allclose(vectors, expected, rtol=1e-4, atol=1e-5)


def test_state_dict_layout_is_the_released_one():
    keys = set(GNNEncoder("gin").state_dict())
    assert {"x_embedding1.weight", "x_embedding2.weight", "gnns.4.mlp.2.bias", "gnns.0.edge_embedding1.weight",
            "batch_norms.4.running_var", "batch_norms.0.num_batches_tracked"} <= keys
    assert GNNEncoder("gin").state_dict()["x_embedding1.weight"].shape == (120, 300)
    assert GNNEncoder("gat").state_dict()["gnns.0.att"].shape == (1, 2, 600)


@pytest.mark.parametrize("gnn_type", ["gin", "gat"])
def test_roundtrip_and_auto_detection(tmp_path, gnn_type):
    encoder = _randomised(gnn_type, seed=3)
    path = tmp_path / "model.pth"
    torch.save(encoder.state_dict(), path)
    loaded = GNNEncoder.from_pretrained(path)
    assert loaded.gnn_type == gnn_type and not loaded.training
    a, _ = encoder.encode_smiles(MOLECULES)
    b, _ = loaded.encode_smiles(MOLECULES)
    np.testing.assert_array_equal(a, b)


def test_wrapped_and_prefixed_checkpoints_load(tmp_path):
    encoder = _randomised("gin", seed=4)
    wrapped = {"state_dict": {f"gnn.{k}": v for k, v in encoder.state_dict().items()}}
    wrapped["state_dict"]["graph_pred_linear.weight"] = torch.zeros(1, 300)
    torch.save(wrapped, tmp_path / "finetuned.pth")
    loaded = GNNEncoder.from_pretrained(tmp_path / "finetuned.pth")
    np.testing.assert_array_equal(loaded.encode_smiles(["CCO"])[0], encoder.encode_smiles(["CCO"])[0])


def test_gcn_and_graphsage_need_a_name_or_argument(tmp_path):
    state = GNNEncoder("gcn").state_dict()
    torch.save(state, tmp_path / "model.pth")
    with pytest.raises(CheckpointMismatchError, match="pass gnn_type"):
        GNNEncoder.from_pretrained(tmp_path / "model.pth")
    assert GNNEncoder.from_pretrained(tmp_path / "model.pth", gnn_type="graphsage").gnn_type == "graphsage"
    torch.save(state, tmp_path / "my_graphsage.pth")
    assert detect_gnn_type(state, tmp_path / "my_graphsage.pth") == "graphsage"
    assert detect_gnn_type(state, "gcn_contextpred.pth") == "gcn"


def test_mismatch_lists_keys_and_names_the_detected_type(tmp_path):
    torch.save(GNNEncoder("gat").state_dict(), tmp_path / "model.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        GNNEncoder.from_pretrained(tmp_path / "model.pth", gnn_type="gin")
    message = str(err.value)
    assert "missing keys: gnns.0.mlp.0.bias" in message
    assert "unexpected keys: gnns.0.att" in message
    assert "looks like gnn_type='gat'" in message


def test_shape_mismatch_is_reported():
    small = GNNEncoder("gin", emb_dim=64).state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        GNNEncoder("gin").load_checkpoint(small)
    assert "shape mismatches: batch_norms.0.bias: file (64,) vs model (300,)" in str(err.value)
    assert "emb_dim=64" in str(err.value) and "missing keys" not in str(err.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        GNNEncoder.from_pretrained(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="cannot read"):
        GNNEncoder.from_pretrained(tmp_path / "junk.pth")


def test_encode_smiles_invalid_rows_and_batch_independence(chebi20_pool_file):
    smiles = pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].tolist()[:40] + ["C1CC", ""]
    encoder = _randomised("gin", seed=1)
    big, valid = encoder.encode_smiles(smiles, batch_size=256)
    small, valid_small = encoder.encode_smiles(smiles, batch_size=7)
    assert big.dtype == np.float32 and big.shape == (42, 300)
    assert valid.tolist() == [True] * 40 + [False, False] and (valid == valid_small).all()
    assert not big[40:].any() and np.isfinite(big).all()
    np.testing.assert_allclose(big, small, rtol=1e-5, atol=1e-6)  # eval-mode batch norm: rows independent
    again, _ = encoder.encode_smiles(smiles)
    np.testing.assert_array_equal(big, again)


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, gnn_type",
    [("gcn_supervised_contextpred", "gcn"), ("gat_supervised_contextpred", "gat"),
     ("graphsage_supervised_contextpred", "graphsage"), ("gcn_contextpred", "gcn")],
)
def test_released_checkpoints_load(chebi20_pool_file, name, gnn_type):
    path = require_shared("weights", "pretrain-gnns", f"{name}.pth")
    encoder = GNNEncoder.from_pretrained(path)
    assert encoder.gnn_type == gnn_type and encoder.num_layer == 5 and encoder.emb_dim == 300
    smiles = pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].tolist()[:64]
    vectors, valid = encoder.encode_smiles(smiles)
    assert valid.all() and np.isfinite(vectors).all()
    assert np.linalg.norm(vectors, axis=1).min() > 0
    with pytest.raises(CheckpointMismatchError):
        GNNEncoder.from_pretrained(path, gnn_type="gin")
