"""How many probes check_gradients needs: detection rate and cost per (coords, directions).

    python benchmarks/probe_defaults.py [--trials N]

Bugs (100 trials each by default): one entry of a weight gradient off by 10% or by 1%, at a
random position in weights of 20, 400 and 10 000 entries, and a dense 1% scale error on every
entry. A bug is detected when
check_gradients fails. The defaults in pytest_nncheck/gradients/probes.py come from this table.
"""
from __future__ import annotations

import argparse
import random
import time

import torch
from torch import nn

from pytest_nncheck import check_gradients


def _layer(out_features: int, in_features: int, position: int, factor: float, dense: bool):
    class WrongWeightGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight):
            ctx.save_for_backward(x, weight)
            return torch.tanh(x @ weight.t())

        @staticmethod
        def backward(ctx, grad):
            x, weight = ctx.saved_tensors
            y = torch.tanh(x @ weight.t())
            grad = grad * (1 - y * y)
            grad_weight = grad.t() @ x
            if dense:
                grad_weight = grad_weight * factor
            else:
                grad_weight.view(-1)[position] *= factor
            return grad @ weight, grad_weight

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features ** 0.5)

        def forward(self, x):
            return WrongWeightGradient.apply(x, self.weight)

    return Layer()


BUGS = [
    ("1 entry +10%, 4x5 weight", (4, 5), 1.10, False),
    ("1 entry +10%, 20x20 weight", (20, 20), 1.10, False),
    ("1 entry +10%, 100x100 weight", (100, 100), 1.10, False),
    ("1 entry +1%, 100x100 weight", (100, 100), 1.01, False),
    ("dense +1%, 100x100 weight", (100, 100), 1.01, True),
]
GRID = [(0, 1), (0, 2), (4, 0), (4, 1), (4, 2), (8, 0), (8, 2), (16, 2), (8, 4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    print(f"{'coords,dirs':>11} " + " ".join(f"{name:>29}" for name, *_ in BUGS) + "  ms/check")
    for coords, directions in GRID:
        cells, seconds, checks = [], 0.0, 0
        for _, (out_features, in_features), factor, dense in BUGS:
            caught = 0
            for trial in range(args.trials):
                # The bug's position must not come from the stream the probes are drawn from.
                position = random.Random(10_000 + trial).randrange(out_features * in_features)
                torch.manual_seed(trial)
                layer = _layer(out_features, in_features, position, factor, dense)
                x = torch.randn(3, in_features, dtype=torch.float64)
                start = time.perf_counter()
                report = check_gradients(layer, x, coords=coords, directions=directions,
                                         seed=trial)
                seconds += time.perf_counter() - start
                checks += 1
                caught += report.failed
            cells.append(f"{caught}/{args.trials}")
        print(f"{coords:>5},{directions:<5} " + " ".join(f"{c:>29}" for c in cells)
              + f"  {seconds / checks * 1000:8.2f}")


if __name__ == "__main__":
    main()
