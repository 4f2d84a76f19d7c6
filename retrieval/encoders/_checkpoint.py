"""Reading Hu et al. / Mole-BERT state dicts: unwrap, detect the architecture, check strictly.

A wrong checkpoint must fail loudly: loading a GCN file into a GIN (or a GIN with another
width) silently would give meaningless embeddings and meaningless retrieval.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

GNN_TYPES = ("gin", "gcn", "gat", "graphsage")
_LAYER_KEY = re.compile(r"^gnns\.(\d+)\.")


class CheckpointMismatchError(ValueError):
    """The state dict does not fit the requested encoder (missing/unexpected keys or shapes)."""


def unwrap_state_dict(obj) -> dict:
    """Return the plain ``{name: tensor}`` dict of a checkpoint.

    Accepts a bare state dict (pretrain-gnns, Mole-BERT), ``{"state_dict": ...}`` /
    ``{"model_state_dict": ...}`` / ``{"model": ...}`` wrappers, and strips a ``module.``
    (DataParallel) or ``gnn.`` (``GNN_graphpred``) prefix; a graph-level head
    (``graph_pred_linear.*``) is dropped since the encoder stops at pooling.
    """
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    state = dict(obj)
    for prefix in ("module.", "gnn."):
        if state and all(k.startswith(prefix) or k.startswith("graph_pred_linear.") for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def detect_gnn_type(state: Mapping, path: str | Path | None = None) -> str | None:
    """Guess the architecture from parameter names (and, for GCN vs GraphSAGE, the file name).

    GIN has ``gnns.0.mlp.*``, GAT has ``gnns.0.att``; GCN and GraphSAGE have identical
    parameters (``linear`` + edge embeddings), so only a file name containing ``graphsage``/
    ``sage`` or ``gcn`` tells them apart. Returns None when undecidable.
    """
    keys = set(state)
    if any(k.startswith("gnns.0.mlp.") for k in keys):
        return "gin"
    if "gnns.0.att" in keys:
        return "gat"
    if "gnns.0.linear.weight" in keys:
        name = Path(path).name.lower() if path is not None else ""
        if "sage" in name:
            return "graphsage"
        if "gcn" in name:
            return "gcn"
    return None


def infer_dims(state: Mapping) -> tuple[int | None, int | None]:
    """``(num_layer, emb_dim)`` read from ``gnns.N.*`` keys and ``x_embedding1``; None if absent."""
    layers = {int(m.group(1)) for k in state if (m := _LAYER_KEY.match(k))}
    emb = state.get("x_embedding1.weight")
    return (max(layers) + 1 if layers else None, int(emb.shape[1]) if emb is not None else None)


def check_state_dict(model_state: Mapping, file_state: Mapping, *, gnn_type: str, path: str | Path | None) -> None:
    """Raise :class:`CheckpointMismatchError` listing every missing, unexpected and mis-shaped key."""
    missing = sorted(set(model_state) - set(file_state))
    unexpected = sorted(set(file_state) - set(model_state))
    shapes = sorted(
        f"{k}: file {tuple(file_state[k].shape)} vs model {tuple(model_state[k].shape)}"
        for k in set(model_state) & set(file_state)
        if tuple(file_state[k].shape) != tuple(model_state[k].shape)
    )
    if not (missing or unexpected or shapes):
        return
    looks_like = detect_gnn_type(file_state, path)
    n_layer, emb_dim = infer_dims(file_state)

    def _few(items: list[str]) -> str:
        return ", ".join(items[:8]) + (f" ... (+{len(items) - 8} more)" if len(items) > 8 else "")

    parts = [f"checkpoint {str(path) if path else '<state dict>'} does not fit a {gnn_type!r} encoder"]
    if missing:
        parts.append(f"missing keys: {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_few(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches: {_few(shapes)}")
    hint = f"the file looks like gnn_type={looks_like!r}" if looks_like else "its gnn_type could not be detected"
    parts.append(f"{hint} with num_layer={n_layer}, emb_dim={emb_dim}; pass matching gnn_type/num_layer/emb_dim")
    raise CheckpointMismatchError("; ".join(parts))
