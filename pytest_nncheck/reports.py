"""Reports: data first, rendering second.

Each check returns a dataclass; the same object feeds the terminal table, the assertion message
and the JSON report. ``str(report) == report.render()`` and ``render()`` is plain text; the pytest
plugin adds colour.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

# Verdict tiers for one relative error (CS231n, "Gradient checks"): above 1e-2 the gradient is
# probably wrong, 1e-4..1e-2 is suspicious, below 1e-7 is what a correct double-precision gradient
# gives on a smooth function.
WRONG = 1e-2
SUSPICIOUS = 1e-4
EXCELLENT = 1e-7

def tier(relative_error: float, threshold: float = SUSPICIOUS) -> str:
    """The verdict word for one relative error; ``threshold`` is where failure starts."""
    if not math.isfinite(relative_error) or relative_error > WRONG:
        return "wrong"
    if relative_error > threshold:
        return "suspicious"
    if relative_error >= EXCELLENT:
        return "ok"
    return "excellent"


class CheckFailed(AssertionError):
    """What every ``assert_*`` raises: the report's text, and the report itself for tools that
    keep it (the pytest plugin puts it in the JSON and HTML reports)."""

    def __init__(self, report: Any) -> None:
        super().__init__(report.render())
        self.report = report


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
             for line in [headers, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """A one-line loss curve on a log scale (losses span decades while memorising)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    floor = max(min(v for v in finite if v > 0) if any(v > 0 for v in finite) else 1e-12, 1e-12)
    logs = [math.log10(max(v, floor)) if math.isfinite(v) else None for v in values]
    low, high = min(x for x in logs if x is not None), max(x for x in logs if x is not None)
    bars = "▁▂▃▄▅▆▇█"
    span = (high - low) or 1.0
    return "".join("!" if x is None else bars[min(7, int((x - low) / span * 7.999))] for x in logs)


def _number(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


@dataclass
class Problem:
    """One thing found wrong by a recipe or training-health check.

    ``code`` is a stable identifier (``dead-relu``, ``batch-leak``); ``where`` names the layer,
    parameter or sample pair; ``step`` is the training step it was seen at (None when the check
    does not train); ``value`` is the measured figure the verdict rests on; ``message`` says what
    it means and what to do.
    """

    code: str
    where: str
    step: Optional[int]
    value: Optional[float]
    message: str

    def render(self) -> str:
        at = "" if self.step is None else f" at step {self.step}"
        return f"{self.code} ({self.where}{at}): {self.message}"

    __str__ = render


@dataclass
class GradientEntry:
    """The verdict for one checked tensor (an input or a parameter).

    Verdicts: excellent, ok, low precision (checked with single-precision tolerance because the
    forward computes it in lower precision), suspicious, wrong, inconclusive (the point sits on a
    kink), untested (no probe saw a nonzero derivative).
    """

    name: str
    shape: tuple
    probes: int
    kinks_crossed: int
    max_rel_error: float
    worst_probe: str
    analytic: float
    numeric: float
    verdict: str
    part: str = "data"
    one_sided: int = 0  # probes confirmed by a one-sided difference (kinks, solvers)
    inconclusive_probes: int = 0
    untested_probes: int = 0
    details: List[str] = field(default_factory=list)


FAILING_VERDICTS = ("wrong", "suspicious")


@dataclass
class GradientReport:
    """What ``check_gradients`` found. ``passed`` only when nothing failed and something was tested."""

    entries: List[GradientEntry]
    dtype: str
    eps: float
    threshold: float
    low_precision: bool = False
    nondeterministic: Optional[str] = None
    regularization_ratio: Optional[float] = None
    notes: List[str] = field(default_factory=list)
    contract: List[str] = field(default_factory=list)  # a broken backward contract fails the check
    forwards: int = 0  # evaluations of fn the check ran (its cost in forwards)

    @property
    def checked(self) -> int:
        """Probes evaluated."""
        return sum(e.probes for e in self.entries)

    @property
    def kinks_crossed(self) -> int:
        return sum(e.kinks_crossed for e in self.entries)

    @property
    def max_rel_error(self) -> float:
        errors = [e.max_rel_error for e in self.entries
                  if e.verdict not in ("inconclusive", "untested")]
        return max(errors, default=0.0)

    @property
    def failed(self) -> bool:
        if self.nondeterministic or self.contract:
            return True
        return any(e.verdict in FAILING_VERDICTS for e in self.entries)

    @property
    def untested(self) -> bool:
        """Nothing failed and no tensor was tested at all: no evidence, so no pass."""
        return not self.failed and all(e.verdict == "untested" for e in self.entries)

    @property
    def inconclusive(self) -> bool:
        return not self.failed and not self.untested and any(
            e.verdict == "inconclusive" for e in self.entries)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.inconclusive and not self.untested

    @property
    def verdict(self) -> str:
        if self.nondeterministic:
            return "nondeterministic"
        if self.failed:
            return "failed"
        return "untested" if self.untested else "inconclusive" if self.inconclusive else "passed"

    @property
    def worst(self) -> Optional[GradientEntry]:
        conclusive = [e for e in self.entries if e.verdict not in ("inconclusive", "untested")]
        return max(conclusive, key=lambda e: e.max_rel_error, default=None)

    def render(self, only_problems: bool = False, max_rows: Optional[int] = None) -> str:
        """The header, one row per tensor and the details; ``only_problems`` keeps the rows that
        did not pass and ``max_rows`` caps them (for a model of many tensors, where the table
        would bury the failure)."""
        precision = f"{self.dtype}, eps={self.eps:g}" + (", LOW PRECISION" if self.low_precision else "")
        lowered = sum(any(text.startswith("low precision:") for text in e.details)
                      for e in self.entries)
        limit = f"fails above {self.threshold:g}" + (
            f"; {lowered} low-precision tensor{'s' if lowered > 1 else ''} above their measured "
            f"round-off" if lowered else "")
        head = (f"gradient check {self.verdict.upper()}: worst relative error "
                f"{_number(self.max_rel_error)} ({limit}), "
                f"{self.checked} probes, {self.kinks_crossed} at kinks [{precision}]")
        if self.nondeterministic:
            return f"{head}\n{self.nondeterministic}"
        shown = [e for e in self.entries if not only_problems
                 or e.verdict not in ("excellent", "ok", "low precision")][:max_rows]
        rows = [[(f"{e.part}: " if e.part != "data" else "") + e.name,
                 "x".join(map(str, e.shape)) or "scalar", str(e.probes), str(e.kinks_crossed),
                 _number(e.max_rel_error), e.worst_probe, _number(e.analytic), _number(e.numeric),
                 e.verdict] for e in shown]
        table = format_table(["tensor", "shape", "probes", "kinks", "rel error", "worst probe",
                              "analytic", "numeric", "verdict"], rows)
        if len(shown) < len(self.entries):
            table += f"\n({len(self.entries) - len(shown)} more tensors not shown)"
        details = [f"{e.name}: {text}" for e in shown for text in e.details][:max_rows]
        contract = [f"backward contract broken: {text}" for text in self.contract]
        return "\n".join([head, table, *contract, *details, *self.notes])

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        return {"verdict": self.verdict, "passed": self.passed, "max_rel_error": self.max_rel_error,
                "checked": self.checked, "kinks_crossed": self.kinks_crossed, "dtype": self.dtype,
                "eps": self.eps, "low_precision": self.low_precision, "forwards": self.forwards,
                "regularization_ratio": self.regularization_ratio, "notes": list(self.notes),
                "contract": list(self.contract), "entries": [asdict(e) for e in self.entries]}


@dataclass
class ReferenceEntry:
    """One compared tensor (an output, or the gradient of an input or parameter).

    ``error`` is fn's largest absolute difference from the float64 reference, ``reference_error``
    the same for the reference run in fn's precision, ``allowed`` the bound ``error`` must stay
    within, and ``worst`` the element where ``error`` is reached, with fn's and float64's values.
    """

    name: str
    shape: tuple
    dtype: str
    error: float
    reference_error: float
    ratio: float
    allowed: float
    worst: str
    value: Optional[float]
    truth: Optional[float]
    verdict: str


@dataclass
class ReferenceReport:
    """What ``check_against_reference`` found: ``passed`` when every tensor is within its bound."""

    entries: List[ReferenceEntry]
    dtype: str
    device: str
    k: float
    floor: float
    notes: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.verdict == "ok" for e in self.entries)

    @property
    def failed(self) -> bool:
        return any(e.verdict == "wrong" for e in self.entries)

    @property
    def inconclusive(self) -> bool:
        """No tensor is wrong, but the low-precision reference overflowed on one."""
        return not self.passed and not self.failed

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "failed" if self.failed else "inconclusive"

    @property
    def worst(self) -> Optional[ReferenceEntry]:
        """The conclusive entry closest to (or furthest past) its bound."""
        conclusive = [e for e in self.entries if e.verdict != "inconclusive"]
        return max(conclusive, key=lambda e: e.error / e.allowed if e.allowed else
                   (math.inf if e.error else 0.0), default=None)

    def render(self) -> str:
        wrong = sum(e.verdict == "wrong" for e in self.entries)
        head = (f"reference check {self.verdict.upper()}: {wrong} of {len(self.entries)} tensors "
                f"off by more than {self.k:g}x the {self.dtype} reference's error + "
                f"{self.floor:.2g} x their largest |value| [against float64 on {self.device}]")
        rows = [[e.name, "x".join(map(str, e.shape)) or "scalar", e.dtype, _number(e.error),
                 _number(e.reference_error), _number(e.ratio), _number(e.allowed), e.worst,
                 _number(e.value), _number(e.truth), e.verdict] for e in self.entries]
        table = format_table(["tensor", "shape", "dtype", "error", "ref error", "ratio",
                              "allowed", "worst at", "fn", "float64", "verdict"], rows)
        return "\n".join([head, table, *self.notes])

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        worst = self.worst
        return {"verdict": self.verdict, "passed": self.passed, "dtype": self.dtype,
                "device": self.device, "k": self.k, "floor": self.floor,
                "worst": worst.name if worst is not None else None, "notes": list(self.notes),
                "entries": [asdict(e) for e in self.entries]}


@dataclass
class InitialLossReport:
    """The loss at initialisation against what the loss function predicts for an uninformed model.

    ``cause`` names why the loss is too high when that can be told from the outputs: ``constant``
    (every example gets the same output), ``offset`` (a shift shared by all examples) or ``scale``
    (outputs that vary too much between examples: over-confident).
    """

    loss: str
    expected: float
    observed: float
    rtol: float
    output_scale: float
    with_regularization: Optional[float] = None
    cause: Optional[str] = None
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def render(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"initial loss {verdict}: {self.loss} observed {self.observed:.4f}, expected "
                 f"{self.expected:.4f} (rtol {self.rtol:g}); output std at init {self.output_scale:.3g}"]
        if self.with_regularization is not None:
            lines.append(f"with regularization: {self.with_regularization:.4f}")
        lines += [f"problem: {p}" for p in self.problems] + list(self.notes)
        return "\n".join(lines)

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class OverfitReport:
    """Whether a copy of the model memorised the tiny set, with its loss curve.

    ``outcome`` says what the verdict rests on (the loss at its target, or 100% accuracy with the
    loss still falling); ``extended_from`` is the step budget the run started with when training
    went on past it because the loss was still improving.
    """

    final_loss: float
    steps: int
    losses: List[float]
    device: str
    target_loss: float
    accuracy: Optional[float] = None
    seconds: float = 0.0
    problems: List[str] = field(default_factory=list)
    outcome: str = ""
    extended_from: Optional[int] = None

    @property
    def passed(self) -> bool:
        return not self.problems

    def render(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        accuracy = "" if self.accuracy is None else f", training accuracy {self.accuracy:.0%}"
        lines = [f"overfit {verdict}: loss {self.final_loss:.4g} after {self.steps} steps on "
                 f"{self.device} (target {self.target_loss:.4g}{accuracy}, {self.seconds:.2f} s)"]
        if self.outcome:
            lines.append(self.outcome)
        if self.losses:
            lines.append(f"loss {self.losses[0]:.3g} {sparkline(self.losses)} {self.losses[-1]:.3g}")
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        return {**asdict(self), "passed": self.passed}


# Problems of one kind listed in full before the rest are counted instead.
RENDERED_PER_CODE = 6


@dataclass
class RecipeReport:
    """What one of Karpathy's recipe checks found: a list of problems, empty when it passed.

    ``summary`` says what was measured (samples, positions, steps); ``figures`` holds the numbers
    the verdict rests on, for the JSON report; ``notes`` say how the check ran (layers put in eval
    mode, forms used).
    """

    check: str
    summary: str
    problems: List[Problem] = field(default_factory=list)
    figures: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    def render(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"{self.check} {verdict}: {self.summary} ({self.seconds:.2f} s)"]
        by_code: Dict[str, List[Problem]] = {}
        for problem in self.problems:
            by_code.setdefault(problem.code, []).append(problem)
        for code, problems in by_code.items():
            lines += [f"problem: {p.render()}" for p in problems[:RENDERED_PER_CODE]]
            if len(problems) > RENDERED_PER_CODE:
                rest = problems[RENDERED_PER_CODE:]
                lines.append(f"problem: {code}: {len(rest)} more ({', '.join(p.where for p in rest[:10])}"
                             f"{', ...' if len(rest) > 10 else ''})")
        lines += list(self.notes)
        return "\n".join(lines)

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        return {"check": self.check, "passed": self.passed, "summary": self.summary,
                "problems": [asdict(p) for p in self.problems], "figures": dict(self.figures),
                "notes": list(self.notes), "seconds": self.seconds}


def require_passed(report: Any) -> Any:
    """The body of every ``assert_*``: ``report`` if it passed, else CheckFailed (an
    AssertionError with its rendering, carrying the report)."""
    __tracebackhide__ = True
    if not report.passed:
        raise CheckFailed(report)
    return report
