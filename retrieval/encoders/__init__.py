"""Pretrained molecule graph encoders (Hu et al. 2020 / Mole-BERT GNNs) for embedding retrieval."""
from retrieval.encoders._checkpoint import (
    GNN_TYPES,
    CheckpointMismatchError,
    detect_gnn_type,
    infer_dims,
    unwrap_state_dict,
)
from retrieval.encoders._gnn import POOLINGS, GNNEncoder, read_checkpoint

__all__ = [
    "GNN_TYPES",
    "POOLINGS",
    "CheckpointMismatchError",
    "GNNEncoder",
    "detect_gnn_type",
    "infer_dims",
    "read_checkpoint",
    "unwrap_state_dict",
]
