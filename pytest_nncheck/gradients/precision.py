"""Finding lower-precision computation inside a forward that is checked in float64.

Layers that compute in float32 on purpose (``x.float()``, ``softmax(dtype=torch.float32)``, a
float32 buffer that a tensor is cast to) make a float64 finite difference measure their round-off:
a step of 1e-6 is below float32's resolution. The tracer follows every checked tensor's data through
the forward at the dispatcher (a bit per checked tensor, carried from each op's inputs to its
outputs) and notes the first op where that data comes out in a lower precision than the check's,
with the line of user code that ran it. Those tensors are then checked with single-precision step
and tolerance and marked "low precision", never called wrong for their round-off.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Iterator, List, Sequence

import torch

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIPPED_DIRS = (_TORCH_DIR, _OWN_DIR, os.path.dirname(os.__file__))


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, torch.Tensor))


def user_location() -> str:
    """``file.py:line`` of the innermost frame outside torch, nncheck and the standard library."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_SKIPPED_DIRS) and not filename.startswith("<"):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "an unknown line"


def _describe(func: Any, dtype: torch.dtype) -> str:
    name = str(dtype).replace("torch.", "")
    if func.overloadpacket in (torch.ops.aten._to_copy, torch.ops.aten.to):
        return f"a cast to {name}"
    return f"{func.overloadpacket.__name__} computing in {name}"


class PrecisionTracer:
    """Which checked tensors reach an op whose floating output is less precise than the check."""

    def __init__(self, checked: Sequence[torch.Tensor], dtype: torch.dtype) -> None:
        self._bits: Dict[int, int] = {id(t): 1 << i for i, t in enumerate(checked)}
        self._alive: List[torch.Tensor] = list(checked)  # keeps every traced id unambiguous
        self._resolution = torch.finfo(dtype).eps
        self.lowered: Dict[int, str] = {}  # checked position -> "a cast to float32 at file:line"

    def before(self, func: Any, args: tuple, kwargs: dict) -> None:
        """Nothing to do before an op runs."""

    def after(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        mask = 0
        finest = None  # the finest precision of checked floating data going into the op
        for tensor in _tensors((*args, *kwargs.values())):
            bits = self._bits.get(id(tensor), 0)
            if bits:
                mask |= bits
                if tensor.is_floating_point():
                    eps = torch.finfo(tensor.dtype).eps
                    finest = eps if finest is None else min(finest, eps)
        if not mask:
            return
        outputs = [out] if isinstance(out, torch.Tensor) else list(_tensors(out if isinstance(
            out, (tuple, list)) else ()))
        for tensor in outputs:
            self._bits[id(tensor)] = self._bits.get(id(tensor), 0) | mask
            self._alive.append(tensor)
            # Only floating data made coarser counts: a 0/1 mask cast to float32 loses nothing.
            if finest is not None and tensor.is_floating_point() \
                    and torch.finfo(tensor.dtype).eps > max(finest, self._resolution):
                self._note(mask, f"{_describe(func, tensor.dtype)} at {user_location()}")

    def _note(self, mask: int, where: str) -> None:
        position = 0
        while mask:
            if mask & 1 and position not in self.lowered:
                self.lowered[position] = where
            mask >>= 1
            position += 1
