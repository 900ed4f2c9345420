"""check_initial_loss: the loss at initialisation is what the loss function predicts.

Karpathy's recipe, "verify loss @ init": a softmax classifier over C classes must start at ln C.
A loss far above it means an over-confident init (logits too large); far below it means targets
leak into the inputs or the loss is not the one you think (NLLLoss on raw logits).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from ..errors import NNCheckError
from ..gradients.seeded import seeded
from ..reports import CheckFailed, InitialLossReport
from .evaluation import as_tuple, compute_loss, forward, private_copy
from .losses import REGRESSION, LossSpec, describe_loss, expected_at_init, prior_entropy

DEFAULT_RTOL = 0.1

Regularization = Union[None, float, Callable[[nn.Module], torch.Tensor]]


def _penalty(model: nn.Module, regularization: Regularization) -> Optional[float]:
    if regularization is None:
        return None
    if callable(regularization):
        value = regularization(model)
        return float(value.detach() if isinstance(value, torch.Tensor) else value)
    strength = float(regularization)
    return 0.5 * strength * sum(float((p.detach().double() ** 2).sum())
                                for p in model.parameters() if p.requires_grad)


def _expected(spec: Optional[LossSpec], loss_fn: Any, outputs: torch.Tensor, targets: Any,
              expected: Any) -> float:
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return float(expected)
    name = getattr(type(loss_fn), "__name__", "loss_fn")
    if spec is None:
        raise NNCheckError(f"cannot infer the expected initial loss of {name}: pass expected=<value> "
                           f"(what an uninformed model scores) or expected='prior'")
    if expected == "prior":
        return prior_entropy(spec, outputs, targets)
    if expected is not None:
        raise NNCheckError(f"expected={expected!r} must be a number, 'prior' or None")
    return expected_at_init(spec, outputs, targets)


def _diagnose(report: InitialLossReport, spec: Optional[LossSpec], outputs: torch.Tensor) -> None:
    tolerance = report.rtol * abs(report.expected) + 1e-6
    if spec is not None and spec.kind in ("nll", "kl_div") and outputs.dim() > 1:
        normaliser = float(torch.logsumexp(outputs.double(), dim=1 if spec.kind == "nll" else -1)
                           .abs().mean())
        if normaliser > 1e-3:
            report.problems.append(
                f"{spec.name} expects log-probabilities but the outputs are not normalised "
                f"(|logsumexp| = {normaliser:.3g}, not 0): add log_softmax to the model or use "
                f"CrossEntropyLoss on the raw logits")
    if report.observed > report.expected + tolerance:
        excess = ""
        if spec is not None and spec.kind == "cross_entropy":
            classes = outputs.shape[1]
            excess = (f"; logits of std {report.output_scale:.3g} predict an excess of about "
                      f"{report.output_scale ** 2 * (1 - 1 / classes) / 2:.3g}")
        report.problems.append(
            f"over-confident at init: loss {report.observed:.4g} is above the expected "
            f"{report.expected:.4g}{excess}; scale down the last layer (weights x0.01, bias 0)")
    elif report.observed < report.expected - tolerance:
        report.problems.append(
            f"loss {report.observed:.4g} is far below what an uninformed model scores "
            f"({report.expected:.4g}): the targets may leak into the inputs, or the loss is not "
            f"the one you think (NLLLoss on raw logits, a wrong reduction)")


def check_initial_loss(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, *,
                       expected: Union[None, float, str] = None, rtol: float = DEFAULT_RTOL,
                       regularization: Regularization = None) -> InitialLossReport:
    """Compare the loss of ``model`` at init with what ``loss_fn`` predicts for an uninformed model.

    ``expected`` is inferred from the loss (ln C for cross-entropy, ln 2 for BCE, ...) unless given
    as a number or ``'prior'`` (the entropy of the class prior, for an init that sets the last
    bias to the log prior). The model runs on a private copy in its current train/eval mode, from
    a fixed seed, without gradients. ``regularization`` (a callable of the model returning the
    penalty, or a weight-decay strength) is kept out of the comparison and must raise the loss.
    """
    if rtol <= 0:
        raise NNCheckError(f"rtol={rtol} must be positive, e.g. 0.1")
    spec = describe_loss(loss_fn)
    copy = private_copy(model)
    with seeded(0), torch.no_grad():
        outputs = forward(copy, as_tuple(inputs))
        observed = float(compute_loss(loss_fn, outputs, targets))
        penalty = _penalty(copy, regularization)
    value = _expected(spec, loss_fn, outputs, targets, expected)
    mean_initialised = None
    if expected is None and spec is not None and spec.kind in REGRESSION:
        # Karpathy's "init well": a regression head whose bias starts at the target mean.
        centred = targets - targets.double().mean(dim=0, keepdim=True).to(targets.dtype)
        mean_initialised = expected_at_init(spec, outputs, centred)
        if abs(observed - mean_initialised) < abs(observed - value):
            value = mean_initialised
    name = spec.name if spec is not None else getattr(type(loss_fn), "__name__", "loss")
    report = InitialLossReport(loss=name, expected=value, observed=observed, rtol=rtol,
                               output_scale=float(outputs.detach().double().std())
                               if outputs.numel() > 1 else 0.0)
    if expected == "prior":
        report.notes.append("expected: entropy of the class prior in the targets")
    if mean_initialised is not None and value == mean_initialised:
        report.notes.append("expected: the loss of predicting the target mean (a last bias "
                            "initialised to it), which is closer than predicting zero")
    _diagnose(report, spec, outputs)
    if penalty is not None:
        report.with_regularization = observed + penalty
        report.notes.append("regularization is left out of the comparison (the expectation is "
                            "for the data loss alone) and reported on its own")
        if not penalty > 0:
            report.problems.append(f"regularization did not raise the loss (penalty {penalty:.3g}): "
                                   f"it is zero or not applied to any parameter")
    return report


def assert_initial_loss(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                        **options: Any) -> InitialLossReport:
    """``check_initial_loss`` that raises ``AssertionError(report.render())`` when it fails."""
    report = check_initial_loss(model, inputs, targets, loss_fn, **options)
    if not report.passed:
        raise CheckFailed(report)
    return report
