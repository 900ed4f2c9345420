"""Which output slices depend on which input slices along one axis (samples, or positions).

Batch independence (output i depends on sample i alone) and causality (output t depends on no
position after t) are the same measurement with a different rule for which dependences are
allowed. It is taken two ways, and a dependence either way is a leak:

- backward: the gradient of a fixed random projection of output slice i with respect to the
  inputs, its norm per input slice j. Where no path exists the gradient is exactly zero, so any
  non-zero value is a real path. Token inputs are differentiated through their embeddings.
- forward: input slice j is replaced and the model runs again from the same seed (the same
  dropout masks); every output slice that moves depended on it. This sees paths gradients do not
  (``.detach()``, integer indexing, argmax) and needs no gradient at all.

The model runs on a private copy in train mode (dropout live, under a fixed seed) with
BatchNorm-type layers in eval mode, because in train mode they mix the batch by design.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state, reseed
from ..sanity.evaluation import (as_tuple, deterministic, forward, private_copy, require_examples,
                                 set_mode)

# A backward dependence below this fraction of the largest gradient in the matrix is round-off;
# correct models give exactly 0 (benchmarks/recipe.py: the largest seen on the correct zoo is 0).
BACKWARD_TOLERANCE = 1e-6
# A forward change below this fraction of the largest output is round-off (float32 resolves about
# 1e-7; the largest change seen on the correct zoo in benchmarks/recipe.py is 0).
FORWARD_TOLERANCE = 1e-5
# At most this many slices are differentiated and perturbed (evenly spread, both ends included).
MAX_SLICES = 16

_BATCH_MIXING = (nn.modules.batchnorm._BatchNorm,)

Allowed = Callable[[int, int], bool]


@dataclass
class Leak:
    """Output slice ``output`` depends on input slice ``source``, which it must not.

    ``value`` compares that dependence with the output's largest allowed one (its own sample, or
    the positions up to it); ``forms`` says which measurement saw it.
    """

    output: int
    source: int
    value: float
    forms: Tuple[str, ...]


@dataclass
class Influence:
    """The leaks found, and how the measurement ran (for the report's summary and notes).

    ``largest_disallowed`` holds, per form, the largest disallowed dependence relative to the
    form's scale (the largest gradient, the largest output), leak or round-off: the margin the
    tolerances are chosen from.
    """

    length: int
    leaks: List[Leak] = field(default_factory=list)
    outputs_checked: int = 0
    sources_checked: int = 0
    forms: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    largest_disallowed: Dict[str, float] = field(default_factory=dict)

    def figures(self, what: str) -> Dict[str, float]:
        """The numbers for a report: slices, leaks, the worst one, the tolerance margins."""
        return {what: self.length, "leaks": len(self.leaks),
                "worst_leak": max((leak.value for leak in self.leaks), default=0.0),
                **{f"{form}_largest_disallowed": value
                   for form, value in self.largest_disallowed.items()}}


def spread(length: int, most: int = MAX_SLICES) -> List[int]:
    """Up to ``most`` indices of ``range(length)``, evenly spread, first and last included."""
    if length <= most:
        return list(range(length))
    return sorted({round(k * (length - 1) / (most - 1)) for k in range(most)})


def floating_outputs(outputs: Any) -> List[torch.Tensor]:
    """The floating-point tensors of an output: a tensor, or a (nested) tuple, list or dict."""
    if isinstance(outputs, torch.Tensor):
        return [outputs] if outputs.is_floating_point() else []
    if isinstance(outputs, dict):
        return [t for value in outputs.values() for t in floating_outputs(value)]
    if isinstance(outputs, (tuple, list)):
        return [t for value in outputs for t in floating_outputs(value)]
    return []


def _along(tensors: Sequence[torch.Tensor], dim: int, length: int) -> List[torch.Tensor]:
    return [t for t in tensors if t.dim() > dim and t.shape[dim] == length]


def _shape_list(tensors: Sequence[Any]) -> str:
    return ", ".join(str(tuple(t.shape)) for t in tensors if isinstance(t, torch.Tensor)) or "none"


def _perturbed(tensor: torch.Tensor, dim: int, index: int, seed: int) -> torch.Tensor:
    """``tensor`` with slice ``index`` along ``dim`` replaced (noise, another slice's tokens)."""
    result = tensor.detach().clone()
    piece = result.select(dim, index)
    if result.is_floating_point():
        generator = torch.Generator(device=result.device).manual_seed(seed + index)
        scale = float(result.double().std()) if result.numel() > 1 else 1.0
        piece.add_(torch.randn(piece.shape, generator=generator, dtype=piece.dtype,
                               device=piece.device) * (scale if scale > 0 else 1.0))
    elif result.dtype == torch.bool:
        piece.logical_not_()
    else:
        donor = result.select(dim, (index + 1) % result.shape[dim]).clone()
        if torch.equal(donor, piece):
            donor = piece.flatten().roll(1).view_as(piece)
        piece.copy_(donor)
    return result


class _Subject:
    """The private copy, its inputs, and one forward from the fixed seed with buffers restored."""

    def __init__(self, model: nn.Module, inputs: Any, seed: int) -> None:
        self.model = set_mode(private_copy(model), True)
        self.eval_layers = [name for name, m in self.model.named_modules()
                            if isinstance(m, _BATCH_MIXING) and not set_mode(m, False).training]
        self.inputs = as_tuple(inputs)
        require_examples(self.inputs)
        self.seed = seed
        self.buffers = [(b, b.detach().clone()) for b in self.model.buffers()]

    def run(self, inputs: Sequence[Any]) -> Any:
        with torch.no_grad():
            for buffer, saved in self.buffers:
                buffer.copy_(saved)
        reseed(self.seed)
        return forward(self.model, inputs)


def _outputs_along(outputs: Any, dim: int, length: int, what: str) -> List[torch.Tensor]:
    found = _along(floating_outputs(outputs), dim, length)
    if not found:
        raise NNCheckError(f"no floating output has {length} {what} along dim {dim} (output shapes: "
                           f"{_shape_list(floating_outputs(outputs))}); pass output_dim= the axis "
                           f"of the output that indexes the {what}")
    return found


@dataclass
class _Matrix:
    """Dependence of output slices (rows) on input slices (columns), its scale and tolerance."""

    values: Dict[Tuple[int, int], float]
    scale: float
    tolerance: float

    @property
    def floor(self) -> float:
        """Dependences at or below this are round-off."""
        return self.tolerance * self.scale


def _embedding_outputs(model: nn.Module, tokens: Sequence[torch.Tensor], dim: int
                       ) -> Tuple[List[torch.utils.hooks.RemovableHandle], List[torch.Tensor]]:
    """Hooks that keep the outputs of embeddings looked up from the token inputs."""
    captured: List[torch.Tensor] = []
    shapes = {tuple(t.shape) for t in tokens}

    def keep(module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad and \
                tuple(output.shape[:-1]) in shapes:
            captured.append(output)

    handles = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, nn.Embedding)]
    return handles, captured


def _backward(subject: _Subject, in_dim: int, out_dim: int, length: int, what: str,
              influence: Influence) -> Optional[_Matrix]:
    inputs = list(subject.inputs)
    batched = [k for k, t in enumerate(inputs) if isinstance(t, torch.Tensor) and
               t.dim() > in_dim and t.shape[in_dim] == length]
    floats = [k for k in batched if inputs[k].is_floating_point()]
    for k in floats:
        inputs[k] = inputs[k].detach().clone().requires_grad_(True)
    handles: List[Any] = []
    views: List[torch.Tensor] = [inputs[k] for k in floats]
    if not views:
        handles, views = _embedding_outputs(subject.model, [inputs[k] for k in batched], in_dim)
    try:
        with torch.enable_grad():
            outputs = _outputs_along(subject.run(inputs), out_dim, length, what)
    finally:
        for handle in handles:
            handle.remove()
    if not views or not any(o.requires_grad for o in outputs):
        influence.notes.append("backward form skipped: no floating input or embedding output to "
                               "differentiate, or the outputs do not require grad")
        return None
    generator = torch.Generator(device=outputs[0].device).manual_seed(subject.seed)
    projections = [torch.randn(o.shape, generator=generator, dtype=o.dtype, device=o.device)
                   for o in outputs]
    values: Dict[Tuple[int, int], float] = {}
    rows = spread(length)
    for i in rows:
        scalar = sum((o.select(out_dim, i) * r.select(out_dim, i)).sum()
                     for o, r in zip(outputs, projections))
        grads = torch.autograd.grad(scalar, views, retain_graph=True, allow_unused=True)
        norms = torch.zeros(length, dtype=torch.float64)
        for grad in grads:
            if grad is not None:
                norms += grad.detach().double().movedim(in_dim, 0).reshape(length, -1) \
                    .pow(2).sum(dim=1).cpu()
        for j, norm in enumerate(norms.sqrt().tolist()):
            values[(i, j)] = norm
    influence.outputs_checked = len(rows)
    influence.forms.append("backward")
    largest = max(values.values(), default=0.0)
    return _Matrix(values, largest, BACKWARD_TOLERANCE)


def _forward(subject: _Subject, in_dim: int, out_dim: int, length: int, what: str,
             influence: Influence) -> Optional[_Matrix]:
    inputs = list(subject.inputs)
    base = [o.detach() for o in _outputs_along(subject.run(inputs), out_dim, length, what)]
    again = [o.detach() for o in _outputs_along(subject.run(inputs), out_dim, length, what)]
    if not all(torch.equal(a, b) for a, b in zip(base, again)):
        influence.notes.append("forward form skipped: two forwards of the same inputs from the "
                               "same seed differ (state carried between calls: a cache, running "
                               "statistics, a counter)")
        return None
    batched = [k for k, t in enumerate(inputs) if isinstance(t, torch.Tensor) and
               t.dim() > in_dim and t.shape[in_dim] == length]
    largest = max(float(o.abs().max()) for o in base) if base else 0.0
    values: Dict[Tuple[int, int], float] = {}
    columns = spread(length)
    for j in columns:
        changed = list(inputs)
        for k in batched:
            changed[k] = _perturbed(inputs[k], in_dim, j, subject.seed)
        moved = _outputs_along(subject.run(changed), out_dim, length, what)
        for i in range(length):
            values[(i, j)] = max(float((m.detach().select(out_dim, i) - b.select(out_dim, i))
                                       .abs().max()) for m, b in zip(moved, base))
    influence.sources_checked = len(columns)
    influence.forms.append("forward")
    return _Matrix(values, largest, FORWARD_TOLERANCE)


def _forward_without_grad(*args: Any) -> Optional[_Matrix]:
    with torch.no_grad():
        return _forward(*args)


def _leaks(matrix: _Matrix, allowed: Allowed, form: str) -> Dict[Tuple[int, int], Tuple[float, str]]:
    own: Dict[int, float] = {}
    for (i, j), value in matrix.values.items():
        if allowed(i, j):
            own[i] = max(own.get(i, 0.0), value)
    found = {}
    for (i, j), value in matrix.values.items():
        if not allowed(i, j) and value > matrix.floor:
            reference = max(own.get(i, 0.0), matrix.floor, 1e-300)
            found[(i, j)] = (value / reference, form)
    return found


def measure(model: nn.Module, inputs: Any, *, in_dim: int, out_dim: Optional[int], allowed: Allowed,
            what: str, seed: int) -> Influence:
    """The leaks of ``model`` along ``in_dim``: dependences ``allowed(output, source)`` rejects."""
    subject = _Subject(model, inputs, seed)
    first = next((t for t in subject.inputs if isinstance(t, torch.Tensor)), None)
    if first is None or first.dim() <= in_dim:
        raise NNCheckError(f"inputs need a tensor with a dim {in_dim} to index the {what} (got "
                           f"shapes: {_shape_list(subject.inputs)}); pass dim= the axis of the {what}")
    length = first.shape[in_dim]
    influence = Influence(length=length)
    if subject.eval_layers:
        influence.notes.append(f"note: BatchNorm layers ran in eval mode ("
                               f"{', '.join(subject.eval_layers[:6])}): in train mode they mix the "
                               f"batch by design")
    found: Dict[Tuple[int, int], List[Tuple[float, str]]] = {}
    with preserved_rng_state(), deterministic():
        for form, measurement in (("backward", _backward), ("forward", _forward_without_grad)):
            matrix = measurement(subject, in_dim, out_dim if out_dim is not None else in_dim,
                                 length, what, influence)
            if matrix is None:
                continue
            for pair, leak in _leaks(matrix, allowed, form).items():
                found.setdefault(pair, []).append(leak)
            influence.largest_disallowed[form] = max(
                (v for (i, j), v in matrix.values.items() if not allowed(i, j)),
                default=0.0) / max(matrix.scale, 1e-300)
    if not influence.forms:
        raise NNCheckError(f"could not measure the {what}: {'; '.join(influence.notes)}")
    influence.leaks = [Leak(i, j, max(v for v, _ in seen), tuple(f for _, f in seen))
                       for (i, j), seen in sorted(found.items())]
    return influence
