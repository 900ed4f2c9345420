"""What each common loss predicts for an uninformed model, and the lowest value it can reach.

"Uninformed" means the output a small random init gives on average: zero logits (uniform class
probabilities) for classification losses on logits, probabilities of 0.5 for BCELoss, uniform
log-probabilities for NLLLoss and KLDivLoss, and zero for regression. The formulas follow PyTorch's
implementations, reductions included; ``tests/sanity`` compares every one with a brute-force
evaluation of the loss itself.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NNCheckError

LN2 = math.log(2.0)

_MODULE_KINDS = {
    nn.CrossEntropyLoss: "cross_entropy", nn.NLLLoss: "nll", nn.BCEWithLogitsLoss: "bce_logits",
    nn.BCELoss: "bce", nn.MultiLabelSoftMarginLoss: "multilabel_soft_margin",
    nn.SoftMarginLoss: "soft_margin", nn.MultiMarginLoss: "multi_margin", nn.MSELoss: "mse",
    nn.L1Loss: "l1", nn.SmoothL1Loss: "smooth_l1", nn.HuberLoss: "huber", nn.KLDivLoss: "kl_div",
    nn.PoissonNLLLoss: "poisson_nll",
}
_FUNCTION_KINDS = {
    F.cross_entropy: "cross_entropy", F.nll_loss: "nll",
    F.binary_cross_entropy_with_logits: "bce_logits", F.binary_cross_entropy: "bce",
    F.multilabel_soft_margin_loss: "multilabel_soft_margin", F.soft_margin_loss: "soft_margin",
    F.multi_margin_loss: "multi_margin", F.mse_loss: "mse", F.l1_loss: "l1",
    F.smooth_l1_loss: "smooth_l1", F.huber_loss: "huber", F.kl_div: "kl_div",
    F.poisson_nll_loss: "poisson_nll",
}
_OPTION_NAMES = ("weight", "ignore_index", "label_smoothing", "reduction", "pos_weight", "margin",
                 "p", "beta", "delta", "log_input", "log_target", "full")
_DEFAULTS: Dict[str, Any] = {"weight": None, "ignore_index": -100, "label_smoothing": 0.0,
                             "reduction": "mean", "pos_weight": None, "margin": 1.0, "p": 1,
                             "beta": 1.0, "delta": 1.0, "log_input": True, "log_target": False,
                             "full": False}
CLASSIFICATION = ("cross_entropy", "nll", "multi_margin")
BINARY = ("bce_logits", "bce", "multilabel_soft_margin", "soft_margin")
REGRESSION = ("mse", "l1", "smooth_l1", "huber")


@dataclass
class LossSpec:
    """A recognised loss: its kind, a display name, and the options that change its value."""

    kind: str
    name: str
    options: Dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        return self.options.get(name, _DEFAULTS[name])


def describe_loss(loss_fn: Any) -> Optional[LossSpec]:
    """The spec of a loss module, a ``torch.nn.functional`` loss or a ``partial`` of one; else None."""
    for cls, kind in _MODULE_KINDS.items():
        if type(loss_fn) is cls:
            options = {name: getattr(loss_fn, name) for name in _OPTION_NAMES
                       if hasattr(loss_fn, name)}
            return LossSpec(kind, cls.__name__, _on_cpu(options))
    keywords: Dict[str, Any] = {}
    function = loss_fn
    while isinstance(function, functools.partial):
        keywords = {**function.keywords, **keywords}
        if function.args:
            return None
        function = function.func
    kind = _FUNCTION_KINDS.get(function)
    if kind is None:
        return None
    return LossSpec(kind, f"F.{function.__name__}", _on_cpu(keywords))


def _on_cpu(options: Dict[str, Any]) -> Dict[str, Any]:
    """Tensor options (class weights, pos_weight) as CPU copies: the formulas run on the CPU."""
    return {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in options.items()}


def _cpu(*tensors: torch.Tensor) -> tuple:
    return tuple(t.detach().cpu() if isinstance(t, torch.Tensor) else t for t in tensors)


def _reduce(values: torch.Tensor, reduction: str, denominator: Optional[float] = None) -> float:
    if reduction == "sum":
        return float(values.sum())
    if reduction == "mean":
        return float(values.sum() / (values.numel() if denominator is None else denominator))
    raise NNCheckError(f"reduction={reduction!r}: reduce the loss to a scalar ('mean' or 'sum') "
                       f"or pass expected=")


def _class_weights(spec: LossSpec, classes: int, device: torch.device) -> torch.Tensor:
    weight = spec.option("weight")
    if weight is None:
        return torch.ones(classes, dtype=torch.float64, device=device)
    return weight.detach().to(device=device, dtype=torch.float64)


def _index_weights(spec: LossSpec, targets: torch.Tensor, classes: int) -> torch.Tensor:
    """Per-element weight of the target class, zero where the target is ignored."""
    weights = _class_weights(spec, classes, targets.device)
    ignored = targets == spec.option("ignore_index")
    safe = targets.masked_fill(ignored, 0).long()
    return weights[safe].masked_fill(ignored, 0.0)


def expected_at_init(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The loss an uninformed output gives on these targets, with PyTorch's reduction."""
    outputs, targets = _cpu(outputs, targets)
    reduction = spec.option("reduction")
    if spec.kind in ("cross_entropy", "nll"):
        classes = outputs.shape[1] if outputs.dim() > 1 else outputs.shape[0]
        log_c = math.log(classes)
        smoothing = spec.option("label_smoothing") if spec.kind == "cross_entropy" else 0.0
        weights = _class_weights(spec, classes, outputs.device)
        if targets.is_floating_point():
            soft = targets.double().movedim(1, -1) if targets.dim() > 1 else targets.double()
            soft = soft * (1 - smoothing) + smoothing / classes
            per_element = log_c * (soft * weights).sum(-1)
            return _reduce(per_element, reduction)
        element_weights = _index_weights(spec, targets, classes)
        kept = float((targets != spec.option("ignore_index")).sum())
        total = float(element_weights.sum())
        smooth_sum = kept * float(weights.mean()) * log_c
        nll_sum = total * log_c
        if reduction == "sum":
            return (1 - smoothing) * nll_sum + smoothing * smooth_sum
        if reduction != "mean":
            _reduce(element_weights, reduction)
        if total == 0:
            raise NNCheckError("every target is ignore_index: the loss is undefined (nan); pass a "
                               "batch with at least one labelled example")
        return (1 - smoothing) * log_c + smoothing * smooth_sum / total
    if spec.kind in ("bce_logits", "bce"):
        y = targets.double()
        per_element = torch.full_like(y, LN2)
        if spec.kind == "bce_logits" and spec.option("pos_weight") is not None:
            per_element = LN2 * (spec.option("pos_weight").double() * y + 1 - y)
        if spec.option("weight") is not None:
            per_element = per_element * spec.option("weight").double()
        return _reduce(per_element.expand_as(y), reduction)
    if spec.kind == "multilabel_soft_margin":
        classes = outputs.shape[-1]
        weights = _class_weights(spec, classes, outputs.device)
        per_sample = LN2 * weights.mean() * torch.ones(outputs.shape[0], dtype=torch.float64)
        return _reduce(per_sample, reduction)
    if spec.kind == "soft_margin":
        return _reduce(torch.full(targets.shape, LN2, dtype=torch.float64), reduction)
    if spec.kind == "multi_margin":
        classes = outputs.shape[-1]
        weights = _class_weights(spec, classes, outputs.device)
        per_sample = weights[targets.long()] * spec.option("margin") ** spec.option("p") \
            * (classes - 1) / classes
        return _reduce(per_sample, reduction)
    y = targets.double()
    if spec.kind == "mse":
        return _reduce(y ** 2, reduction)
    if spec.kind == "l1":
        return _reduce(y.abs(), reduction)
    if spec.kind == "smooth_l1":
        beta = spec.option("beta")
        a = y.abs()
        return _reduce(torch.where(a < beta, 0.5 * a ** 2 / beta, a - 0.5 * beta)
                       if beta > 0 else a, reduction)
    if spec.kind == "huber":
        delta = spec.option("delta")
        a = y.abs()
        return _reduce(torch.where(a <= delta, 0.5 * a ** 2, delta * (a - 0.5 * delta)), reduction)
    if spec.kind == "kl_div":
        classes = outputs.shape[-1]
        log_q = -math.log(classes)
        if spec.option("log_target"):
            pointwise = y.exp() * (y - log_q)
        else:
            pointwise = torch.xlogy(y, y) - y * log_q
        if reduction == "batchmean":
            return float(pointwise.sum() / outputs.shape[0])
        return _reduce(pointwise, reduction)
    if spec.kind == "poisson_nll":
        if not spec.option("log_input"):
            raise NNCheckError("PoissonNLLLoss(log_input=False) has no uninformed output; pass "
                               "expected=")
        pointwise = torch.ones_like(y)
        if spec.option("full"):
            stirling = y * torch.log(y.clamp(min=1)) - y + 0.5 * torch.log(2 * math.pi * y.clamp(min=1))
            pointwise = pointwise + torch.where(y > 1, stirling, torch.zeros_like(y))
        return _reduce(pointwise, reduction)
    raise NNCheckError(f"no initial-loss formula for {spec.name}; pass expected=")


def _entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -torch.xlogy(p, p).sum(dim)


def loss_floor(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The lowest value the loss can reach on these targets (0 unless targets are soft/smoothed)."""
    outputs, targets = _cpu(outputs, targets)
    reduction = spec.option("reduction")
    if spec.kind == "cross_entropy":
        classes = outputs.shape[1] if outputs.dim() > 1 else outputs.shape[0]
        smoothing = spec.option("label_smoothing")
        if targets.is_floating_point():
            soft = targets.double().movedim(1, -1) if targets.dim() > 1 else targets.double()
            return _reduce(_entropy(soft * (1 - smoothing) + smoothing / classes), reduction)
        if smoothing == 0:
            return 0.0
        top = 1 - smoothing + smoothing / classes
        rest = smoothing / classes
        per_element = -(top * math.log(top) + (classes - 1) * rest * math.log(rest))
        kept = float((targets != spec.option("ignore_index")).sum())
        return per_element * (kept if reduction == "sum" else 1.0)
    if spec.kind in ("bce_logits", "bce", "multilabel_soft_margin") and targets.is_floating_point():
        y = targets.double()
        per_element = -(torch.xlogy(y, y) + torch.xlogy(1 - y, 1 - y))
        return _reduce(per_element, reduction) if spec.kind != "multilabel_soft_margin" \
            else _reduce(per_element.mean(-1), reduction)
    if spec.kind == "poisson_nll" and spec.option("log_input"):
        y = targets.double()
        return _reduce(y - torch.xlogy(y, y), reduction)
    return 0.0


def prior_entropy(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The loss of a model that predicts the class prior of ``targets`` (Karpathy's 'init well')."""
    outputs, targets = _cpu(outputs, targets)
    if spec.kind in ("cross_entropy", "nll") and not targets.is_floating_point():
        classes = outputs.shape[1] if outputs.dim() > 1 else outputs.shape[0]
        kept = targets[targets != spec.option("ignore_index")].long()
        prior = torch.bincount(kept.flatten(), minlength=classes).double()
        prior = prior / prior.sum()
        return float(_entropy(prior))
    if spec.kind in ("bce_logits", "bce", "multilabel_soft_margin"):
        rate = targets.double().reshape(-1, targets.shape[-1]).mean(0).clamp(1e-12, 1 - 1e-12)
        return float((-(rate * rate.log() + (1 - rate) * (1 - rate).log())).mean())
    raise NNCheckError(f"expected='prior' needs class targets for a classification loss, not "
                       f"{spec.name}; pass a number as expected=")


def accuracy(spec: LossSpec, outputs: torch.Tensor, targets: torch.Tensor) -> Optional[float]:
    """Training accuracy for classification losses with hard targets; None otherwise."""
    with torch.no_grad():
        if spec.kind in CLASSIFICATION and not targets.is_floating_point():
            keep = targets != spec.option("ignore_index")
            predicted = outputs.argmax(dim=1 if outputs.dim() > 1 else 0)
            return float((predicted == targets)[keep].double().mean())
        if spec.kind in BINARY and _is_hard(targets, spec):
            threshold = 0.5 if spec.kind == "bce" else 0.0
            return float(((outputs > threshold) == (targets > 0)).double().mean())
    return None


def _is_hard(targets: torch.Tensor, spec: LossSpec) -> bool:
    values = torch.unique(targets)
    allowed = (-1.0, 1.0) if spec.kind == "soft_margin" else (0.0, 1.0)
    return bool(all(float(v) in allowed for v in values))
