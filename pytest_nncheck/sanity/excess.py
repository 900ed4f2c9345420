"""Why a loss at init is too high: a constant output, an offset, or a scale.

Each has its own fix, and "over-confident, scale down the last layer" is right only for the third.
The outputs split into the part every example shares (the batch mean: an offset, such as a large
last bias) and the part that varies between examples (the spread). The loss is evaluated on each
part alone, so the figures are measured losses of the same function, not a formula's estimate:

- constant: the spread is zero, every example gets the same output; the input does not reach it.
- offset: the shared part alone scores further above the expectation than the spread does.
- scale: the spread alone does (logits that vary too much between examples: over-confident).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .evaluation import compute_loss
from .losses import LossSpec

# Spread below this fraction of the outputs' magnitude is round-off: the output is constant.
CONSTANT_SPREAD = 1e-6


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _probability_logits(t: torch.Tensor) -> torch.Tensor:
    return torch.logit(t.clamp(1e-7, 1 - 1e-7))


# Per loss kind: (to a space where a shift and a spread are meaningful, back to the loss's input).
# Log-probabilities are logits up to a per-row constant; probabilities go through their logits.
Transform = Callable[[torch.Tensor], torch.Tensor]
SPACES: Dict[str, Tuple[Transform, Transform]] = {
    **{kind: (_identity, _identity) for kind in ("cross_entropy", "bce_logits", "multilabel_soft_margin",
                                                 "soft_margin", "multi_margin", "mse", "l1",
                                                 "smooth_l1", "huber")},
    "nll": (_identity, lambda t: F.log_softmax(t, dim=1)),
    "bce": (_probability_logits, torch.sigmoid),
}

REGRESSION = ("mse", "l1", "smooth_l1", "huber")
# Losses for which expected='prior' has a value (hard class targets, or binary targets).
PRIOR_WITH_CLASS_INDICES = ("cross_entropy", "nll")
PRIOR_ALWAYS = ("bce_logits", "bce", "multilabel_soft_margin")


def _offset_fix(spec: LossSpec, targets: Any) -> str:
    if spec.kind in REGRESSION:
        return "start the last bias at 0 or at the target mean"
    class_indices = isinstance(targets, torch.Tensor) and not targets.is_floating_point()
    if spec.kind in PRIOR_ALWAYS or (spec.kind in PRIOR_WITH_CLASS_INDICES and class_indices):
        return "set the last layer's bias to 0 (or to the log class prior, with expected='prior')"
    return "set the last layer's bias to 0"


@dataclass
class ExcessCause:
    """The cause of a loss above its expectation, with the figures the message quotes."""

    kind: str
    offset_loss: float
    spread_loss: float
    spread: float
    message: str


def excess_cause(spec: Optional[LossSpec], loss_fn: Any, outputs: Any, targets: Any,
                 expected: float) -> Optional[ExcessCause]:
    """Tell constant, offset and scale apart; None when the loss's outputs cannot be split."""
    if spec is None or spec.kind not in SPACES or not isinstance(outputs, torch.Tensor) \
            or outputs.dim() < 1 or outputs.shape[0] < 2:
        return None
    to_space, back = SPACES[spec.kind]
    values = to_space(outputs.detach())
    shared = values.mean(dim=0, keepdim=True)
    centred = values - shared
    offset_loss = float(compute_loss(loss_fn, back(shared.expand_as(values)), targets))
    spread_loss = float(compute_loss(loss_fn, back(centred), targets))
    spread = float(centred.double().pow(2).mean().sqrt())
    magnitude = float(values.double().abs().max())
    if spread <= CONSTANT_SPREAD * max(magnitude, 1e-12):
        return ExcessCause("constant", offset_loss, spread_loss, spread,
                           f"the output is the same for every example (std across examples "
                           f"{spread:.2g}), so the loss {offset_loss:.4g} comes from that constant "
                           f"alone: the input does not reach the output (dead ReLUs after a large "
                           f"negative bias, a zero or detached hidden layer, a forward that ignores "
                           f"its input)")
    if offset_loss >= spread_loss:
        return ExcessCause("offset", offset_loss, spread_loss, spread,
                           f"the outputs share a large offset: the part common to every example "
                           f"scores {offset_loss:.4g} on its own, against the expected "
                           f"{expected:.4g} (what varies between examples scores {spread_loss:.4g}); "
                           f"{_offset_fix(spec, targets)}")
    return ExcessCause("scale", offset_loss, spread_loss, spread,
                       f"over-confident at init: the outputs vary between examples with std "
                       f"{spread:.3g}, and that spread alone scores {spread_loss:.4g} against the "
                       f"expected {expected:.4g} (the shared offset scores {offset_loss:.4g}); scale "
                       f"down the last layer (weights x0.01, bias 0)")
