"""Central and one-sided differences, and the relative error that judges them.

Central differences come first: (f(x+h) - f(x-h)) / 2h has error O(h^2) where the forward
difference has O(h) (CS231n, "Use the centered formula"). One-sided differences are used only to
confirm a disagreement at a kink, and then extrapolated over two step sizes (Richardson), which
cancels their O(h) term: (4 f(x+h/2) - 3 f(x) - f(x+h)) / h has error O(h^2) as well.
"""
from __future__ import annotations

import torch

# Step sizes: near the cube root of machine epsilon, which balances the O(h^2) truncation error of
# the central difference against its O(eps/h) round-off error.
DEFAULT_EPS = {torch.float64: 1e-6, torch.float32: 1e-3}

# A report fails when a tensor's worst relative error is above this: a correct double-precision
# gradient gives 1e-7 or better away from kinks; single precision cannot resolve better than ~1e-3.
FAILURE_THRESHOLD = {torch.float64: 1e-4, torch.float32: 1e-2}

# The relative floor: a difference between analytic and numeric derivatives smaller than this
# fraction of the tensor's own gradient scale (its largest analytic entry for a coordinate, the
# norm of the projected terms for a direction) is treated as noise. Iterative solvers (bisection,
# Sinkhorn, interior point) leave ~1e-8 of noise on derivatives that are exactly zero next to
# derivatives of size 1; 1e-3 of the scale keeps that noise at 1e-5 relative (a pass), while a
# 10% bug on an entry a thousand times smaller than the largest is still an error of 0.1
# (tests/gradients/test_real_code_causes.py holds both cases).
GRADIENT_RELATIVE_FLOOR = 1e-3

SUPPORTED_DTYPES = tuple(DEFAULT_EPS)


def central_difference(f_plus: float, f_minus: float, step: float) -> float:
    """The derivative along the probe from the two perturbed evaluations."""
    return (f_plus - f_minus) / (2.0 * step)


def one_sided_extrapolated(f_at: float, f_half: float, f_full: float, step: float) -> float:
    """Richardson-extrapolated one-sided derivative from f(x), f(x + s/2) and f(x + s).

    ``step`` is signed: a negative step gives the derivative from the left. The two first-order
    differences D(s) and D(s/2) share their leading O(s) error, so 2 D(s/2) - D(s) cancels it.
    """
    return (4.0 * f_half - 3.0 * f_at - f_full) / step


def resolvable(output_scale: float, step: float, dtype: torch.dtype) -> float:
    """The smallest derivative a central difference can tell from round-off.

    Round-off in f(x+h) - f(x-h) is about eps_machine * sum|terms|, so the central difference
    carries noise of about eps_machine * scale / h; ten times that is resolvable.
    """
    return max(10.0 * torch.finfo(dtype).eps * output_scale / step, torch.finfo(dtype).tiny)


def noise_floor(output_scale: float, step: float, dtype: torch.dtype) -> float:
    """The resolvable derivative divided by the failure threshold: the guard against 0/0.

    Two derivatives both below it cannot be told apart relatively, so they are compared
    absolutely against it: a dead ReLU or an unused weight never reads as an error of 1.
    """
    return resolvable(output_scale, step, dtype) / FAILURE_THRESHOLD[dtype]


def relative_error(analytic: float, numeric: float, floor: float) -> float:
    """|a - n| / max(|a|, |n|, floor): CS231n's relative error with a guard against 0/0."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)
