"""Central differences and the relative error that judges them.

Only central differences are used: (f(x+h) - f(x-h)) / 2h has error O(h^2) where the forward
difference has O(h) (CS231n, "Use the centered formula").
"""
from __future__ import annotations

import torch

# Step sizes: near the cube root of machine epsilon, which balances the O(h^2) truncation error of
# the central difference against its O(eps/h) round-off error.
DEFAULT_EPS = {torch.float64: 1e-6, torch.float32: 1e-3}

# A report fails when a tensor's worst relative error is above this: a correct double-precision
# gradient gives 1e-7 or better away from kinks; single precision cannot resolve better than ~1e-3.
FAILURE_THRESHOLD = {torch.float64: 1e-4, torch.float32: 1e-2}

SUPPORTED_DTYPES = tuple(DEFAULT_EPS)


def central_difference(f_plus: float, f_minus: float, step: float) -> float:
    """The derivative along the probe from the two perturbed evaluations."""
    return (f_plus - f_minus) / (2.0 * step)


def noise_floor(output_scale: float, step: float, dtype: torch.dtype) -> float:
    """The smallest derivative a central difference can resolve, divided by the failure threshold.

    Round-off in f(x+h) - f(x-h) is about eps_machine * sum|terms|, so the central difference
    carries noise of about eps_machine * scale / h. Two derivatives both below noise / threshold
    cannot be told apart, so they are compared absolutely against this floor rather than relatively:
    that is the guard that keeps 0/0 (a dead ReLU, an unused weight) from reading as an error of 1.
    """
    machine = torch.finfo(dtype).eps
    return max(10.0 * machine * output_scale / (step * FAILURE_THRESHOLD[dtype]),
               torch.finfo(dtype).tiny)


def relative_error(analytic: float, numeric: float, floor: float) -> float:
    """|a - n| / max(|a|, |n|, floor): CS231n's relative error with a guard against 0/0."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)
