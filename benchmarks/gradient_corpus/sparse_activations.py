"""entmax and sparsemax: sparse softmax alternatives, closed form and bisection, and their losses.

Inputs sit where these maps are used (rows of attention or classifier scores) and, for the closed
forms, also *at* the kink: one score exactly on the support's threshold, where the output entry is
0 and its derivative jumps.
"""
from __future__ import annotations

from typing import Callable, List

import torch

from .case import CORRECT, Case, seeded


def _on_threshold(mapping: Callable, threshold_of: Callable) -> Callable[[], torch.Tensor]:
    """Scores where, in each row, one entry outside the support sits exactly on the threshold."""
    def build() -> torch.Tensor:
        scores = seeded(3, 6, seed=1, scale=2.0, requires_grad=False)
        output = mapping(scores)
        for row in range(scores.shape[0]):
            outside = (output[row] == 0).nonzero().flatten()
            if len(outside):
                scores[row, outside[0]] = threshold_of(scores[row], output[row])
        return scores.requires_grad_()
    return build


def _sparsemax_threshold(scores: torch.Tensor, output: torch.Tensor) -> float:
    support = output > 0  # p = z - tau on the support
    return float((scores[support] - output[support])[0])


def _entmax15_threshold(scores: torch.Tensor, output: torch.Tensor) -> float:
    support = output > 0  # p = (z/2 - tau)^2 on the support; the boundary is z = 2 tau
    tau = (scores[support] / 2 - output[support].sqrt())[0]
    return float(2 * tau)


def _targets() -> torch.Tensor:
    return torch.tensor([0, 3, 5, 1])


def cases() -> List[Case]:
    import entmax
    import sparsemax

    rows = lambda: seeded(4, 7, seed=2, scale=1.5)  # noqa: E731 - one line per table entry
    on_sparsemax_kink = _on_threshold(lambda x: entmax.sparsemax(x, dim=-1), _sparsemax_threshold)
    on_entmax_kink = _on_threshold(lambda x: entmax.entmax15(x, dim=-1), _entmax15_threshold)
    alpha = lambda: torch.full((4, 1), 1.3, dtype=torch.float64, requires_grad=True)  # noqa: E731
    table = [
        ("entmax.SparsemaxFunction", lambda: (lambda x: entmax.sparsemax(x, dim=-1), rows())),
        ("entmax.SparsemaxFunction dim=1 of 3-D", lambda: (
            lambda x: entmax.sparsemax(x, dim=1), seeded(2, 5, 3, seed=3, scale=1.5))),
        ("entmax.SparsemaxFunction at threshold", lambda: (
            lambda x: entmax.sparsemax(x, dim=-1), on_sparsemax_kink())),
        ("entmax.SparsemaxFunction top-k", lambda: (
            lambda x: entmax.sparsemax(x, dim=-1, k=3), rows())),
        ("entmax.Entmax15Function", lambda: (lambda x: entmax.entmax15(x, dim=-1), rows())),
        ("entmax.Entmax15Function at threshold", lambda: (
            lambda x: entmax.entmax15(x, dim=-1), on_entmax_kink())),
        ("entmax.EntmaxBisectFunction alpha=1.5", lambda: (
            lambda x: entmax.entmax_bisect(x, alpha=1.5, dim=-1), rows())),
        ("entmax.EntmaxBisectFunction learned alpha", lambda: (
            lambda x, a: entmax.entmax_bisect(x, alpha=a, dim=-1), rows(), alpha())),
        ("entmax.SparsemaxBisectFunction", lambda: (
            lambda x: entmax.sparsemax_bisect(x, dim=-1), rows())),
        ("entmax.NormmaxBisectFunction", lambda: (
            lambda x: entmax.normmax_bisect(x, alpha=2, dim=-1), rows())),
        ("entmax.BudgetBisectFunction", lambda: (
            lambda x: entmax.budget_bisect(x, budget=2, dim=-1), rows())),
        ("entmax.SparsemaxLossFunction", lambda: (
            lambda x: entmax.sparsemax_loss(x, _targets()), rows())),
        ("entmax.Entmax15LossFunction", lambda: (
            lambda x: entmax.entmax15_loss(x, _targets()), rows())),
        ("entmax.SparsemaxBisectLossFunction", lambda: (
            lambda x: entmax.sparsemax_bisect_loss(x, _targets()), rows())),
        ("entmax.EntmaxBisectLossFunction", lambda: (
            lambda x: entmax.entmax_bisect_loss(x, _targets(), alpha=1.5), rows())),
        ("entmax.NormmaxBisectLossFunction", lambda: (
            lambda x: entmax.normmax_bisect_loss(x, _targets(), alpha=2), rows())),
        ("sparsemax.SparsemaxFunction", lambda: (sparsemax.Sparsemax(dim=-1), rows())),
        ("sparsemax.SparsemaxFunction 3-D", lambda: (
            sparsemax.Sparsemax(dim=-1), seeded(2, 3, 5, seed=4, scale=1.5))),
    ]
    return [Case(name, "sparsemax" if name.startswith("sparsemax.") else "entmax", build, CORRECT)
            for name, build in table]
