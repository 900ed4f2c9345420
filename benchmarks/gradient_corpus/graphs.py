"""PyTorch Geometric: graph convolutions, norms and pooling on a small fixed graph, and its three
hand-written backwards (sparse cross-entropy, the EdgeIndex sparse matmul, the reversible GNN's
invertible function, whose backward rebuilds its freed input and writes parameter gradients).
"""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from .case import LAYER, Case, seeded, seeded_module

NODES = 6


def _edges() -> torch.Tensor:
    """A ring of six nodes with two chords, both directions."""
    pairs = [(i, (i + 1) % NODES) for i in range(NODES)] + [(0, 3), (1, 4)]
    forward = torch.tensor(pairs).t()
    return torch.cat([forward, forward.flip(0)], dim=1)


def _features(seed: int = 80, width: int = 4) -> torch.Tensor:
    return seeded(NODES, width, seed=seed)


def _sparse_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    from torch_geometric.utils.cross_entropy import sparse_cross_entropy

    labels = torch.tensor([[0, 1, 2, 3], [2, 0, 4, 1]])  # (row, class) pairs of positive labels
    return sparse_cross_entropy(logits, labels)


def _edge_index_matmul(other: torch.Tensor) -> torch.Tensor:
    from torch_geometric import EdgeIndex

    index = EdgeIndex(_edges(), sparse_size=(NODES, NODES)).sort_by("row")[0]
    return index.matmul(other, input_value=torch.ones(index.shape[1], dtype=other.dtype))


class _Graph(nn.Module):
    """A graph layer called on the fixed graph, as ``layer(x, edge_index)``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x, _edges())


class _Pooled(nn.Module):
    """A graph-level readout of two graphs of three nodes."""

    def __init__(self, readout) -> None:
        super().__init__()
        self.readout = readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(x, torch.tensor([0, 0, 0, 1, 1, 1]))


def _reversible():
    from torch_geometric.nn import GCNConv, GroupAddRev, LayerNorm

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm, self.conv = LayerNorm(2), GCNConv(2, 2)

        def forward(self, x, edge_index):
            return self.conv(self.norm(x).relu(), edge_index)

    return _Graph(GroupAddRev(Block(), num_groups=2))


def cases() -> List[Case]:
    from torch_geometric import nn as gnn

    functions = [
        Case("torch_geometric.SparseCrossEntropy", "torch-geometric",
             lambda: (_sparse_cross_entropy, seeded(4, 5, seed=81))),
        Case("torch_geometric._TorchSPMM (EdgeIndex.matmul)", "torch-geometric",
             lambda: (_edge_index_matmul, _features(82))),
        Case("torch_geometric.InvertibleFunction (GroupAddRev)", "torch-geometric",
             lambda: (seeded_module(_reversible, seed=83), _features(84)), kind=LAYER),
    ]
    table = [
        ("GCNConv", lambda: _Graph(gnn.GCNConv(4, 3))),
        ("GATConv", lambda: _Graph(gnn.GATConv(4, 3, heads=2))),
        ("GATv2Conv", lambda: _Graph(gnn.GATv2Conv(4, 3, heads=2))),
        ("SAGEConv mean", lambda: _Graph(gnn.SAGEConv(4, 3))),
        ("SAGEConv max", lambda: _Graph(gnn.SAGEConv(4, 3, aggr="max"))),
        ("GINConv", lambda: _Graph(gnn.GINConv(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
                                               train_eps=True))),
        ("GraphConv", lambda: _Graph(gnn.GraphConv(4, 3))),
        ("TransformerConv", lambda: _Graph(gnn.TransformerConv(4, 3, heads=2))),
        ("ChebConv", lambda: _Graph(gnn.ChebConv(4, 3, K=2))),
        ("EdgeConv", lambda: _Graph(gnn.EdgeConv(nn.Sequential(nn.Linear(8, 3), nn.Tanh())))),
        ("GCN2Conv", lambda: _GCN2()),
        ("GraphNorm", lambda: gnn.GraphNorm(4)),
        ("global_max_pool", lambda: _Pooled(gnn.global_max_pool)),
        ("global_mean_pool", lambda: _Pooled(gnn.global_mean_pool)),
    ]
    layers = [Case(f"torch_geometric.{name}", "torch-geometric",
                   lambda factory=factory, seed=seed: (seeded_module(factory, seed=seed), _features(seed)),
                   kind=LAYER)
              for seed, (name, factory) in enumerate(table)]
    return functions + layers


class _GCN2(nn.Module):
    """GCNII's layer, which also reads the initial features x0."""

    def __init__(self) -> None:
        super().__init__()
        from torch_geometric.nn import GCN2Conv

        self.conv = GCN2Conv(4, alpha=0.1, theta=0.5, layer=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, x.tanh(), _edges())
