"""Record the discrete decisions a forward pass makes, to explain a disagreement at a kink.

A central difference across a kink (the sign of a ReLU input, the winner of a max, a ``where``
condition, a clamp bound) measures the average of two slopes, not the derivative: CS231n's
"kinks in the objective". The analytic gradient follows the decisions taken *at x*, so when a probe
disagrees, the decisions at x, x+h and x-h say which side to compare with. They are recorded at the
dispatcher, where built-in ops and the insides of custom ``autograd.Function`` forwards look the
same, and only for the few evaluations that need them (a solver makes hundreds per forward).

Recording must never break the forward it watches: a decider that cannot read an op's arguments
records a marker for that op instead of raising.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

aten = torch.ops.aten

Decider = Callable[[tuple, dict, Any], torch.Tensor]


def _arg(args: tuple, kwargs: dict, position: int, name: str, default: Any = None) -> Any:
    if len(args) > position:
        return args[position]
    return kwargs.get(name, default)


def _positive(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return args[0] > 0


def _above_threshold(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return args[0] > _arg(args, kwargs, 1, "threshold")


def _sign(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return torch.sign(args[0]).to(torch.int8)


def _between(low_position: int, low_name: str, high_position: int, high_name: str,
             low_default: Any = None, high_default: Any = None) -> Decider:
    def decide(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
        x = args[0]
        low = _arg(args, kwargs, low_position, low_name, low_default)
        high = _arg(args, kwargs, high_position, high_name, high_default)
        code = torch.zeros(x.shape, dtype=torch.int8, device=x.device)
        if low is not None:
            code = code + (x < low).to(torch.int8)
        if high is not None:
            code = code + 2 * (x > high).to(torch.int8)
        return code
    return decide


def _fixed_between(low: float, high: float) -> Decider:
    def decide(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
        x = args[0]
        return (x < low).to(torch.int8) + 2 * (x > high).to(torch.int8)
    return decide


def _first_greater(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return torch.as_tensor(args[0]) > torch.as_tensor(args[1])


def _first_smaller(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return torch.as_tensor(args[0]) < torch.as_tensor(args[1])


def _output(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return out


def _indices_output(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        return out[1]
    # median() / nanmedian() without dim return the value alone: which entries equal it.
    return args[0] == out


def _condition(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return args[0]


def _flat_argmax(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return args[0].argmax()


def _flat_argmin(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
    return args[0].argmin()


def _pool_indices(with_indices: Callable) -> Decider:
    def decide(args: tuple, kwargs: dict, out: Any) -> torch.Tensor:
        return with_indices(*args, **kwargs)[1]
    return decide


# Decisions read from the arguments must be taken before the op runs (in-place ops overwrite them).
_BEFORE: Dict[Any, Decider] = {
    aten.relu: _positive,
    aten.relu_: _positive,
    aten.leaky_relu: _positive,
    aten.leaky_relu_: _positive,
    aten.rrelu_with_noise: _positive,
    aten.prelu: _positive,
    aten._prelu_kernel: _positive,
    aten.threshold: _above_threshold,
    aten.threshold_: _above_threshold,
    aten.abs: _sign,
    aten.abs_: _sign,
    aten.hardtanh: _between(1, "min_val", 2, "max_val", -1.0, 1.0),
    aten.hardtanh_: _between(1, "min_val", 2, "max_val", -1.0, 1.0),
    aten.clamp: _between(1, "min", 2, "max"),
    aten.clamp_: _between(1, "min", 2, "max"),
    aten.clamp_min: _between(1, "min", 9, "unused"),
    aten.clamp_min_: _between(1, "min", 9, "unused"),
    aten.clamp_max: _between(9, "unused", 1, "max"),
    aten.clamp_max_: _between(9, "unused", 1, "max"),
    aten.hardsigmoid: _fixed_between(-3.0, 3.0),
    aten.hardswish: _fixed_between(-3.0, 3.0),
    aten.hardshrink: _between(1, "lambd", 1, "lambd"),
    aten.softshrink: _between(1, "lambd", 1, "lambd"),
    aten.maximum: _first_greater,
    aten.fmax: _first_greater,
    aten.minimum: _first_smaller,
    aten.fmin: _first_smaller,
    aten.where: _condition,
    aten.max: _flat_argmax,
    aten.min: _flat_argmin,
}

# Decisions that are the op's own result (comparisons, chosen indices).
_AFTER: Dict[Any, Decider] = {
    aten.gt: _output, aten.lt: _output, aten.ge: _output, aten.le: _output,
    aten.eq: _output, aten.ne: _output, aten.sign: _output,
    aten.argmax: _output, aten.argmin: _output,
    aten.sort: _indices_output, aten.topk: _indices_output, aten.kthvalue: _indices_output,
    aten.median: _indices_output, aten.mode: _indices_output, aten.cummax: _indices_output,
    aten.cummin: _indices_output,
    aten.max_pool1d_with_indices: _indices_output,
    aten.max_pool2d_with_indices: _indices_output,
    aten.max_pool3d_with_indices: _indices_output,
    aten.adaptive_max_pool2d: _indices_output,
    aten.adaptive_max_pool3d: _indices_output,
    aten.max_pool1d: _pool_indices(aten.max_pool1d_with_indices),
    aten.max_pool2d: _pool_indices(aten.max_pool2d_with_indices),
    aten.max_pool3d: _pool_indices(aten.max_pool3d_with_indices),
}

# Overloads whose indices are part of the output: ``max(x, dim)`` returns (values, indices).
_INDEXED_REDUCTIONS = {aten.max.dim, aten.min.dim, aten.max.dim_max, aten.min.dim_min}


_DECIDERS: Dict[Any, Tuple[Optional[Decider], bool]] = {}


def _decider(func: Any) -> Tuple[Optional[Decider], bool]:
    """(decider, taken before the op runs) for an op overload; looked up once per overload."""
    found = _DECIDERS.get(func)
    if found is None:
        found = _DECIDERS[func] = _lookup_decider(func)
    return found


def _lookup_decider(func: Any) -> Tuple[Optional[Decider], bool]:
    if func in _INDEXED_REDUCTIONS:
        return _indices_output, False
    packet = func.overloadpacket
    if packet in (aten.max, aten.min) and func._overloadname not in ("default", "unary_out"):
        return (_first_greater if packet is aten.max else _first_smaller), True
    if packet in _BEFORE:
        return _BEFORE[packet], True
    if packet in _AFTER:
        return _AFTER[packet], False
    return None, False


# Recorded in place of a decision the decider could not read: the op still counts, so two passes
# that run different ops still differ.
_UNREADABLE = torch.tensor(-1, dtype=torch.int8)


class DecisionRecord:
    """The ordered discrete decisions of one forward pass."""

    def __init__(self) -> None:
        self.ops: List[Any] = []
        self.decisions: List[torch.Tensor] = []

    def add(self, op: Any, decide: Decider, args: tuple, kwargs: dict, out: Any) -> None:
        try:
            decision = torch.as_tensor(decide(args, kwargs, out)).detach().clone()
        except Exception:  # a decider must never break the user's forward
            decision = _UNREADABLE
        self.ops.append(op)
        self.decisions.append(decision)

    def __len__(self) -> int:
        return len(self.decisions)

    def same_as(self, other: "DecisionRecord") -> bool:
        """True when both passes took every decision the same way (no kink between them)."""
        if self.ops != other.ops:
            return False
        return all(a.shape == b.shape and torch.equal(a, b)
                   for a, b in zip(self.decisions, other.decisions))

    def before(self, func: Any, args: tuple, kwargs: dict) -> None:
        """Decisions read from the arguments, taken before an in-place op overwrites them."""
        decide, early = _decider(func)
        if decide is not None and early:
            self.add(func, decide, args, kwargs, None)

    def after(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        decide, early = _decider(func)
        if decide is not None and not early:
            self.add(func, decide, args, kwargs, out)
