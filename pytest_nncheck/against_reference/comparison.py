"""The verdict for one tensor: fn's error against float64 next to the reference's own round-off.

A fused or low-precision kernel cannot match float64; what it must not do is stray further from
it than the straightforward implementation run in the same precision does. The bound is
FlashAttention's: fn's largest error at most ``k`` times the low-precision reference's, plus a
floor: a fraction of the tensor's largest value below which no difference is called wrong.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from ..reports import ReferenceEntry

# FlashAttention's tests pass a kernel whose largest error against the float32 reference is at most
# twice that of the same reference computed in the kernel's precision (Dao et al.,
# tests/test_flash_attn.py); Liger-Kernel's and xformers' helpers make the same kind of comparison.
# benchmarks/reference.py (10 seeds per case): k = 1.5 and 2 catch every bug with no false alarm,
# k = 3 misses the 1.6% cross-entropy scale bug in bfloat16.
DEFAULT_K = 2.0

# Errors below this fraction of a tensor's largest |float64| value are never called wrong, by fn's
# precision. In bfloat16 and float16: half a machine epsilon, one rounding of the largest element,
# for tensors the low-precision reference happens to get (almost) exact while fn rounds otherwise.
# In float32 fn and reference compute in the same precision and differ by the order of their sums
# (about sqrt(n) roundings for n terms; 1e-5 covers reductions of 10^4 terms, and is
# torch.testing's float32 atol). FlashAttention adds 2 * |out + 0.3 - 0.3 - out| instead, which
# does not scale with the tensor and misses the 1.6% scale bug in bfloat16 gradients of order 1e-4.
# benchmarks/reference.py sweeps these values: without a floor, 22 of 50 correct float32 checks
# fail (the scalar cross-entropy loss; a row-by-row float32 sum against torch's); at 2x the
# defaults, bfloat16 misses 5 of 50 bugs. In float64 the reference run is the truth itself and the
# floor alone bounds fn; 1e-12 (about 4500 epsilons) is not benchmarked.
ROUND_OFF_FLOOR = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11, torch.float32: 1e-5,
                   torch.float64: 1e-12}


def default_floor(precision: torch.dtype) -> float:
    """The floor for fn's precision; half a machine epsilon for dtypes not in the table."""
    return ROUND_OFF_FLOOR.get(precision, torch.finfo(precision).eps / 2)


def largest_difference(value: torch.Tensor, truth: torch.Tensor) -> Tuple[float, Optional[int]]:
    """The largest |value - truth| and its flat index; equal infinities and NaN pairs agree.

    A NaN or infinity where float64 has none (or the reverse) is an infinite error.
    """
    value = value.detach().to(torch.float64)
    agree = (value == truth) | (torch.isnan(value) & torch.isnan(truth))
    difference = torch.where(agree, torch.zeros_like(truth), (value - truth).abs())
    difference = difference.masked_fill(torch.isnan(difference), math.inf)
    if difference.numel() == 0:
        return 0.0, None
    index = int(difference.reshape(-1).argmax())
    return float(difference.reshape(-1)[index]), index


def _scale(truth: torch.Tensor) -> float:
    """The largest finite |value|: what round-off in this tensor is relative to."""
    if truth.numel() == 0:
        return 0.0
    return float(torch.where(torch.isfinite(truth), truth.abs(), torch.zeros_like(truth)).max())


def _element(name: str, shape: torch.Size, index: Optional[int]) -> str:
    if index is None:
        return "-"
    if not shape:
        return name
    position = []
    for size in reversed(shape):
        position.append(index % size)
        index //= size
    return f"{name}[{', '.join(map(str, reversed(position)))}]"


def compare(name: str, value: torch.Tensor, truth: torch.Tensor, reference: torch.Tensor,
            k: float, floor: float) -> ReferenceEntry:
    """fn's ``value`` and the low-precision ``reference`` against float64's ``truth``.

    ``name`` is the tensor's (``output[1]``, ``weight.grad``); the worst element is named from it.
    """
    truth = truth.detach().to(torch.float64)
    error, index = largest_difference(value, truth)
    reference_error, _ = largest_difference(reference, truth)
    allowed = k * reference_error + floor * _scale(truth)
    if not math.isfinite(reference_error):
        verdict = "inconclusive"
    else:
        verdict = "ok" if error <= allowed else "wrong"
    ratio = error / reference_error if reference_error else (math.inf if error else 0.0)
    flat_value, flat_truth = value.detach().reshape(-1), truth.reshape(-1)
    return ReferenceEntry(
        name=name, shape=tuple(value.shape), dtype=str(value.dtype).replace("torch.", ""),
        error=error, reference_error=reference_error, ratio=ratio, allowed=allowed,
        worst=_element(name, value.shape, index),
        value=None if index is None else float(flat_value[index]),
        truth=None if index is None else float(flat_truth[index]), verdict=verdict)
