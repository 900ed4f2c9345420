"""Outputs, targets and a loss that do not fit together, recognised before they cost a training run.

Two kinds: shapes that PyTorch broadcasts silently or rejects with a message that does not say
what to change (an (N, 1) output against (N,) targets under MSE compares every output with every
target, N x N), and outputs that are already probabilities under a loss that applies log_softmax
itself (softmax before CrossEntropyLoss: ln C at init, then a plateau at ln(e + C - 1) - 1).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Optional, Tuple

import torch

from ..errors import NNCheckError
from .evaluation import compute_loss
from .losses import LossSpec

# Losses that pair outputs and targets element by element, so PyTorch broadcasts their shapes.
ELEMENTWISE = ("mse", "l1", "smooth_l1", "huber", "bce", "bce_logits", "soft_margin",
               "multilabel_soft_margin", "poisson_nll", "kl_div")
INDEXED = ("cross_entropy", "nll", "multi_margin")
# Probabilities: rows within this of summing to 1 (float32 softmax rounds to about 1e-7).
PROBABILITY_TOLERANCE = 1e-4


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ("," if t.dim() == 1 else "") + ")"


def _is_one_hot(targets: torch.Tensor) -> bool:
    if targets.dim() < 2 or targets.numel() == 0:
        return False
    values = targets.detach()
    binary = bool(((values == 0) | (values == 1)).all())
    return binary and bool((values.sum(dim=1) == 1).all())


def _one_hot_width(outputs: torch.Tensor, targets: torch.Tensor) -> Optional[str]:
    if not _is_one_hot(targets) or outputs.dim() < 2 or targets.shape[1] == outputs.shape[1]:
        return None
    return (f"targets are one-hot of width {targets.shape[1]} {_shape(targets)} but the outputs have "
            f"{outputs.shape[1]} classes {_shape(outputs)}: F.one_hot(y) without num_classes= takes "
            f"its width from the largest label in the batch; pass num_classes={outputs.shape[1]}")


def _elementwise(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> Optional[str]:
    if outputs.shape == targets.shape:
        return None
    one_hot = _one_hot_width(outputs, targets)
    if one_hot is not None:
        return one_hot
    try:
        joint = torch.broadcast_shapes(outputs.shape, targets.shape)
    except RuntimeError:
        return (f"{spec.name} got outputs of shape {_shape(outputs)} and targets of shape "
                f"{_shape(targets)}, which do not match; make them the same shape")
    if joint == outputs.shape:
        return (f"{spec.name} got targets of shape {_shape(targets)} for outputs of shape "
                f"{_shape(outputs)}: the targets are broadcast to every row; give one target per "
                f"output")
    fix = "give the outputs and the targets the same shape"
    if outputs.shape == targets.shape + (1,):
        fix = ("squeeze the outputs (outputs.squeeze(-1)) or unsqueeze the targets "
               "(targets.unsqueeze(-1))")
    elif targets.shape == outputs.shape + (1,):
        fix = "squeeze the targets (targets.squeeze(-1))"
    return (f"{spec.name} got outputs of shape {_shape(outputs)} and targets of shape "
            f"{_shape(targets)}: they broadcast to {tuple(joint)}, comparing every output with every "
            f"target, and the model trains to nonsense; {fix}")


def _indexed(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> Optional[str]:
    if outputs.dim() < 2:
        return None
    if targets.is_floating_point():
        if targets.shape == outputs.shape:
            return None
        return _one_hot_width(outputs, targets) or (
            f"{spec.name} got class probabilities of shape {_shape(targets)} for outputs of shape "
            f"{_shape(outputs)}; give one probability per class, or class indices of shape "
            f"{_shape(outputs[:, 0])}")
    if outputs.shape[1] == 1 and spec.kind == "cross_entropy":
        return (f"{spec.name} got one output column {_shape(outputs)}: a softmax over a single "
                f"class is always 1, so the loss is always 0; output one logit per class (2 for a "
                f"binary task) or use BCEWithLogitsLoss on the single logit")
    expected = outputs.shape[:1] + outputs.shape[2:]
    if targets.shape == expected:
        return None
    fix = "targets.squeeze(1)" if targets.shape == expected[:1] + (1,) + expected[1:] else \
        "class indices, one per example"
    return (f"{spec.name} got class indices of shape {_shape(targets)} for outputs of shape "
            f"{_shape(outputs)}: it needs shape {tuple(expected)}; pass {fix}")


_RULES: Tuple[Tuple[Tuple[str, ...], Callable[[LossSpec, torch.Tensor, torch.Tensor],
                                              Optional[str]]], ...] = (
    (ELEMENTWISE, _elementwise),
    (INDEXED, _indexed),
)


def shape_mismatch(spec: Optional[LossSpec], outputs: Any, targets: Any) -> Optional[str]:
    """One line naming both shapes and the fix when they do not fit the loss; else None."""
    if spec is None or not isinstance(outputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return None
    for kinds, rule in _RULES:
        if spec.kind in kinds:
            return rule(spec, outputs, targets)
    return None


def softmax_plateau(spec: Optional[LossSpec], outputs: Any) -> Optional[float]:
    """ln(e + C - 1) - 1 when CrossEntropyLoss is given probabilities (a softmax before it); else None.

    Cross-entropy on probabilities p applies a second softmax: with p one-hot, the best it can do,
    the loss is -log(e / (e + C - 1)). Training stalls there with 100% accuracy.
    """
    if spec is None or spec.kind != "cross_entropy" or not isinstance(outputs, torch.Tensor):
        return None
    if outputs.dim() < 2 or outputs.shape[1] < 2 or not outputs.is_floating_point():
        return None
    values = outputs.detach()
    if bool((values < 0).any()) or bool((values > 1).any()):
        return None
    if not bool(((values.sum(dim=1) - 1).abs() <= PROBABILITY_TOLERANCE).all()):
        return None
    classes = outputs.shape[1]
    return math.log(math.e + classes - 1) - 1


def softmax_message(plateau: float, classes: int) -> str:
    return (f"the outputs are probabilities (every row sums to 1): a softmax before "
            f"CrossEntropyLoss, which applies log_softmax itself. The loss starts at ln {classes} "
            f"as expected but cannot go below ln(e + C - 1) - 1 = {plateau:.4g} for C = {classes}, "
            f"where it plateaus with 100% accuracy; return the raw logits (or use NLLLoss on "
            f"log_softmax)")


def scored(loss_fn: Any, outputs: Any, targets: Any,
           spec: Optional[LossSpec]) -> Tuple[torch.Tensor, Optional[str]]:
    """The loss and the shape mismatch, if any; a mismatch the loss rejects is raised as one line."""
    mismatch = shape_mismatch(spec, outputs, targets)
    try:
        with warnings.catch_warnings():
            if mismatch is not None:  # PyTorch's broadcasting warning says less than the mismatch
                warnings.simplefilter("ignore", UserWarning)
            return compute_loss(loss_fn, outputs, targets), mismatch
    except NNCheckError as error:
        if mismatch is None:
            raise
        raise NNCheckError(mismatch) from error


def unlabelled(spec: Optional[LossSpec], targets: Any) -> Optional[str]:
    """The line for a batch whose every class target is ignore_index (a nan loss); else None."""
    if spec is None or spec.kind not in ("cross_entropy", "nll") or \
            not isinstance(targets, torch.Tensor) or targets.is_floating_point() or \
            targets.numel() == 0:
        return None
    ignored = spec.option("ignore_index")
    if not bool((targets == ignored).all()):
        return None
    return (f"every target is ignore_index ({ignored}): the loss is undefined (nan) and there is "
            f"nothing to learn; pass a batch with at least one labelled example")
