"""Mutants without editing anybody's code: identity "taps" whose backward rewrites a gradient.

A tap is an autograd Function that returns its input unchanged and, in the backward, rewrites
the gradient arriving at that tensor. Placed around an input (the callable is wrapped) or a
parameter (the layer is called through ``torch.func.functional_call`` with the tapped
parameter), it turns a correct case into a buggy one whose forward is exactly the original.
``torch.autograd.gradcheck`` perturbs inputs only, so parameter taps are invisible to it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .case import MUTANT, Case, callable_of

SCALE = 1.05        # a dense bug: every entry of the gradient 5% off
ENTRY_FACTOR = 1.2  # a sparse bug: one entry 20% off


def _scale(gradient: torch.Tensor, entry: int) -> torch.Tensor:
    return gradient * SCALE


def _entry(gradient: torch.Tensor, entry: int) -> torch.Tensor:
    rewritten = gradient.clone(memory_format=torch.contiguous_format)
    rewritten.view(-1)[entry] *= ENTRY_FACTOR
    return rewritten


def _zero(gradient: torch.Tensor, entry: int) -> torch.Tensor:
    return torch.zeros_like(gradient)


REWRITES: Dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "scale": _scale,   # gradient x 1.05
    "entry": _entry,   # one entry (the largest analytic one) x 1.2
    "zero": _zero,     # gradient dropped, as when a backward forgets an input
}


class GradientTap(torch.autograd.Function):
    """Identity in the forward; the backward returns ``REWRITES[rewrite](grad, entry)``."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rewrite: str, entry: int) -> torch.Tensor:
        ctx.rewrite, ctx.entry = rewrite, entry
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor):
        return REWRITES[ctx.rewrite](gradient, ctx.entry), None, None


def tap(tensor: torch.Tensor, rewrite: str, entry: int = 0) -> torch.Tensor:
    """``tensor`` unchanged, with its incoming gradient rewritten in the backward."""
    return GradientTap.apply(tensor, rewrite, entry)


def _tapped_arguments(inputs: Sequence[Any], position: int, rewrite: str, entry: int) -> List[Any]:
    tapped = list(inputs)
    tapped[position] = tap(inputs[position], rewrite, entry)
    return tapped


class InputTapped(nn.Module):
    """A layer whose ``position``-th input passes through a tap (its parameters stay checked)."""

    def __init__(self, inner: nn.Module, position: int, rewrite: str, entry: int) -> None:
        super().__init__()
        self.inner, self.position, self.rewrite, self.entry = inner, position, rewrite, entry

    def forward(self, *inputs: Any) -> Any:
        return self.inner(*_tapped_arguments(inputs, self.position, self.rewrite, self.entry))


class ParameterTapped(nn.Module):
    """A layer called with one of its parameters passed through a tap."""

    def __init__(self, inner: nn.Module, parameter: str, rewrite: str, entry: int) -> None:
        super().__init__()
        self.inner, self.parameter, self.rewrite, self.entry = inner, parameter, rewrite, entry

    def forward(self, *inputs: Any) -> Any:
        weight = self.inner.get_parameter(self.parameter)
        return torch.func.functional_call(
            self.inner, {self.parameter: tap(weight, self.rewrite, self.entry)}, inputs)


@dataclass(frozen=True)
class InputTappedCall:
    """A plain callable whose ``position``-th argument passes through a tap."""

    fn: Callable
    position: int
    rewrite: str
    entry: int

    def __call__(self, *inputs: Any) -> Any:
        return self.fn(*_tapped_arguments(inputs, self.position, self.rewrite, self.entry))


# A tensor whose analytic gradient is below this fraction of the largest one in the case gets
# no tap: its gradient is zero up to round-off (a conv bias before instance norm, a key bias
# under softmax), so rewriting it changes nothing and would make a "mutant" that is no bug.
NO_GRADIENT = 1e-10


@dataclass(frozen=True)
class Target:
    """Where a tap goes: an input position or a parameter name, what it rewrites, which entry."""

    rewrite: str
    position: Optional[int] = None
    parameter: Optional[str] = None
    entry: int = 0  # the flat index an "entry" tap rewrites: the largest analytic gradient

    @property
    def visible_to_gradcheck(self) -> bool:
        return self.parameter is None

    @property
    def label(self) -> str:
        where = f"input[{self.position}]" if self.parameter is None else self.parameter
        return f"{self.rewrite}@{where}"


def _floating_outputs(result: Any) -> List[torch.Tensor]:
    values = result.values() if isinstance(result, dict) else (
        result if isinstance(result, (tuple, list)) else [result])
    return [v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]


def _gradients(fn: Any, inputs: Sequence[Any],
               tensors: List[torch.Tensor]) -> Optional[List[torch.Tensor]]:
    """Analytic gradients of a fixed random projection of the outputs, or None if that fails."""
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            outputs = _floating_outputs(callable_of(fn)(*inputs))
            generator = torch.Generator().manual_seed(1)
            scalar = sum((o * torch.randn(o.shape, generator=generator, dtype=torch.float64)
                          .to(o.dtype)).sum() for o in outputs)
            gradients = torch.autograd.grad(scalar, tensors, allow_unused=True)
    except Exception:  # a case that cannot be differentiated plainly yields no mutant
        return None
    return [torch.zeros_like(t) if g is None else g.detach() for t, g in zip(tensors, gradients)]


def _three_taps(keys: List[Any], gradients: Dict[Any, torch.Tensor], largest: float,
                make) -> List[Target]:
    """Scale and one entry on the first tensor with a gradient, zero on the second."""
    keys = [k for k in keys if float(gradients[k].abs().max()) > NO_GRADIENT * largest]
    result: List[Target] = []
    if keys:
        entry = int(gradients[keys[0]].abs().reshape(-1).argmax())
        result += [make("scale", keys[0], 0), make("entry", keys[0], entry)]
    if len(keys) > 1:
        result.append(make("zero", keys[1], 0))
    return result


def targets(case: Case) -> List[Target]:
    """The taps a correct case yields: scale and one entry on the first checked tensor, zero on
    the second, for its inputs and (for a layer) again for its parameters. Tensors whose
    gradient is zero get none; a case whose plain forward and backward raise gets none."""
    fn, *inputs = case.build()
    positions = [i for i, x in enumerate(inputs)
                 if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point()]
    names = ([name for name, p in fn.named_parameters() if p.requires_grad]
             if isinstance(fn, nn.Module) else [])
    tensors = [inputs[i] for i in positions] + [fn.get_parameter(n) for n in names]
    analytic = _gradients(fn, inputs, tensors)
    if analytic is None:
        return []
    gradients = dict(zip(positions + names, analytic))
    largest = max((float(g.abs().max()) for g in analytic if g.numel()), default=0.0)
    return (_three_taps(positions, gradients, largest,
                        lambda rewrite, key, entry: Target(rewrite, position=key, entry=entry))
            + _three_taps(names, gradients, largest,
                          lambda rewrite, key, entry: Target(rewrite, parameter=key, entry=entry)))


def _tapped_builder(case: Case, target: Target) -> Callable[[], Tuple[Any, ...]]:
    def build() -> Tuple[Any, ...]:
        fn, *inputs = case.build()
        rewrite, entry = target.rewrite, target.entry
        if target.parameter is not None:
            return (ParameterTapped(fn, target.parameter, rewrite, entry), *inputs)
        if isinstance(fn, nn.Module):
            return (InputTapped(fn, target.position, rewrite, entry), *inputs)
        return (InputTappedCall(callable_of(fn), target.position, rewrite, entry), *inputs)
    return build


@dataclass(frozen=True)
class Mutant:
    """A buggy variant of a correct case, with the tap that made it."""

    case: Case
    origin: Case
    target: Target


def mutants(case: Case) -> List[Mutant]:
    """Every tapped variant of one correct case."""
    result = []
    for target in targets(case):
        mutant = replace(case, name=f"{case.name} [{target.label}]", label=MUTANT,
                         build=_tapped_builder(case, target),
                         note=f"{target.label}: " + ("a parameter tap, which gradcheck cannot see"
                                                     if not target.visible_to_gradcheck else
                                                     "an input tap"))
        result.append(Mutant(mutant, case, target))
    return result
