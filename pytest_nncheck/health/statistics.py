"""Per-layer figures over the sampled steps of a run: the data the judges, the terminal and the HTML
page all read."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch

# Histograms: 30 bins are enough to see a saturated or collapsed distribution in a 200-pixel panel.
HISTOGRAM_BINS = 30
# Gradient magnitudes are binned as log10|g| over this range; zeros are counted apart.
GRADIENT_LOG_RANGE = (-12.0, 3.0)
# A histogram is drawn from at most this many evenly strided entries: the shape of a distribution
# needs a few thousand samples, and binning a whole 500k-entry weight cost 30 ms a sampled step
# (benchmarks/health.py), more than the 2% overhead budget of watch allows.
HISTOGRAM_SAMPLE = 4096


def _sample(values: torch.Tensor) -> torch.Tensor:
    flat = values.detach().flatten()
    stride = max(1, flat.numel() // HISTOGRAM_SAMPLE)
    return flat[::stride].float()


@dataclass
class Histogram:
    """Counts over equal bins; ``zeros`` counts exact zeros left out of a log-scale histogram."""

    low: float
    high: float
    counts: List[int]
    zeros: int = 0
    log10: bool = False


def value_histogram(values: torch.Tensor) -> Histogram:
    """The distribution of a tensor's finite values over their own range."""
    flat = _sample(values)
    flat = flat[torch.isfinite(flat)]
    if flat.numel() == 0:
        return Histogram(0.0, 0.0, [0] * HISTOGRAM_BINS)
    low, high = float(flat.min()), float(flat.max())
    if high <= low:
        high = low + 1e-6
    counts = torch.histc(flat, bins=HISTOGRAM_BINS, min=low, max=high)
    return Histogram(low, high, [int(c) for c in counts.tolist()])


def magnitude_histogram(values: torch.Tensor) -> Histogram:
    """The distribution of log10|g| over a fixed range, so that vanishing gradients show as a shift."""
    flat = _sample(values).abs()
    flat = flat[torch.isfinite(flat)]
    nonzero = flat[flat > 0]
    low, high = GRADIENT_LOG_RANGE
    logs = torch.log10(nonzero).clamp(low, high)
    counts = torch.histc(logs, bins=HISTOGRAM_BINS, min=low, max=high)
    return Histogram(low, high, [int(c) for c in counts.tolist()],
                     zeros=int(flat.numel() - nonzero.numel()), log10=True)


@dataclass
class ParameterStatistics:
    """One parameter's gradient norm, weight norm and update/weight ratio at each sampled step.

    ``grad_norm`` is None where the parameter had no gradient (not in the graph); ``update_ratio``
    is ||w_after - w_before|| / ||w_before|| for the optimizer step (None without an optimizer).
    Gradient histograms are kept for the first and the last sampled step.
    """

    name: str
    shape: tuple
    steps: List[int] = field(default_factory=list)
    grad_norm: List[Optional[float]] = field(default_factory=list)
    weight_norm: List[float] = field(default_factory=list)
    update_ratio: List[Optional[float]] = field(default_factory=list)
    gradient_histograms: Dict[int, Histogram] = field(default_factory=dict)

    @property
    def is_weight(self) -> bool:
        """Matrices and kernels: biases and norm scales start at 0 or 1 and have no useful ratio."""
        return len(self.shape) >= 2


@dataclass
class ActivationStatistics:
    """One nonlinearity's health at each sampled step.

    For ReLU, ``fraction`` is the share of units that were zero for every example of the batch
    (dead); for tanh and sigmoid, the share of pre-activations in the saturated region.
    Histograms of the output values are kept for the first and the last sampled step.
    """

    name: str
    kind: str
    steps: List[int] = field(default_factory=list)
    fraction: List[float] = field(default_factory=list)
    histograms: Dict[int, Histogram] = field(default_factory=dict)


def keep_first_and_last(histograms: Dict[int, Histogram], step: int, histogram: Histogram) -> None:
    """Store ``histogram`` for ``step``, dropping the middle ones: the page shows start and end."""
    histograms[step] = histogram
    if len(histograms) > 2:
        del histograms[sorted(histograms)[1]]


def to_plain(statistics: object) -> Dict[str, object]:
    """A JSON-ready dict of a statistics dataclass (histogram keys become strings)."""
    plain = asdict(statistics)
    for key in ("gradient_histograms", "histograms"):
        if key in plain:
            plain[key] = {str(step): value for step, value in plain[key].items()}
    if "shape" in plain:
        plain["shape"] = list(plain["shape"])
    return plain
