"""torchsort: soft ranking and sorting by isotonic regression, with a hand-written backward.

Ties are where the isotonic regression's blocks merge: the pooled values' derivative jumps there.
"""
from __future__ import annotations

from typing import List

import torch

from .case import Case, seeded


def _tied() -> torch.Tensor:
    values = seeded(3, 6, seed=30, requires_grad=False)
    values[:, 1] = values[:, 0]  # two equal scores per row
    return values.requires_grad_()


def cases() -> List[Case]:
    import torchsort

    table = [
        ("torchsort.SoftRank l2", lambda x: torchsort.soft_rank(x, "l2", 1.0), lambda: seeded(3, 6, seed=31)),
        ("torchsort.SoftRank kl", lambda x: torchsort.soft_rank(x, "kl", 1.0), lambda: seeded(3, 6, seed=32)),
        ("torchsort.SoftSort l2", lambda x: torchsort.soft_sort(x, "l2", 0.5), lambda: seeded(3, 6, seed=33)),
        ("torchsort.SoftSort kl", lambda x: torchsort.soft_sort(x, "kl", 0.5), lambda: seeded(3, 6, seed=34)),
        ("torchsort.SoftRank l2 at ties", lambda x: torchsort.soft_rank(x, "l2", 0.1), _tied),
        ("torchsort.SoftSort l2 at ties", lambda x: torchsort.soft_sort(x, "l2", 0.1), _tied),
    ]
    return [Case(name, "torchsort", lambda fn=fn, make=make: (fn, make())) for name, fn, make in table]
