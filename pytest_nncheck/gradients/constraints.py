"""Inputs that are only valid on a constraint set, and the projections that keep probes on it.

A Cholesky layer is right for symmetric matrices and Sinkhorn for balanced marginals; perturbing
such an input along an arbitrary direction leaves the set, and the layer's gradient (correctly
symmetrised, or with the constraint built in) no longer matches the numeric derivative. A
projection maps any direction to one that stays on the set; ``constraints={"input[0]": symmetric}``
makes every probe of that tensor a projected direction.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from ..errors import NNCheckError

Projection = Callable[[torch.Tensor], torch.Tensor]


def symmetric(direction: torch.Tensor) -> torch.Tensor:
    """Directions that keep a (batch of) square matrices symmetric."""
    return (direction + direction.transpose(-2, -1)) / 2


def zero_sum(direction: torch.Tensor) -> torch.Tensor:
    """Directions that keep every row's sum (a probability vector, a marginal) unchanged."""
    return direction - direction.mean(dim=-1, keepdim=True)


def _looks_symmetric(tensor: torch.Tensor) -> bool:
    return tensor.dim() >= 2 and tensor.shape[-1] == tensor.shape[-2] > 1 and bool(
        torch.allclose(tensor, tensor.transpose(-2, -1)))


def _rows_sum_to_one(tensor: torch.Tensor) -> bool:
    return tensor.shape[-1] > 1 and bool(torch.allclose(tensor.sum(-1), torch.ones(())
                                                        .to(tensor)))


# Constraint sets recognised from the input's own values, to explain a failure that vanishes
# along directions that stay on them.
RECOGNISED: Tuple[Tuple[str, Callable[[torch.Tensor], bool], Projection], ...] = (
    ("symmetric", _looks_symmetric, symmetric),
    ("zero_sum", _rows_sum_to_one, zero_sum),
)


def recognised(tensor: torch.Tensor) -> List[Tuple[str, Projection]]:
    """The constraint sets this input's values lie on."""
    with torch.no_grad():
        return [(name, projection) for name, test, projection in RECOGNISED if test(tensor)]


def resolve(constraints: Optional[Mapping[Any, Projection]], names: Sequence[str]) -> Dict[int, Projection]:
    """``{position of checked tensor: projection}`` from keys given as names or input positions."""
    resolved: Dict[int, Projection] = {}
    for key, projection in (constraints or {}).items():
        name = f"input[{key}]" if isinstance(key, int) else str(key)
        if name not in names:
            raise NNCheckError(f"constraints names {key!r}, which is not a checked tensor; use one "
                               f"of {', '.join(names)}")
        if not callable(projection):
            raise NNCheckError(f"constraints[{key!r}] must be a projection of directions, e.g. "
                               f"pytest_nncheck.symmetric, got {type(projection).__name__}")
        resolved[names.index(name)] = projection
    return resolved
