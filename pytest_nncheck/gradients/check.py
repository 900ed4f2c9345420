"""check_gradients: numerical gradient checking of inputs *and* parameters, done right.

The order of work per part (data loss, regularization, second order): one analytic pass (forward,
backward twice for the contract), one forward at x without gradients (proves the forward
deterministic, records its decisions and finds lower-precision computation), then two forwards per
probe. Only a probe that disagrees costs more: its one-sided confirmation, and, when it fails, the
halving that narrows it down to an entry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch

from ..errors import NNCheckError, NNCheckInternalError
from ..reports import CheckFailed, GradientEntry, GradientReport, tier
from .analytic import analytic_pass
from .constraints import Projection, recognised, resolve
from .diagnosis import constant_factor, kink_summary
from .finite_differences import (DEFAULT_EPS, FAILURE_THRESHOLD, SUPPORTED_DTYPES, noise_floor,
                                 relative_error, resolvable)
from .forward_mode import defines_jvp, jvp_along
from .joint import JOINT_FROM, check_jointly
from .judge import LOWERED_THRESHOLD, Judge, ProbeResult, Tolerance
from .kinks import DecisionRecord
from .localise import narrow, split_around_kinks
from .precision import PrecisionTracer
from .probes import DEFAULT_COORDS, DEFAULT_DIRECTIONS, ProbeSampler
from .second_order import first_derivative
from .seeded import preserved_rng_state
from .subject import Subject

# A ratio of regularization to data gradient norm above this means a check of their sum would be
# dominated by the regularization term, and would pass a wrong data gradient.
REGULARIZATION_DOMINATES = 10.0

# A tensor's probing stops after this many disagreements: it is wrong, and two probes are what it
# takes to tell a constant factor from a scattered error (diagnosis.constant_factor).
ENOUGH_DISAGREEMENTS = 2

# "skip" is the name the first releases gave the default; kinks are now resolved, not skipped.
KINK_MODES = ("resolve", "count", "skip")

# "auto": joint probes over all tensors from JOINT_FROM tensors on, per-tensor probes below.
STRATEGIES = ("auto", "per-tensor", "joint")

NONDETERMINISTIC = (
    "nondeterministic forward: two evaluations of fn from the same seed gave different outputs, "
    "so no finite difference can be trusted. Usual causes: randomness from a torch.Generator of "
    "your own, state kept between calls (counters, caches, in-place updates of attributes that "
    "are not buffers), nondeterministic GPU kernels (torch.use_deterministic_algorithms(True)), "
    "or time- or data-dependent code paths.")


@dataclass
class _Part:
    """What checking one part (data, regularization, second order) found."""

    entries: List[GradientEntry] = field(default_factory=list)
    gradients: List[torch.Tensor] = field(default_factory=list)
    contract: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    nondeterministic: bool = False


@dataclass
class _Options:
    step: float
    coords: int
    directions: int
    kinks: str
    projections: Dict[int, Projection]
    strategy: str = "auto"


def _same(first: List[torch.Tensor], second: List[torch.Tensor], dtype: torch.dtype) -> bool:
    """Equal up to round-off: the grad and no-grad kernels may differ by a few ulps."""
    tolerance = 1e3 * torch.finfo(dtype).eps
    return len(first) == len(second) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=tolerance,
                                              atol=tolerance * float(b.abs().max()) if b.numel() else 0)
        for a, b in zip(first, second))


def _at_x(subject: Subject) -> List[torch.Tensor]:
    """A forward at x without gradients (or with them, for a forward that needs them)."""
    try:
        with torch.no_grad():
            outputs = subject.outputs()
    except NNCheckError:
        # A forward that differentiates inside itself needs grad mode in every evaluation.
        subject.grad_in_forward = True
        outputs = subject.outputs()
    return [o.detach() for o in outputs]


class _Observed:
    """The forward at x as the dispatcher sees it: its decisions, and which checked tensors it
    computes in a lower precision than the check's.

    Observed on first need: a disagreement is what a kink and round-off look like, so a forward
    whose probes all agree never pays for an observing pass. Decisions are wanted only where the
    one-sided slopes differ, and then the precision is found in the same pass; a plain wrong
    gradient needs only the precision, and tracing it alone costs less (0.21 s against 0.36 s
    on torchdiffeq's event-time solver).
    """

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self._record: Optional[DecisionRecord] = None
        self._lowered: Optional[Dict[int, str]] = None

    def _observe(self, decisions: bool) -> None:
        record = DecisionRecord() if decisions else None
        tracer = PrecisionTracer(self.subject.tensors, self.subject.dtype) \
            if self._lowered is None and self.subject.dtype == torch.float64 else None
        watchers = [w for w in (record, tracer) if w is not None]
        if watchers:
            with torch.no_grad():
                self.subject.outputs(watchers)
        if record is not None:
            self._record = record
        if self._lowered is None:
            self._lowered = tracer.lowered if tracer is not None else {}

    @property
    def record(self) -> DecisionRecord:
        if self._record is None:
            self._observe(decisions=True)
        return self._record

    @property
    def lowered(self) -> Dict[int, str]:
        if self._lowered is None:
            self._observe(decisions=False)
        return self._lowered


class _Reprojected:
    """A judge under a second random projection of the outputs, made on first need.

    In single precision round-off hides any error smaller than about 1e-3 of the output's
    scale, and a bug in one entry's gradient is as large as that entry's gradient, which one
    projection of the outputs can make 200x smaller than the largest by chance (x-transformers'
    attention input, corpus part of benchmarks/gradcheck_vs_torch.py). A tensor that passes in
    single precision is probed again under an independent projection, so that such a blind spot
    needs two unlucky draws.
    """

    def __init__(self, subject: Subject, outputs: List[torch.Tensor], first: Judge) -> None:
        self._subject, self._outputs, self._first = subject, outputs, first
        self._judge: Optional[Judge] = None

    def judge(self) -> Judge:
        if self._judge is None:
            other = self._subject.reprojected(1)
            self._judge = Judge(other, analytic_pass(other).gradients,
                                float(other.scalar(self._outputs)),
                                self._first.observe_decisions, self._first.kinks)
        return self._judge


def _disagrees(results: List[ProbeResult]) -> bool:
    return any(r.status == "disagree" for r in results)


def _tolerance(dtype: torch.dtype, step: float, output_scale: float) -> Tolerance:
    return Tolerance(step, FAILURE_THRESHOLD[dtype], noise_floor(output_scale, step, dtype),
                     resolvable(output_scale, step, dtype),
                     measured_noise=dtype != torch.float64)


def _verdict(results: List[ProbeResult], tolerance: Tolerance, low_precision: bool) -> str:
    disagreeing = [r for r in results if r.status == "disagree"]
    if disagreeing:
        return tier(max(r.error for r in disagreeing), tolerance.threshold)
    agreeing = [r for r in results if r.status == "agree"]
    inconclusive = sum(r.status == "inconclusive" for r in results)
    if agreeing and inconclusive <= len(agreeing):
        return "low precision" if low_precision else tier(max(r.error for r in agreeing),
                                                          tolerance.threshold)
    return "inconclusive" if inconclusive else "untested"


def _entry(name: str, shape: tuple, results: List[ProbeResult], tolerance: Tolerance, part: str,
           lowered: Optional[str]) -> GradientEntry:
    measured = [r for r in results if r.status in ("agree", "disagree")] or results
    worst = max(measured, key=lambda r: r.error)
    details = [text for text in (
        f"low precision: {lowered}" if lowered else None, kink_summary(results)) if text]
    return GradientEntry(
        name=name, shape=shape, probes=len(results), kinks_crossed=sum(r.kink for r in results),
        max_rel_error=worst.error if worst.status in ("agree", "disagree") else 0.0,
        worst_probe=worst.probe.label, analytic=worst.analytic, numeric=worst.numeric,
        verdict=_verdict(results, tolerance, lowered is not None), part=part,
        one_sided=sum(r.resolution.startswith("one-sided") for r in results),
        inconclusive_probes=sum(r.status == "inconclusive" for r in results),
        untested_probes=sum(r.status == "untested" for r in results), details=details)


def _explain_failure(entry: GradientEntry, results: List[ProbeResult], judge: Judge,
                     tolerance: Tolerance, subject: Subject, position: int,
                     options: _Options) -> None:
    """Narrow a failing direction to its entry, name a constant factor, hint at constraints."""
    factor = constant_factor(results)
    if factor:
        entry.details.append(factor)
    worst = max((r for r in results if r.status == "disagree"), key=lambda r: r.error)
    if worst.probe.kind != "coordinate":
        found, forwards = narrow(judge, worst, tolerance, subject.names)
        if found is not None and found.status == "disagree":
            entry.details.append(f"{worst.probe.label} (rel error {worst.error:.3g}) narrowed to "
                                 f"{found.probe.label} by halving its support ({forwards} "
                                 f"forwards)")
            entry.worst_probe = found.probe.label
            entry.analytic, entry.numeric = found.analytic, found.numeric
            if found.error > entry.max_rel_error:
                # A direction a little off can narrow to an entry far off: that entry's tier.
                entry.verdict = tier(found.error, tolerance.threshold)
            entry.max_rel_error = found.error
    if position in options.projections or not entry.name.startswith("input"):
        return
    tensor = subject.tensors[position]
    for constraint, projection in recognised(tensor.detach()):
        sampler = ProbeSampler(position, entry.name, tensor, judge.gradients[position], 0, 2,
                               torch.Generator().manual_seed(subject.seed), tolerance.resolvable,
                               projection)
        along = [judge.judge(probe, tolerance) for probe in sampler.probes()]
        if along and all(r.status != "disagree" for r in along):
            entry.details.append(
                f"the gradient agrees along {constraint} directions: if {entry.name} is meant to "
                f"stay {constraint}, pass constraints={{'{entry.name}': pytest_nncheck.{constraint}}}")


def _forward_mode_entry(subject: Subject, position: int, results: List[ProbeResult],
                        tolerance: Tolerance) -> Optional[GradientEntry]:
    """The Function's jvp along the same probes, against the same numeric derivatives."""
    compared = []
    for result in results:
        if result.status not in ("agree", "disagree", "untested"):
            continue
        try:
            tangent = jvp_along(subject, result.probe)
        except NNCheckError:
            return None
        error = relative_error(tangent, result.numeric, tolerance.noise_floor)
        compared.append(ProbeResult(result.probe, tangent, result.numeric, error,
                                    "disagree" if error > tolerance.threshold else "agree"))
    if not compared:
        return None
    checked = subject.checked[position]
    entry = _entry(checked.name, tuple(checked.tensor.shape), compared, tolerance, "forward mode",
                   None)
    factor = constant_factor(compared) if entry.verdict in ("wrong", "suspicious") else None
    if factor:
        entry.details.append(f"jvp: {factor}")
    return entry


def _joint_results(judge: Judge, subject: Subject, included: List[int], precision: _Observed,
                   tolerance: Tolerance, options: _Options,
                   generator: torch.Generator) -> Dict[int, List[ProbeResult]]:
    """Joint probes over the tensors they suit: same precision, unconstrained, nonzero gradient.

    The rest (and every tensor of a small subject, under ``strategy="auto"``) get their own. The
    first joint disagreement asks whether some tensors compute in a lower precision: those leave
    the joint probes, before any narrowing, for probes of their own.
    """
    if options.strategy == "per-tensor":
        return {}
    eligible = [position for position in included if position not in options.projections
                and float(judge.gradients[position].abs().max()) > tolerance.resolvable]
    if len(eligible) < 2 or (options.strategy == "auto" and len(eligible) < JOINT_FROM):
        return {}
    state = generator.get_state()
    found = check_jointly(judge, eligible, subject.names, tolerance, generator,
                          lowered=lambda: precision.lowered)
    if found is None:
        generator.set_state(state)
        return _joint_results(judge, subject, [p for p in included if p not in precision.lowered],
                              precision, tolerance, options, generator)
    return found


def _probe_tensor(judge: Judge, subject: Subject, position: int, tolerance: Tolerance,
                  options: _Options, generator: torch.Generator) -> List[ProbeResult]:
    """One tensor's own coordinates and directions, judged; probing stops once it is wrong."""
    checked = subject.checked[position]
    sampler = ProbeSampler(position, checked.name, checked.tensor, judge.gradients[position],
                           options.coords, options.directions, generator, tolerance.resolvable,
                           options.projections.get(position))
    results: List[ProbeResult] = []
    wrong = 0
    probes = sampler.probes()
    evaluations: List[Optional[Dict[float, float]]] = [None] * len(probes)
    if tolerance.measured_noise:
        tolerance, evaluations = judge.pool(probes, tolerance)
    for probe, evaluated in zip(probes, evaluations):
        if wrong >= ENOUGH_DISAGREEMENTS:
            break
        results.append(judge.judge(probe, tolerance, confirm=not wrong, evaluated=evaluated))
        wrong += results[-1].status == "disagree"
    return [split_around_kinks(judge, r, tolerance, subject.names)
            if r.status == "inconclusive" else r for r in results]


def _check_part(subject: Subject, options: _Options, part: str) -> _Part:
    analytic = analytic_pass(subject)
    found = _Part(gradients=analytic.gradients, contract=list(analytic.contract),
                  notes=list(analytic.notes))
    if analytic.broken:
        return found
    outputs = _at_x(subject)
    if not _same(outputs, analytic.outputs, subject.dtype):
        found.nondeterministic = True
        return found
    changed = subject.changed_by_forward()
    if changed is not None and not any(changed in text for text in found.contract):
        found.contract.append(f"{changed} was modified in place by the forward; a layer must not "
                              f"write into its inputs or weights")
    precision = _Observed(subject)
    judge = Judge(subject, analytic.gradients, float(subject.scalar(outputs)),
                  lambda: precision.record, "count" if options.kinks == "count" else "resolve")
    base = _tolerance(subject.dtype, options.step, analytic.output_scale)
    single = replace(_tolerance(torch.float32, DEFAULT_EPS[torch.float32], analytic.output_scale),
                     threshold=LOWERED_THRESHOLD)
    generator = torch.Generator().manual_seed(subject.seed)
    reprojected = _Reprojected(subject, outputs, judge)
    check_jvp = part == "data" and defines_jvp(subject)
    included = [position for position, connected in enumerate(analytic.connected)
                if part != "regularization" or connected]  # a penalty says nothing of inputs
    jointly = _joint_results(judge, subject, included, precision, base, options, generator)
    for position in included:
        checked = subject.checked[position]
        if position in jointly:
            entry = _entry(checked.name, tuple(checked.tensor.shape), jointly[position], base,
                           part, None)
            factor = constant_factor([r for r in jointly[position] if r.probe.kind != "joint"])
            if factor and entry.verdict in ("wrong", "suspicious"):
                entry.details.append(factor)
            found.entries.append(entry)
            continue
        state, tolerance = generator.get_state(), base
        results = _probe_tensor(judge, subject, position, base, options, generator)
        again: List[ProbeResult] = []
        if _disagrees(results) and position in precision.lowered:
            generator.set_state(state)  # the same probes, judged at single precision
            tolerance = single
            results = _probe_tensor(judge, subject, position, single, options, generator)
            if not _disagrees(results):
                again = _probe_tensor(reprojected.judge(), subject, position, single, options,
                                      generator)
                for result in again:
                    result.probe.label += " (second projection)"
        entry = _entry(checked.name, tuple(checked.tensor.shape), results + again, tolerance,
                       part, precision.lowered.get(position) if tolerance is single else None)
        if entry.verdict in ("wrong", "suspicious"):
            _explain_failure(entry, *((again, reprojected.judge()) if _disagrees(again) else
                                      (results, judge)), tolerance, subject, position, options)
        found.entries.append(entry)
        if check_jvp and checked.name.startswith("input"):
            forward_entry = _forward_mode_entry(subject, position, results, tolerance)
            if forward_entry is not None:
                found.entries.append(forward_entry)
    return found


def _regularization_call(regularization: Callable, subject: Subject) -> Callable:
    if subject.module is not None:
        module = subject.module
        return lambda *inputs, **kwargs: regularization(module)
    return regularization


def _norm(gradients: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in gradients))


def _validate(dtype: torch.dtype, kinks: str, coords: int, directions: int, order: int,
              eps: Optional[float], strategy: str) -> float:
    if strategy not in STRATEGIES:
        raise NNCheckError(f"strategy={strategy!r} is not an option; use one of "
                           f"{', '.join(STRATEGIES)}")
    if dtype not in SUPPORTED_DTYPES:
        raise NNCheckError(f"dtype={dtype} is not supported for gradient checks; use torch.float64 "
                           f"(recommended) or torch.float32; for bfloat16/float16 kernels use "
                           f"check_against_reference")
    if kinks not in KINK_MODES:
        raise NNCheckError(f"kinks={kinks!r} is not an option; use 'resolve' (default) or 'count'")
    if coords < 0 or directions < 0 or coords + directions == 0:
        raise NNCheckError("coords and directions must be >= 0 and not both 0")
    if order not in (1, 2):
        raise NNCheckError(f"order={order} is not supported; use 1 (gradients) or 2 (also the "
                           f"double backward)")
    step = DEFAULT_EPS[dtype] if eps is None else float(eps)
    if not step > 0:
        raise NNCheckError(f"eps={eps} must be a positive step size, e.g. 1e-6 in float64")
    return step


def check_gradients(fn: Any, *inputs: Any, regularization: Optional[Callable] = None,
                    seed: int = 0, eps: Optional[float] = None, dtype: torch.dtype = torch.float64,
                    coords: int = DEFAULT_COORDS, directions: int = DEFAULT_DIRECTIONS,
                    kinks: str = "resolve", order: int = 1,
                    constraints: Optional[Mapping[Any, Projection]] = None,
                    forward_kwargs: Optional[Dict[str, Any]] = None,
                    strategy: str = "auto") -> GradientReport:
    """Compare the analytic gradient of ``fn`` with central differences, per input and parameter.

    ``fn`` is an ``nn.Module`` (its parameters are checked too), an ``autograd.Function`` subclass
    or any callable returning tensors (nested lists, tuples and dicts of them are fine); inputs
    that require grad are checked. Every evaluation starts from ``seed``, so dropout is checked
    rather than switched off. ``coords`` coordinates (where the gradient is nonzero) and
    ``directions`` random signed directions are probed per tensor. A probe that disagrees is
    confirmed before it is blamed: at a kink (``kinks="resolve"``) it is compared with the
    one-sided difference on the side whose forward decisions match x's; ``kinks="count"`` trusts
    the central difference alone. With ``regularization``, ``fn`` is the data loss and the
    regularization, called as ``regularization(module)`` for a module or
    ``regularization(*inputs)`` otherwise, is checked apart from it. ``order=2`` also checks the
    double backward. ``constraints`` maps an input (its name or position) to a projection that
    keeps probes on its constraint set (``pytest_nncheck.symmetric``). ``forward_kwargs`` are
    passed to the forward as keyword arguments. ``strategy``: "per-tensor" gives every tensor its
    own probes; "joint" tests all tensors with a few weighted directions at once and localises a
    disagreement by halving (cost nearly independent of the number of tensors); "auto" uses joint
    probes from 3 tensors on (``joint.JOINT_FROM``). The caller's objects and random states are never changed.
    """
    step = _validate(dtype, kinks, coords, directions, order, eps, strategy)
    report = GradientReport(entries=[], dtype=str(dtype).replace("torch.", ""), eps=step,
                            threshold=FAILURE_THRESHOLD[dtype],
                            low_precision=dtype != torch.float64)
    if report.low_precision:
        report.notes.append("low precision: checked in float32, so errors below 1e-2 cannot be "
                            "told from round-off; check in float64 when the layer allows it")
    try:
        with preserved_rng_state():
            subject = Subject(fn, inputs, dtype, seed, forward_kwargs)
            options = _Options(step, coords, directions, kinks,
                               resolve(constraints, subject.names), strategy)
            _run(subject, options, regularization, order, report)
            report.forwards = subject.forwards
    except (NNCheckError, NNCheckInternalError):
        raise
    except Exception as error:  # anything else is a bug of ours, never the user's
        raise NNCheckInternalError("checking gradients", error) from error
    _summarise(report)
    return report


def _absorb(report: GradientReport, part: _Part) -> bool:
    report.entries += part.entries
    report.contract += part.contract
    report.notes += part.notes
    if part.nondeterministic:
        report.nondeterministic = NONDETERMINISTIC
    return not part.nondeterministic


def _run(subject: Subject, options: _Options, regularization: Optional[Callable], order: int,
         report: GradientReport) -> None:
    data = _check_part(subject, options, "data")
    if not _absorb(report, data):
        return
    if regularization is not None:
        penalty = _check_part(subject.with_function(_regularization_call(regularization, subject)),
                              options, "regularization")
        if not _absorb(report, penalty):
            return
        data_norm = _norm(data.gradients)
        report.regularization_ratio = _norm(penalty.gradients) / data_norm if data_norm else math.inf
        if report.regularization_ratio > REGULARIZATION_DOMINATES:
            report.notes.append(
                f"regularization dominates: its gradient norm is "
                f"{report.regularization_ratio:.3g}x the data gradient's, so a check of their sum "
                f"would hide a wrong data gradient; both were checked apart")
    if order == 2:
        try:
            second = _check_part(first_derivative(subject), options, "second order")
        except NNCheckError as error:
            raise NNCheckError(f"order=2 cannot be checked: {error}") from error
        _absorb(report, second)


# What a verdict that is neither a pass nor a failure means, said once per report.
_VERDICT_NOTES = {
    "untested": "untested: every probe of {names} compared a zero derivative with a zero "
                "derivative (dead units, zero-initialised weights, an input the output does not "
                "use), which is no evidence either way",
    "inconclusive": "inconclusive: the point sits on a kink of {names} and the analytic value "
                    "lies between the one-sided slopes (a valid subgradient); check at an input "
                    "off the kink",
}


def _summarise(report: GradientReport) -> None:
    for verdict, note in _VERDICT_NOTES.items():
        names = [e.name for e in report.entries if e.verdict == verdict]
        if names:
            report.notes.append(note.format(names=", ".join(names)))


def assert_gradients(fn: Any, *inputs: Any, **options: Any) -> GradientReport:
    """``check_gradients`` that raises ``AssertionError(report.render())`` unless it passed.

    A failure raises, and so does an untested report (no probe saw a nonzero derivative: no
    evidence is no pass). An inconclusive report (the point sits on a kink) is returned: it is
    neither a pass nor a failure, and ``report.passed`` is False.
    """
    __tracebackhide__ = True
    report = check_gradients(fn, *inputs, **options)
    if report.failed or report.untested:
        raise CheckFailed(report)
    return report
