"""The analytic gradient, read the way training reads it, and the backward's contract.

Gradients are taken with ``backward()`` and read from ``.grad``: a custom backward that writes a
parameter's gradient itself (reversible networks recompute activations and fill ``.grad`` by hand)
is checked, not reported as missing. Accumulation is restricted to the checked tensors, so a tensor
of the caller's captured by ``fn`` never receives a gradient.

The contract (what gradcheck calls reentrancy): a second backward through the same graph gives the
same gradient, and neither ``grad_output`` nor the checked tensors are written into. Real loss
functions break it by updating a saved tensor in place in their backward: the first backward is
right, a second one (gradient accumulation over a retained graph, double backward) is not.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch

from ..errors import NNCheckError, NNCheckInternalError
from .subject import Subject


@dataclass
class Analytic:
    """The analytic pass at the unperturbed point."""

    gradients: List[torch.Tensor]
    connected: List[bool]  # whether the backward reached the tensor at all
    outputs: List[torch.Tensor]
    output_scale: float
    contract: List[str] = field(default_factory=list)  # broken promises: the report fails
    notes: List[str] = field(default_factory=list)
    broken: bool = False  # the backward raised: nothing to compare the probes with


class BackwardRaised(Exception):
    """The backward fails on an input the forward accepts: a bug of the backward, not bad input."""


def _without_gradients(subject: Subject, outputs: List[torch.Tensor], why: str) -> Analytic:
    detached = [o.detach() for o in outputs]
    return Analytic(gradients=[torch.zeros_like(t) for t in subject.tensors],
                    connected=[False] * len(subject.checked), outputs=detached,
                    output_scale=subject.output_scale(detached), contract=[why], broken=True)


def _freed(tensor: torch.Tensor) -> bool:
    return tensor.numel() > 0 and tensor.untyped_storage().nbytes() == 0


def _require_storage(subject: Subject, outputs: List[torch.Tensor], when: str) -> None:
    """Memory-saving layers (invertible blocks) free tensors' storage; touching one crashes."""
    named = [*((f"output[{k}]", o) for k, o in enumerate(outputs)),
             *((c.name, c.tensor) for c in subject.checked)]
    for name, tensor in named:
        if _freed(tensor):
            raise NNCheckError(f"{name} has no storage after the {when}: the layer frees tensors "
                               f"to save memory (an invertible block), so it cannot be evaluated "
                               f"again; check it with that memory saving turned off")


def _require_finite(outputs: List[torch.Tensor]) -> None:
    for position, output in enumerate(outputs):
        if not torch.isfinite(output).all():
            bad = "NaN" if torch.isnan(output).any() else "Inf"
            raise NNCheckError(f"fn's output[{position}] contains {bad} at the checked point; "
                               f"fix the forward or check at another input")


def _dense(gradient: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if gradient is None:
        return None
    return (gradient.to_dense() if gradient.layout != torch.strided else gradient).detach().clone()


def _backward(subject: Subject, pairs: List[Tuple[torch.Tensor, torch.Tensor]],
              retain: bool) -> Tuple[List[Optional[torch.Tensor]], List[int]]:
    """One backward with the projection as grad_output: (gradients, outputs whose grad changed)."""
    tensors = subject.tensors
    for tensor in tensors:
        tensor.grad = None
    grad_outputs = [weight.clone() for _, weight in pairs]
    try:
        torch.autograd.backward([output for output, _ in pairs], grad_tensors=grad_outputs,
                                retain_graph=retain, inputs=tensors)
    except (NNCheckError, NNCheckInternalError):
        raise
    except Exception as error:
        usage = subject.forward_error(error, where="backward")
        if "cannot run in float64" in str(usage) or "is passed through unchanged" in str(usage):
            raise usage from error
        from ..errors import first_line
        raise BackwardRaised(f"the backward raises {first_line(error)}") from error
    gradients = [_dense(tensor.grad) for tensor in tensors]
    for tensor in tensors:
        tensor.grad = None
    written = [k for k, (given, (_, weight)) in enumerate(zip(grad_outputs, pairs))
               if not torch.equal(given, weight)]
    return gradients, written


def _has_custom_backward(outputs: List[torch.Tensor]) -> bool:
    """Whether a hand-written backward (an autograd.Function) is in the graph: built-in ops are
    reentrant, so only then is a second backward worth its cost."""
    pending = [o.grad_fn for o in outputs if o.grad_fn is not None]
    seen = set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if hasattr(node, "_forward_cls"):
            return True
        pending.extend(next_node for next_node, _ in node.next_functions)
    return False


def _differs(first: torch.Tensor, second: torch.Tensor) -> bool:
    """More than round-off apart (a backward kernel may sum in another order the second time)."""
    tolerance = 1e3 * torch.finfo(first.dtype).eps
    return not torch.allclose(first, second, rtol=tolerance,
                              atol=tolerance * float(first.abs().max()) if first.numel() else 0.0)


def _without_graph(subject: Subject, outputs: List[torch.Tensor]) -> Analytic:
    """No output carries a graph: the analytic gradient is zero, which the probes then judge."""
    detached = [o.detach() for o in outputs]
    return Analytic(gradients=[torch.zeros_like(t) for t in subject.tensors],
                    connected=[False] * len(subject.checked), outputs=detached,
                    output_scale=subject.output_scale(detached),
                    notes=[f"{subject.output_name} carries no autograd graph, so its analytic "
                           f"gradient is zero everywhere ({subject.graph_breakers})"])


def analytic_pass(subject: Subject) -> Analytic:
    """Forward, backward twice, and the contract checks; raises NNCheckError on bad input."""
    with torch.enable_grad():
        outputs = subject.outputs(grad=True, detect_randomness=True)
        _require_storage(subject, outputs, "forward")
        _require_finite(outputs)
        kept = [o.detach().clone() for o in outputs]  # a memory-saving backward may free them
        weights = subject.weights(outputs)
        pairs = [(o, torch.ones_like(o) if w is None else w) for o, w in zip(outputs, weights)
                 if o.requires_grad]
        if not pairs:
            return _without_graph(subject, outputs)
        try:
            first, written = _backward(subject, pairs, retain=True)
        except BackwardRaised as error:
            return _without_gradients(subject, kept, str(error))
        _require_storage(subject, [], "backward")
        analytic = Analytic(gradients=[], connected=[g is not None for g in first],
                            outputs=kept, output_scale=subject.output_scale(kept))
        for position in written:
            analytic.contract.append(
                f"the backward writes into grad_output of output[{position}] in place; gradients "
                f"flowing into the same tensor from elsewhere are corrupted (use out-of-place ops)")
        changed = subject.changed_by_forward()
        if changed is not None:
            analytic.contract.append(f"{changed} was modified in place by the forward or the "
                                     f"backward; a layer must not write into its inputs or weights")
        try:
            second = _backward(subject, pairs, retain=False)[0] \
                if _has_custom_backward([o for o, _ in pairs]) else None
        except (NNCheckError, BackwardRaised) as error:
            second = None
            if "modified by an inplace operation" in str(error):
                analytic.contract.append(
                    "the backward is not reentrant: it writes into a tensor saved for backward, "
                    "so a second backward through the same graph fails (autograd: modified by "
                    "an inplace operation); work on a copy of ctx.saved_tensors")
            else:
                analytic.notes.append(f"the backward cannot run twice on one graph, so its "
                                      f"reentrancy was not checked ({error})")
    for checked, gradient, again in zip(subject.checked, first, second or first):
        gradient = torch.zeros_like(checked.tensor) if gradient is None else gradient
        if not torch.isfinite(gradient).all():
            bad = "NaN" if torch.isnan(gradient).any() else "Inf"
            raise NNCheckError(f"the analytic gradient of {checked.name} contains {bad}: the "
                               f"backward produces non-finite values for a finite output")
        if again is not None and second is not None and _differs(gradient, again):
            analytic.contract.append(
                f"the backward is not reentrant: a second backward through the same graph gives "
                f"another gradient for {checked.name} (largest difference "
                f"{float((gradient - again).abs().max()):.3g}); the backward writes into a "
                f"tensor it saved for backward (ctx.saved_tensors) instead of working on a copy")
        analytic.gradients.append(gradient)
    return analytic
