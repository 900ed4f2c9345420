"""TrainingReport: the figures of a run, per layer and over steps, and the problems found in them."""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from ..reports import Problem, format_table, sparkline
from .statistics import ActivationStatistics, ParameterStatistics, to_plain


@dataclass
class FirstLayerFilters:
    """The first convolution's kernels at the end of the run, to be looked at as images."""

    name: str
    weights: List[List[List[List[float]]]]  # out_channels x in_channels x height x width


@dataclass
class TrainingReport:
    """What ``check_training`` or ``watch`` saw: one entry per step for the loss, one per sampled
    step for every parameter and nonlinearity, and the problems with their step and advice.

    ``layer_order`` lists modules in the order the forward ran them; ``loss_window`` is how many
    steps the loss-shape rules average (1 for full-batch runs, the sampling period for mini-batches).
    """

    losses: List[float] = field(default_factory=list)
    parameters: Dict[str, ParameterStatistics] = field(default_factory=dict)
    activations: Dict[str, ActivationStatistics] = field(default_factory=dict)
    validation_steps: List[int] = field(default_factory=list)
    validation_losses: List[float] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    steps: int = 0
    device: str = "cpu"
    seconds: float = 0.0
    source: str = "check_training"
    every: int = 1
    loss_window: int = 1
    rank: Optional[int] = None
    layer_order: List[str] = field(default_factory=list)
    filters: Optional[FirstLayerFilters] = None
    notes: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def ordered_parameters(self) -> List[ParameterStatistics]:
        """Parameters in forward order where it is known, registration order otherwise."""
        rank = {name: i for i, name in enumerate(self.layer_order)}

        def position(item: tuple) -> tuple:
            index, series = item
            owner = series.name.rsplit(".", 1)[0] if "." in series.name else "model"
            return (rank.get(owner, len(rank)), index)

        return [s for _, s in sorted(enumerate(self.parameters.values()), key=position)]

    def render(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({len(self.problems)} problems)"
        rank = "" if self.rank is None else f" [rank {self.rank}]"
        lines = [f"training health {verdict}: {self.steps} steps on {self.device}, sampled every "
                 f"{self.every}{rank} ({self.source}, {self.seconds:.2f} s)"]
        finite = [x for x in self.losses if math.isfinite(x)]
        if finite:
            lines.append(f"loss {self.losses[0]:.3g} {sparkline(self.losses)} {self.losses[-1]:.3g}")
        if self.validation_losses:
            lines.append(f"validation {self.validation_losses[0]:.3g} "
                         f"{sparkline(self.validation_losses)} {self.validation_losses[-1]:.3g}")
        rows = []
        for series in self.ordered_parameters():
            grads = [g for g in series.grad_norm if g is not None]
            ratios = [r for r in series.update_ratio if r is not None and math.isfinite(r)]
            rows.append([series.name, "x".join(map(str, series.shape)) or "scalar",
                         sparkline(grads, width=20) if grads else "no gradient",
                         f"{grads[-1]:.2e}" if grads else "-",
                         f"{statistics.median(ratios):.2e}" if ratios else "-"])
        if rows:
            lines.append(format_table(["parameter", "shape", "gradient norm", "last", "update ratio"],
                                      rows))
        rows = [[s.name, s.kind, sparkline([f + 1e-3 for f in s.fraction], width=20),
                 f"{s.fraction[-1]:.0%} " + ("dead" if s.kind == "relu" else "saturated")]
                for s in self.activations.values()]
        if rows:
            lines.append(format_table(["nonlinearity", "kind", "over steps", "last"], rows))
        lines += [f"problem: {p.render()}" for p in self.problems] + list(self.notes)
        return "\n".join(lines)

    __str__ = render

    def to_dict(self) -> Dict[str, object]:
        plain = {key: value for key, value in asdict(self).items()
                 if key not in ("parameters", "activations", "problems")}
        plain.update(passed=self.passed, problems=[asdict(p) for p in self.problems],
                     parameters=[to_plain(s) for s in self.parameters.values()],
                     activations=[to_plain(s) for s in self.activations.values()])
        return plain

    def save_html(self, path: str, title: str = "training health") -> str:
        """Write one self-contained page (inline SVG, no network) with the plots; return the path."""
        from .html import write_page

        return write_page(self, path, title)
