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
    """The verdict for one checked tensor (an input or a parameter)."""

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


@dataclass
class GradientReport:
    """What ``check_gradients`` found. ``passed`` only when every tensor is ok or excellent."""

    entries: List[GradientEntry]
    dtype: str
    eps: float
    threshold: float
    low_precision: bool = False
    nondeterministic: Optional[str] = None
    regularization_ratio: Optional[float] = None
    notes: List[str] = field(default_factory=list)

    @property
    def checked(self) -> int:
        """Probes evaluated, kink crossings included."""
        return sum(e.probes + e.kinks_crossed for e in self.entries)

    @property
    def kinks_crossed(self) -> int:
        return sum(e.kinks_crossed for e in self.entries)

    @property
    def max_rel_error(self) -> float:
        errors = [e.max_rel_error for e in self.entries if e.verdict != "inconclusive"]
        return max(errors, default=0.0)

    @property
    def failed(self) -> bool:
        if self.nondeterministic:
            return True
        return any(e.verdict in ("wrong", "suspicious") for e in self.entries)

    @property
    def inconclusive(self) -> bool:
        return not self.failed and any(e.verdict == "inconclusive" for e in self.entries)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.inconclusive

    @property
    def verdict(self) -> str:
        if self.nondeterministic:
            return "nondeterministic"
        return "failed" if self.failed else "inconclusive" if self.inconclusive else "passed"

    @property
    def worst(self) -> Optional[GradientEntry]:
        conclusive = [e for e in self.entries if e.verdict != "inconclusive"]
        return max(conclusive, key=lambda e: e.max_rel_error, default=None)

    def render(self) -> str:
        precision = f"{self.dtype}, eps={self.eps:g}" + (", LOW PRECISION" if self.low_precision else "")
        head = (f"gradient check {self.verdict.upper()}: worst relative error "
                f"{_number(self.max_rel_error)} (fails above {self.threshold:g}), "
                f"{self.checked} probes, {self.kinks_crossed} kinks crossed [{precision}]")
        if self.nondeterministic:
            return f"{head}\n{self.nondeterministic}"
        rows = [[(f"{e.part}: " if e.part != "data" else "") + e.name,
                 "x".join(map(str, e.shape)) or "scalar", str(e.probes), str(e.kinks_crossed),
                 _number(e.max_rel_error), e.worst_probe, _number(e.analytic), _number(e.numeric),
                 e.verdict] for e in self.entries]
        table = format_table(["tensor", "shape", "probes", "kinks", "rel error", "worst probe",
                              "analytic", "numeric", "verdict"], rows)
        return "\n".join([head, table, *self.notes])

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        return {"verdict": self.verdict, "passed": self.passed, "max_rel_error": self.max_rel_error,
                "checked": self.checked, "kinks_crossed": self.kinks_crossed, "dtype": self.dtype,
                "eps": self.eps, "low_precision": self.low_precision,
                "regularization_ratio": self.regularization_ratio, "notes": list(self.notes),
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
    """The body of every ``assert_*``: ``report`` if it passed, else AssertionError(its rendering)."""
    __tracebackhide__ = True
    if not report.passed:
        raise AssertionError(report.render())
    return report
