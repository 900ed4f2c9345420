"""Judging one probe: the central difference first, confirmation before blame.

Most probes agree with the central difference and cost two forwards. A probe that disagrees is not
blamed yet: it may sit at a kink (ReLU sign, max winner, hinge margin) or inside a solver whose
hundreds of comparisons flip under a tiny step while its output stays smooth. It fails only when
no one-sided difference (Richardson-extrapolated, so as accurate as the central one) agrees either.
The forward's decisions pick the side: the analytic gradient follows the decisions taken *at x*, so
at a kink it is compared with the side whose decisions equal x's, and the step shrinks until one
side does. Decisions are recorded only for these few evaluations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .finite_differences import (GRADIENT_RELATIVE_FLOOR, central_difference,
                                 one_sided_extrapolated, relative_error)
from .kinks import DecisionRecord
from .probes import Probe
from .subject import Subject

# The step shrinks by these factors until one side of a kink shows x's own decisions: max pooling
# over entries 1e-8 apart (near ties) needs a step below 1e-8; at 1e-10 a float64 difference still
# resolves 1e-5 of a unit slope.
SHRINK_FACTORS = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)


# A single-precision difference measures its own noise: the central differences at h and h/2
# disagree by about their round-off, and ten times that is what they cannot resolve. The
# theoretical bound (eps32 x the whole output / h) is a thousand times too pessimistic on layers
# that compute only a softmax in float32 (x-transformers' attention: 1e-5 measured against 1e-2
# assumed), which hid a 5% bug in a norm's gain (benchmarks/gradcheck_vs_torch.py, corpus part).
MEASURED_NOISE_SAFETY = 10.0

# One probe's two differences may agree by chance far better than its round-off (a correct
# float32-internal layer showed errors 150x its own |D(h) - D(h/2)|), so a tensor's probes share
# their noise: the largest any of them measured. Against that floor, a tensor that computes in
# single precision inside a float64 check is judged at this threshold: the correct float32-internal
# layers of the real-code corpus stay below a fifth of it, and a single entry 20% off in an
# attention input is above it (benchmarks/gradcheck_vs_torch.py, corpus part).
LOWERED_THRESHOLD = 1e-3


@dataclass
class Tolerance:
    """How one tensor is judged: its step, failure threshold and the floors of its precision.

    With ``measured_noise`` (single precision) each probe also takes the difference at half the
    step, extrapolates, and takes its floors from how much the two differences disagree, or from
    ``pooled_noise`` (the largest over the tensor's probes, ``Judge.pool``) when that is larger.
    """

    step: float
    threshold: float
    noise_floor: float  # the 0/0 guard: derivatives below it are compared absolutely
    resolvable: float  # derivatives below this compare round-off with round-off: no evidence
    measured_noise: bool = False
    pooled_noise: float = 0.0


@dataclass
class ProbeResult:
    """The verdict on one probe.

    ``status``: agree, disagree, untested (both derivatives below what a difference resolves) or
    inconclusive (x sits on a kink and the analytic value is a subgradient between the sides).
    ``resolution``: central, or one-sided + / - (at a kink, or where a solver's decisions flip).
    """

    probe: Probe
    analytic: float
    numeric: float
    error: float
    status: str
    resolution: str = "central"
    kink: bool = False
    central: float = math.nan  # the central difference, kept for narrowing down a disagreement


class Judge:
    """Judges probes of one subject at its unperturbed point."""

    def __init__(self, subject: Subject, gradients: Sequence[torch.Tensor], value_at_x: float,
                 observe_decisions: Callable[[], DecisionRecord], kinks: str) -> None:
        self.subject = subject
        self.gradients = gradients
        self.largest = [float(g.abs().max()) if g.numel() else 0.0 for g in gradients]
        self.overall = max(self.largest, default=0.0)
        self.value_at_x = value_at_x
        self.observe_decisions = observe_decisions
        self.kinks = kinks

    @property
    def record_at_x(self) -> DecisionRecord:
        """The forward's decisions at x, observed on first need (a disagreement to confirm)."""
        return self.observe_decisions()

    @property
    def has_decisions(self) -> bool:
        return len(self.record_at_x) > 0

    def values(self, probe: Probe, steps: Sequence[float],
               records: Optional[List[DecisionRecord]] = None) -> List[float]:
        """The projected output at x + step * probe for each step (x restored afterwards)."""
        tensors = self.subject.tensors
        results = []
        with torch.no_grad():
            saved = probe.place(tensors, steps[0])
            try:
                for position, step in enumerate(steps):
                    if position:
                        probe.move(tensors, saved, step)
                    watchers = [records[position]] if records is not None else None
                    results.append(self.subject.value(watchers))
            finally:
                probe.restore(tensors, saved)
        return results

    def _evaluate_measured(self, probe: Probe, step: float) -> Dict[float, float]:
        steps = (step, -step, step / 2, -step / 2)
        return dict(zip(steps, self.values(probe, steps)))

    @staticmethod
    def _differences(known: Dict[float, float], step: float) -> Tuple[float, float]:
        """The central differences at ``step`` and at half of it."""
        return (central_difference(known[step], known[-step], step),
                central_difference(known[step / 2], known[-step / 2], step / 2))

    def pool(self, probes: Sequence[Probe],
             tolerance: Tolerance) -> Tuple[Tolerance, List[Dict[float, float]]]:
        """Evaluate ``probes`` for a measured-noise check: the tolerance whose noise is the largest
        any of them measured, and each probe's evaluations (for ``judge``'s ``evaluated``)."""
        evaluations = [self._evaluate_measured(probe, tolerance.step) for probe in probes]
        noise = max((MEASURED_NOISE_SAFETY * abs(full - half) for full, half in
                     (self._differences(known, tolerance.step) for known in evaluations)),
                    default=0.0)
        return replace(tolerance, pooled_noise=noise), evaluations

    def _measured(self, probe: Probe, tolerance: Tolerance,
                  known: Dict[float, float]) -> Tuple[float, Tolerance]:
        """The extrapolated central difference and floors from its round-off."""
        step = tolerance.step
        if not known:
            known.update(self._evaluate_measured(probe, step))
        full, half = self._differences(known, step)
        noise = max(MEASURED_NOISE_SAFETY * abs(full - half), tolerance.pooled_noise)
        return (4 * half - full) / 3, replace(tolerance, noise_floor=noise / tolerance.threshold,
                                              resolvable=noise)

    def judge(self, probe: Probe, tolerance: Tolerance, confirm: bool = True,
              evaluated: Optional[Dict[float, float]] = None) -> ProbeResult:
        """The verdict on ``probe``; ``confirm=False`` trusts the central difference (once a
        tensor is known to be wrong, its other probes need no one-sided confirmation).
        ``evaluated``: the probe's values by step, already taken by ``pool``."""
        analytic = probe.analytic(self.gradients)
        known: Dict[float, float] = dict(evaluated or {})  # step -> value, reused to confirm
        if tolerance.measured_noise:
            numeric, tolerance = self._measured(probe, tolerance, known)
        else:
            plus, minus = self.values(probe, (tolerance.step, -tolerance.step))
            known.update({tolerance.step: plus, -tolerance.step: minus})
            numeric = central_difference(plus, minus, tolerance.step)
        # Relative to this probe's own terms, and to the largest gradient of any checked tensor:
        # a tensor whose whole gradient is solver noise (1e-8 next to gradients of 1) is no bug.
        gradient_floor = GRADIENT_RELATIVE_FLOOR * max(
            probe.scale(self.gradients, self.largest), self.overall * probe.reach())
        floor = max(tolerance.noise_floor, gradient_floor)
        error = self._error(analytic, numeric, floor)
        if error <= tolerance.threshold:
            untested = max(abs(analytic), abs(numeric)) <= tolerance.resolvable
            result = ProbeResult(probe, analytic, numeric, error,
                                 "untested" if untested else "agree")
        elif self.kinks == "count" or not confirm:
            result = ProbeResult(probe, analytic, numeric, error, "disagree")
        else:
            result = self._confirm(probe, tolerance, analytic, numeric, error, floor, known)
            if result.status == "agree" and max(abs(analytic), abs(result.numeric)) \
                    <= tolerance.resolvable:
                result.status = "untested"
        if result.status == "disagree" and tolerance.measured_noise:
            # Measured round-off decides whether the difference is real; once it is, its size
            # is the plain relative error, not one deflated by that round-off.
            result.error = max(result.error, self._error(analytic, result.numeric, gradient_floor))
        result.central = numeric
        return result

    @staticmethod
    def _error(analytic: float, numeric: float, floor: float) -> float:
        if not math.isfinite(numeric):
            return math.inf
        return relative_error(analytic, numeric, floor)

    def _one_sided(self, probe: Probe, step: float, recorded: bool,
                   known: Optional[Dict[float, float]] = None):
        """Extrapolated derivatives from the right and the left, and the decision records.

        Values in ``known`` (the central difference's own evaluations: the forward is
        deterministic) are not evaluated again, unless decisions are recorded.
        """
        steps = (step, step / 2, -step / 2, -step)
        records = [DecisionRecord() for _ in steps] if recorded else None
        known = {} if recorded or known is None else known
        missing = [s for s in steps if s not in known]
        evaluated = dict(zip(missing, self.values(probe, missing, records))) if missing else {}
        right_full, right_half, left_half, left_full = (
            known[s] if s in known else evaluated[s] for s in steps)
        sides = {+1: one_sided_extrapolated(self.value_at_x, right_half, right_full, step),
                 -1: one_sided_extrapolated(self.value_at_x, left_half, left_full, -step)}
        return sides, records

    @staticmethod
    def _floor(floor: float, tolerance: Tolerance, factor: float, sides: dict) -> float:
        """Round-off grows as the step shrinks; the slopes on either side show the scale of the
        derivative even where the analytic gradient is exactly zero (a hinge at rest)."""
        return max(floor, tolerance.noise_floor / factor,
                   GRADIENT_RELATIVE_FLOOR * max(abs(v) for v in sides.values()))

    def _confirm(self, probe: Probe, tolerance: Tolerance, analytic: float, central: float,
                 central_error: float, floor: float, known: Dict[float, float]) -> ProbeResult:
        threshold = tolerance.threshold
        first = last = None
        crossed = False
        # One-sided differences first, without recording anything: when both sides show the same
        # slope, whatever decisions flip in between (a solver's), the function is smooth along
        # the probe here and either side is its derivative. Only a slope that changes between
        # the sides (a kink) needs the forward's decisions to pick the side.
        sides, _ = self._one_sided(probe, tolerance.step, False, known)
        floor_here = self._floor(floor, tolerance, 1.0, sides)
        errors = {side: self._error(analytic, value, floor_here) for side, value in sides.items()}
        if relative_error(sides[+1], sides[-1], floor_here) <= threshold or not self.has_decisions:
            side = min(errors, key=errors.get)
            status = "agree" if errors[side] <= threshold else "disagree"
            return ProbeResult(probe, analytic, sides[side], errors[side], status,
                               f"one-sided {'+' if side > 0 else '-'}")
        first = (sides, errors)
        for factor in SHRINK_FACTORS:
            step = tolerance.step * factor
            sides, records = self._one_sided(probe, step, True)
            floor_here = self._floor(floor, tolerance, factor, sides)
            errors = {side: self._error(analytic, value, floor_here)
                      for side, value in sides.items()}
            at_x = self.record_at_x
            matching = [side for side, full, half in ((+1, records[0], records[1]),
                                                      (-1, records[3], records[2]))
                        if full.same_as(at_x) and half.same_as(at_x)]
            crossed = crossed or not records[0].same_as(records[3])
            last = (sides, errors, matching)
            if not matching:
                continue  # decisions flip on both sides: shrink, or treat as a solver below
            side = min(matching, key=errors.get)
            if errors[side] <= threshold or len(matching) == 2:
                # The side that keeps x's decisions decides; with both sides keeping them, x is
                # off the kink at this step and either side measures the derivative.
                status = "agree" if errors[side] <= threshold else "disagree"
                return ProbeResult(probe, analytic, sides[side], errors[side], status,
                                   f"one-sided {'+' if side > 0 else '-'}", kink=crossed)
        if last is not None and last[2]:
            # Only one side keeps x's decisions however small the step: x sits on the kink
            # itself, where the backward's convention (x > 0 or x >= 0) picks the side.
            sides, errors, _ = last
        elif last is not None and crossed and probe.kind != "coordinate":
            # A direction moving several entries that sit on kinks (a zero-initialised parameter
            # under clamp(max=0)) pushes some across on either side: no side keeps x's
            # decisions, and the slopes differ, so this is no solver. Halving the direction
            # (split_around_kinks) separates the entries and judges each on its own side.
            return ProbeResult(probe, analytic, central, central_error, "inconclusive",
                               "kinks on both sides", kink=True)
        else:
            # No side keeps x's decisions at any step (a solver flips them under every step),
            # or the forward makes none: the largest step's differences have the least noise.
            sides, errors = first
        side = min(errors, key=errors.get)
        if errors[side] <= threshold:
            return ProbeResult(probe, analytic, sides[side], errors[side], "agree",
                               f"one-sided {'+' if side > 0 else '-'}", kink=crossed)
        low, high = sorted(sides.values())
        slack = max(floor, GRADIENT_RELATIVE_FLOOR * max(abs(low), abs(high))) * threshold
        if self.has_decisions and low - slack <= analytic <= high + slack \
                and relative_error(low, high, floor) > threshold:
            # x sits exactly on a kink: any value between the two slopes is a valid subgradient.
            return ProbeResult(probe, analytic, central, central_error, "inconclusive",
                               "between the one-sided slopes", kink=True)
        return ProbeResult(probe, analytic, central, central_error, "disagree", kink=crossed)
