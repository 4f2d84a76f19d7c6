"""Graph convolutions of pretrain-gnns ``chem/model.py`` (Hu et al. 2020; reused by Mole-BERT).

They are not torch_geometric's built-in layers: each adds self loops carrying bond type 4,
embeds every edge as ``edge_embedding1[bond type] + edge_embedding2[bond direction]`` and adds
that to the neighbour's message. Parameter names match the original so their state dicts load
unchanged. The original targets torch_geometric 1.0 (messages gathered from ``edge_index[1]``
and summed into ``edge_index[0]``); here the modern convention is used (gather from
``edge_index[0]``, aggregate into ``edge_index[1]``), which gives the same result because
molecule graphs store every bond in both directions with the same features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import softmax

from retrieval.featurize._graph import NUM_BOND_DIRECTION, NUM_BOND_TYPE, SELF_LOOP_BOND_INDEX


def _with_self_loops(x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor):
    """Append one self loop per node (bond type 4, direction 0), as the original does."""
    n = x.size(0)
    loops = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    loop_attr = torch.zeros((n, 2), device=edge_attr.device, dtype=edge_attr.dtype)
    loop_attr[:, 0] = SELF_LOOP_BOND_INDEX
    return edge_index, torch.cat([edge_attr, loop_attr], dim=0)


class _EdgeEmbedding(MessagePassing):
    """Shared part: the two bond embedding tables (names as in the original)."""

    def __init__(self, emb_dim: int, aggr: str, edge_dim: int | None = None) -> None:
        super().__init__(aggr=aggr, node_dim=0)
        edge_dim = edge_dim or emb_dim
        self.edge_embedding1 = torch.nn.Embedding(NUM_BOND_TYPE, edge_dim)
        self.edge_embedding2 = torch.nn.Embedding(NUM_BOND_DIRECTION, edge_dim)
        torch.nn.init.xavier_uniform_(self.edge_embedding1.weight.data)
        torch.nn.init.xavier_uniform_(self.edge_embedding2.weight.data)

    def _embed_edges(self, x, edge_index, edge_attr):
        edge_index, edge_attr = _with_self_loops(x, edge_index, edge_attr)
        return edge_index, self.edge_embedding1(edge_attr[:, 0]) + self.edge_embedding2(edge_attr[:, 1])


class GINConv(_EdgeEmbedding):
    """GIN with edge features: ``mlp(sum_j (x_j + e_ij))``."""

    def __init__(self, emb_dim: int, aggr: str = "add") -> None:
        super().__init__(emb_dim, aggr)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(emb_dim, 2 * emb_dim), torch.nn.ReLU(), torch.nn.Linear(2 * emb_dim, emb_dim)
        )

    def forward(self, x, edge_index, edge_attr):
        edge_index, edge_emb = self._embed_edges(x, edge_index, edge_attr)
        return self.mlp(self.propagate(edge_index, x=x, edge_attr=edge_emb))

    def message(self, x_j, edge_attr):
        return x_j + edge_attr


class GCNConv(_EdgeEmbedding):
    """GCN with edge features and symmetric degree normalisation (degrees include self loops)."""

    def __init__(self, emb_dim: int, aggr: str = "add") -> None:
        super().__init__(emb_dim, aggr)
        self.emb_dim = emb_dim
        self.linear = torch.nn.Linear(emb_dim, emb_dim)

    @staticmethod
    def norm(edge_index, num_nodes, dtype):
        row, col = edge_index
        weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
        deg = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device).scatter_add_(0, row, weight)
        inv_sqrt = deg.pow(-0.5)
        inv_sqrt[inv_sqrt == float("inf")] = 0
        return inv_sqrt[row] * weight * inv_sqrt[col]

    def forward(self, x, edge_index, edge_attr):
        edge_index, edge_emb = self._embed_edges(x, edge_index, edge_attr)
        norm = self.norm(edge_index, x.size(0), x.dtype)
        return self.propagate(edge_index, x=self.linear(x), edge_attr=edge_emb, norm=norm)

    def message(self, x_j, edge_attr, norm):
        return norm.view(-1, 1) * (x_j + edge_attr)


class GATConv(_EdgeEmbedding):
    """GAT (2 heads, averaged) with edge features added to the neighbour before attention."""

    def __init__(self, emb_dim: int, heads: int = 2, negative_slope: float = 0.2, aggr: str = "add") -> None:
        super().__init__(emb_dim, aggr, edge_dim=heads * emb_dim)
        self.emb_dim = emb_dim
        self.heads = heads
        self.negative_slope = negative_slope
        self.weight_linear = torch.nn.Linear(emb_dim, heads * emb_dim)
        self.att = torch.nn.Parameter(torch.empty(1, heads, 2 * emb_dim))
        self.bias = torch.nn.Parameter(torch.empty(emb_dim))
        glorot(self.att)
        zeros(self.bias)

    def forward(self, x, edge_index, edge_attr):
        edge_index, edge_emb = self._embed_edges(x, edge_index, edge_attr)
        x = self.weight_linear(x).view(-1, self.heads, self.emb_dim)
        out = self.propagate(edge_index, x=x, edge_attr=edge_emb)
        return out.mean(dim=1) + self.bias

    def message(self, x_i, x_j, edge_attr, index, ptr, size_i):
        x_j = x_j + edge_attr.view(-1, self.heads, self.emb_dim)
        alpha = (torch.cat([x_i, x_j], dim=-1) * self.att).sum(dim=-1)
        alpha = softmax(F.leaky_relu(alpha, self.negative_slope), index, ptr, size_i)
        return x_j * alpha.view(-1, self.heads, 1)


class GraphSAGEConv(_EdgeEmbedding):
    """GraphSAGE-mean with edge features, L2-normalised output."""

    def __init__(self, emb_dim: int, aggr: str = "mean") -> None:
        super().__init__(emb_dim, aggr)
        self.emb_dim = emb_dim
        self.linear = torch.nn.Linear(emb_dim, emb_dim)

    def forward(self, x, edge_index, edge_attr):
        edge_index, edge_emb = self._embed_edges(x, edge_index, edge_attr)
        out = self.propagate(edge_index, x=self.linear(x), edge_attr=edge_emb)
        return F.normalize(out, p=2, dim=-1)

    def message(self, x_j, edge_attr):
        return x_j + edge_attr


CONVS = {"gin": GINConv, "gcn": GCNConv, "gat": GATConv, "graphsage": GraphSAGEConv}
