"""check_gradients: numerical gradient checking of inputs *and* parameters, done right.

The order of work per check: one analytic pass (forward + backward, decisions recorded once to
learn whether the forward has kinks at all), one more forward from the same seed to prove the
forward deterministic, then two perturbed forwards per probe. Kink recording is paid for only
when the analytic pass saw a decision op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch

from ..errors import NNCheckError
from ..reports import GradientEntry, GradientReport, tier
from .finite_differences import (DEFAULT_EPS, FAILURE_THRESHOLD, SUPPORTED_DTYPES,
                                 central_difference, noise_floor, relative_error)
from .kinks import DecisionRecord
from .probes import DEFAULT_COORDS, DEFAULT_DIRECTIONS, Probe, ProbeSampler
from .seeded import preserved_rng_state
from .subject import CheckedTensor, Subject

# A ratio of regularization to data gradient norm above this means a check of their sum would be
# dominated by the regularization term, and would pass a wrong data gradient.
REGULARIZATION_DOMINATES = 10.0

# Kink crossings are replaced by fresh probes up to this many times the requested probe count.
REPLACEMENT_BUDGET = 3

NONDETERMINISTIC = (
    "nondeterministic forward: two evaluations of fn from the same seed gave different outputs, "
    "so no finite difference can be trusted. Usual causes: randomness from a torch.Generator of "
    "your own, state kept between calls (counters, caches, in-place updates of attributes that "
    "are not buffers), nondeterministic GPU kernels (torch.use_deterministic_algorithms(True)), "
    "or time- or data-dependent code paths.")


@dataclass
class _Analytic:
    gradients: List[torch.Tensor]
    connected: List[bool]  # whether autograd reached the tensor at all
    output_scale: float
    has_decisions: bool


def _analytic_pass(subject: Subject) -> Tuple[_Analytic, List[torch.Tensor]]:
    record = DecisionRecord()
    with torch.enable_grad():
        outputs = subject.outputs(record, detect_randomness=True)
        for position, output in enumerate(outputs):
            if not torch.isfinite(output).all():
                bad = "NaN" if torch.isnan(output).any() else "Inf"
                raise NNCheckError(f"fn's output[{position}] contains {bad} at the checked point; "
                                   f"fix the forward or check at another input")
        scalar = subject.scalar(outputs)
        if not scalar.requires_grad:
            raise NNCheckError("fn's output does not depend on any checked tensor (no autograd "
                               "graph); make sure the forward uses its inputs and parameters")
        tensors = [c.tensor for c in subject.checked]
        gradients = torch.autograd.grad(scalar, tensors, allow_unused=True)
    result = []
    for checked, gradient in zip(subject.checked, gradients):
        gradient = torch.zeros_like(checked.tensor) if gradient is None else gradient.detach()
        if not torch.isfinite(gradient).all():
            bad = "NaN" if torch.isnan(gradient).any() else "Inf"
            raise NNCheckError(f"the analytic gradient of {checked.name} contains {bad}: the "
                               f"backward produces non-finite values for a finite output")
        result.append(gradient)
    detached = [o.detach() for o in outputs]
    connected = [gradient is not None for gradient in gradients]
    return _Analytic(result, connected, subject.output_scale(detached), len(record) > 0), detached


def _is_deterministic(subject: Subject, reference: List[torch.Tensor]) -> bool:
    """Whether a second forward from the same seed repeats the first, up to round-off.

    The first ran with autograd on and this one with it off, which may pick other kernels; a
    difference of a few ulps is harmless to a central difference, a new dropout mask is not.
    """
    with torch.no_grad():
        again = subject.outputs()
    tolerance = 1e3 * torch.finfo(subject.dtype).eps
    return len(again) == len(reference) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=tolerance,
                                              atol=tolerance * float(b.abs().max()))
        for a, b in zip(again, reference))


def _evaluate(subject: Subject, checked: CheckedTensor, probe: Probe, step: float,
              record_decisions: bool) -> Tuple[float, bool]:
    """The central difference along ``probe`` and whether it crossed a kink."""
    tensor = checked.tensor
    values, records = [], []
    with torch.no_grad():
        saved = probe.save(tensor)
        try:
            for sign in (1.0, -1.0):
                probe.place(tensor, saved, sign * step)
                record = DecisionRecord() if record_decisions else None
                values.append(float(subject.scalar(subject.outputs(record))))
                records.append(record)
        finally:
            probe.restore(tensor, saved)
    crossed = record_decisions and not records[0].same_as(records[1])
    return central_difference(values[0], values[1], step), crossed


def _check_tensor(subject: Subject, checked: CheckedTensor, gradient: torch.Tensor,
                  sampler: ProbeSampler, step: float, floor: float, record_decisions: bool,
                  threshold: float, part: str) -> GradientEntry:
    worst = (-1.0, "", 0.0, 0.0)
    counted = crossed = 0
    # Drawn lazily: directions are drawn after the coordinates, avoiding those seen on kinks.
    initial, replacements = sampler.initial(), []
    budget = REPLACEMENT_BUDGET * sampler.requested
    while True:
        probe = replacements.pop(0) if replacements else next(initial, None)
        if probe is None:
            break
        numeric, kink = _evaluate(subject, checked, probe, step, record_decisions)
        if kink:
            crossed += 1
            replacement = sampler.replacement(probe) if counted + crossed < budget else None
            if replacement is not None:
                replacements.append(replacement)
            continue
        counted += 1
        analytic = probe.analytic(gradient)
        error = relative_error(analytic, numeric, floor)
        if not math.isfinite(numeric):
            error = math.inf
        if error > worst[0]:
            worst = (error, probe.label, analytic, numeric)
    conclusive = counted >= max(1, math.ceil(sampler.requested / 2))
    verdict = tier(worst[0], threshold) if conclusive else "inconclusive"
    return GradientEntry(name=checked.name, shape=sampler.shape, probes=counted,
                         kinks_crossed=crossed, max_rel_error=max(worst[0], 0.0),
                         worst_probe=worst[1], analytic=worst[2], numeric=worst[3],
                         verdict=verdict, part=part)


def _check_subject(subject: Subject, step: float, coords: int, directions: int,
                   kinks: str, part: str) -> Tuple[Optional[List[GradientEntry]], List[torch.Tensor]]:
    analytic, outputs = _analytic_pass(subject)
    if not _is_deterministic(subject, outputs):
        return None, analytic.gradients
    floor = noise_floor(analytic.output_scale, step, subject.dtype)
    record_decisions = analytic.has_decisions and kinks == "skip"
    generator = torch.Generator().manual_seed(subject.seed)
    entries = []
    for checked, gradient, connected in zip(subject.checked, analytic.gradients,
                                            analytic.connected):
        if part == "regularization" and not connected:
            continue  # a penalty on the weights says nothing about the inputs
        sampler = ProbeSampler(checked.name, checked.tensor, coords, directions, generator)
        entries.append(_check_tensor(subject, checked, gradient, sampler, step, floor,
                                     record_decisions, FAILURE_THRESHOLD[subject.dtype], part))
    return entries, analytic.gradients


def _regularization_call(regularization: Callable, subject: Subject) -> Callable:
    if subject.module is not None:
        module = subject.module
        return lambda *inputs: regularization(module)
    return regularization


def _norm(gradients: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in gradients))


def check_gradients(fn: Any, *inputs: Any, regularization: Optional[Callable] = None,
                    seed: int = 0, eps: Optional[float] = None, dtype: torch.dtype = torch.float64,
                    coords: int = DEFAULT_COORDS, directions: int = DEFAULT_DIRECTIONS,
                    kinks: str = "skip") -> GradientReport:
    """Compare the analytic gradient of ``fn`` with central differences, per input and parameter.

    ``fn`` is an ``nn.Module`` (its parameters are checked too), an ``autograd.Function`` subclass
    or any callable returning a tensor or tuple of tensors; inputs that require grad are checked.
    Every evaluation starts from ``seed``, so dropout is checked rather than switched off.
    ``coords`` coordinates (all when fewer) and ``directions`` random signed directions are probed
    per tensor. ``kinks="skip"`` excludes probes whose forward decisions (ReLU signs, max winners,
    ``where`` conditions) differ between f(x+h) and f(x-h); ``kinks="count"`` keeps them.
    With ``regularization``, ``fn`` is the data loss and the regularization, called as
    ``regularization(module)`` for a module or ``regularization(*inputs)`` otherwise, is checked
    apart from it. The caller's objects and random states are never changed.
    """
    if dtype not in SUPPORTED_DTYPES:
        raise NNCheckError(f"dtype={dtype} is not supported for gradient checks; use torch.float64 "
                           f"(recommended) or torch.float32")
    if kinks not in ("skip", "count"):
        raise NNCheckError(f"kinks={kinks!r} is not an option; use 'skip' or 'count'")
    if coords < 0 or directions < 0 or coords + directions == 0:
        raise NNCheckError("coords and directions must be >= 0 and not both 0")
    step = DEFAULT_EPS[dtype] if eps is None else float(eps)
    if not step > 0:
        raise NNCheckError(f"eps={eps} must be a positive step size, e.g. 1e-6 in float64")
    report = GradientReport(entries=[], dtype=str(dtype).replace("torch.", ""), eps=step,
                            threshold=FAILURE_THRESHOLD[dtype],
                            low_precision=dtype != torch.float64)
    if report.low_precision:
        report.notes.append("low precision: checked in float32, so errors below 1e-2 cannot be "
                            "told from round-off; check in float64 when the layer allows it")
    with preserved_rng_state():
        subject = Subject(fn, inputs, dtype, seed)
        entries, data_gradients = _check_subject(subject, step, coords, directions, kinks, "data")
        if entries is None:
            report.nondeterministic = NONDETERMINISTIC
            return report
        report.entries = entries
        if regularization is not None:
            reg_subject = subject.with_function(_regularization_call(regularization, subject))
            reg_entries, reg_gradients = _check_subject(reg_subject, step, coords, directions,
                                                        kinks, "regularization")
            if reg_entries is None:
                report.nondeterministic = NONDETERMINISTIC
                return report
            report.entries += reg_entries
            data_norm = _norm(data_gradients)
            report.regularization_ratio = _norm(reg_gradients) / data_norm if data_norm else math.inf
            if report.regularization_ratio > REGULARIZATION_DOMINATES:
                report.notes.append(
                    f"regularization dominates: its gradient norm is "
                    f"{report.regularization_ratio:.3g}x the data gradient's, so a check of their "
                    f"sum would hide a wrong data gradient; both were checked apart")
    inconclusive = [e.name for e in report.entries if e.verdict == "inconclusive"]
    if inconclusive:
        report.notes.append(
            f"inconclusive: most probes of {', '.join(inconclusive)} crossed kinks; check with "
            f"fewer data points or a smaller eps so fewer ReLU/max decisions sit within eps")
    return report


def assert_gradients(fn: Any, *inputs: Any, **options: Any) -> GradientReport:
    """``check_gradients`` that raises ``AssertionError(report.render())`` when the check fails.

    An inconclusive report (most probes crossed kinks) is returned, not raised: it is neither a
    pass nor a failure, and ``report.passed`` is False.
    """
    report = check_gradients(fn, *inputs, **options)
    if report.failed:
        raise AssertionError(report.render())
    return report
