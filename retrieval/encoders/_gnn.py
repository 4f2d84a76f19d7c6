"""Molecule graph encoder: pretrain-gnns ``GNN`` (+ mean pooling) with checkpoint loading.

ICMA retrieves molecules by the cosine similarity of Mole-BERT graph embeddings: a 5-layer,
300-dim GIN over Hu et al. atom/bond features, JK "last", mean-pooled over atoms. The module's
own parameter names equal the released state dicts (``x_embedding1``, ``x_embedding2``,
``gnns.{i}.*``, ``batch_norms.{i}.*``), so ``encoder.state_dict()`` is a loadable checkpoint.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from retrieval.encoders._checkpoint import (
    GNN_TYPES,
    CheckpointMismatchError,
    check_state_dict,
    detect_gnn_type,
    infer_dims,
    unwrap_state_dict,
)
from retrieval.encoders._convs import CONVS
from retrieval.featurize._graph import NUM_ATOM_TYPE, NUM_CHIRALITY_TAG, smiles_to_graphs

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "sum", "max")


def _resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class GNNEncoder(torch.nn.Module):
    """Hu et al. / Mole-BERT GNN producing one embedding per molecule.

    Args:
        gnn_type: ``"gin"`` (Mole-BERT), ``"gcn"``, ``"gat"`` or ``"graphsage"``.
        num_layer: message-passing layers (5 in every released checkpoint).
        emb_dim: hidden and output width (300).
        pooling: ``"mean"`` (ICMA/Mole-BERT), ``"sum"`` or ``"max"`` over atoms.
        drop_ratio: dropout between layers; only active in ``train()`` mode.

    The encoder is put in eval mode on creation: batch norm uses running statistics.
    """

    def __init__(
        self,
        gnn_type: str = "gin",
        num_layer: int = 5,
        emb_dim: int = 300,
        pooling: str = "mean",
        drop_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        if gnn_type not in GNN_TYPES:
            raise ValueError(f"gnn_type must be one of {GNN_TYPES}, got {gnn_type!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if num_layer < 2:
            raise ValueError(f"num_layer must be at least 2, got {num_layer}")
        self.gnn_type, self.num_layer, self.emb_dim = gnn_type, num_layer, emb_dim
        self.pooling, self.drop_ratio = pooling, drop_ratio
        self.x_embedding1 = torch.nn.Embedding(NUM_ATOM_TYPE, emb_dim)
        self.x_embedding2 = torch.nn.Embedding(NUM_CHIRALITY_TAG, emb_dim)
        torch.nn.init.xavier_uniform_(self.x_embedding1.weight.data)
        torch.nn.init.xavier_uniform_(self.x_embedding2.weight.data)
        self.gnns = torch.nn.ModuleList(CONVS[gnn_type](emb_dim) for _ in range(num_layer))
        self.batch_norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(emb_dim) for _ in range(num_layer))
        self.eval()

    # -- model -----------------------------------------------------------------------------
    def node_embeddings(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """Per-atom representations after the last layer (JK ``"last"``, no final ReLU)."""
        h = self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])
        for layer in range(self.num_layer):
            h = self.batch_norms[layer](self.gnns[layer](h, edge_index, edge_attr))
            if layer < self.num_layer - 1:
                h = F.relu(h)
            h = F.dropout(h, self.drop_ratio, training=self.training)
        return h

    def forward(self, data) -> torch.Tensor:
        """Graph embeddings [n_graphs, emb_dim] for a torch_geometric ``Batch``."""
        from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

        pool = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}[self.pooling]
        h = self.node_embeddings(data.x, data.edge_index, data.edge_attr)
        return pool(h, data.batch, size=data.num_graphs)

    # -- loading ---------------------------------------------------------------------------
    def load_checkpoint(self, state_or_path, *, path: str | Path | None = None) -> "GNNEncoder":
        """Load a state dict (or a ``.pth`` path) with strict key and shape checks.

        Raises:
            CheckpointMismatchError: listing missing/unexpected/mis-shaped keys and the
                architecture the file looks like.
        """
        if isinstance(state_or_path, (str, Path)):
            path = state_or_path
            state_or_path = read_checkpoint(path)
        state = unwrap_state_dict(state_or_path)
        check_state_dict(self.state_dict(), state, gnn_type=self.gnn_type, path=path)
        self.load_state_dict(state, strict=True)
        return self

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        gnn_type: str | None = None,
        device: str | torch.device = "cpu",
        *,
        num_layer: int | None = None,
        emb_dim: int | None = None,
        pooling: str = "mean",
    ) -> "GNNEncoder":
        """Build the encoder a checkpoint describes and load it.

        Args:
            path: a pretrain-gnns / Mole-BERT ``.pth`` state dict.
            gnn_type: architecture; detected from the keys when None (GCN vs GraphSAGE needs
                the file name or this argument, their parameters are identical).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
            num_layer, emb_dim: read from the file when None.
            pooling: graph pooling, ``"mean"`` as in ICMA.

        Raises:
            FileNotFoundError: no such file.
            CheckpointMismatchError: the file does not fit (see :meth:`load_checkpoint`) or its
                architecture cannot be detected.
        """
        path = Path(path)
        return cls.from_state_dict(
            read_checkpoint(path), gnn_type, device, path=path, num_layer=num_layer, emb_dim=emb_dim, pooling=pooling
        )

    @classmethod
    def from_state_dict(
        cls,
        state,
        gnn_type: str | None = None,
        device: str | torch.device = "cpu",
        *,
        path: str | Path | None = None,
        num_layer: int | None = None,
        emb_dim: int | None = None,
        pooling: str = "mean",
    ) -> "GNNEncoder":
        """Like :meth:`from_pretrained` for an in-memory state dict (``path`` only names it in errors
        and helps tell GCN from GraphSAGE)."""
        state = unwrap_state_dict(state)
        detected = detect_gnn_type(state, path)
        if gnn_type is None:
            if detected is None:
                raise CheckpointMismatchError(
                    f"cannot tell the architecture of {path or 'the state dict'}: its keys fit both 'gcn' and "
                    "'graphsage' (or no known layout); pass gnn_type=..."
                )
            gnn_type = detected
        file_layers, file_dim = infer_dims(state)
        encoder = cls(
            gnn_type=gnn_type,
            num_layer=num_layer or file_layers or 5,
            emb_dim=emb_dim or file_dim or 300,
            pooling=pooling,
        )
        encoder.load_checkpoint(state, path=path)
        return encoder.to(_resolve_device(device)).eval()

    # -- inference -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.x_embedding1.weight.device

    @torch.no_grad()
    def encode_graphs(self, graphs: Sequence, batch_size: int = 256) -> np.ndarray:
        """Embed featurized graphs (no ``None``) -> float32 [n, emb_dim]."""
        from torch_geometric.data import Batch

        out = np.zeros((len(graphs), self.emb_dim), dtype=np.float32)
        for start in range(0, len(graphs), batch_size):
            chunk = graphs[start : start + batch_size]
            batch = Batch.from_data_list(chunk, exclude_keys=["n_masked_atoms"]).to(self.device)
            out[start : start + len(chunk)] = self(batch).float().cpu().numpy()
        return out

    def encode_smiles(self, smiles: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Embed SMILES strings.

        Args:
            smiles: the molecules.
            batch_size: graphs per forward pass.

        Returns:
            ``(embeddings float32 [n, emb_dim], valid bool [n])``; rows RDKit cannot parse are
            zero vectors with ``valid=False`` (their count is logged, never raised).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        was_training = self.training
        self.eval()
        featurized = smiles_to_graphs(list(smiles))
        out = np.zeros((len(featurized.graphs), self.emb_dim), dtype=np.float32)
        positions = np.flatnonzero(featurized.valid)
        if len(positions):
            out[positions] = self.encode_graphs([featurized.graphs[i] for i in positions], batch_size)
        if featurized.n_invalid:
            logger.warning("%d of %d SMILES could not be featurized (zero vectors)", featurized.n_invalid, len(out))
        if featurized.n_masked_atoms:
            logger.info("%d dummy/unknown atoms ('*') read as the mask token", featurized.n_masked_atoms)
        self.train(was_training)
        return out, featurized.valid


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load`` a ``.pth`` safely (``weights_only=True``) onto the CPU, with clear errors.

    Raises:
        FileNotFoundError: no such file.
        CheckpointMismatchError: not a readable torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (a pretrain-gnns / Mole-BERT .pth state dict)")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise CheckpointMismatchError(f"cannot read {path} as a torch state dict: {exc}") from exc
