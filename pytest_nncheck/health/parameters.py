"""Gradient norms and update/weight ratios of every trained parameter at a sampled step.

The norms of all parameters are computed with one fused call and read back with one transfer, so
a sampled step costs a few kernels and one device synchronisation, not one per parameter.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .statistics import ParameterStatistics, keep_first_and_last, magnitude_histogram


def _norms(tensors: Sequence[torch.Tensor]) -> List[float]:
    if not tensors:
        return []
    norms = torch._foreach_norm([t.detach() for t in tensors])
    return torch.stack([n.float().cpu() for n in norms]).tolist()


class ParameterMonitor:
    """Measures ``named_parameters`` after backward (``gradients``) and after the step (``updates``)."""

    def __init__(self, named_parameters: Sequence[Tuple[str, nn.Parameter]]) -> None:
        self.parameters = [(name, p) for name, p in named_parameters if p.requires_grad]
        self.statistics: Dict[str, ParameterStatistics] = {
            name: ParameterStatistics(name, tuple(p.shape)) for name, p in self.parameters}
        self._before: Optional[List[torch.Tensor]] = None

    def gradients(self, step: int, keep_weights: bool = True,
                  grads: Optional[Dict[str, torch.Tensor]] = None,
                  histograms: bool = True) -> List[str]:
        """Record gradient and weight norms; return the parameters whose gradient is not finite.

        ``grads`` are gradients captured earlier (by name); by default each parameter's ``.grad``.
        ``histograms`` also keeps the distribution of log10|g| of each weight.
        With ``keep_weights`` the weights are copied so that ``updates`` can measure the step.
        """
        if grads is None:
            grads = {name: p.grad for name, p in self.parameters if p.grad is not None}
        with torch.no_grad():
            grad_norms = dict(zip(grads, _norms(list(grads.values()))))
            weight_norms = _norms([p for _, p in self.parameters])
            for (name, p), weight_norm in zip(self.parameters, weight_norms):
                series = self.statistics[name]
                series.steps.append(step)
                series.grad_norm.append(grad_norms.get(name))
                series.weight_norm.append(weight_norm)
                series.update_ratio.append(None)
                if histograms and name in grads and series.is_weight:
                    keep_first_and_last(series.gradient_histograms, step,
                                        magnitude_histogram(grads[name]))
            self._before = [p.detach().clone() for _, p in self.parameters] if keep_weights else None
        return [name for name, norm in grad_norms.items() if not math.isfinite(norm)]

    def updates(self) -> None:
        """Record ||w_after - w_before|| / ||w_before|| for the step just taken."""
        if self._before is None:
            return
        with torch.no_grad():
            after = [p.detach() for _, p in self.parameters]
            deltas = _norms(torch._foreach_sub(after, self._before))
            for (name, _), delta in zip(self.parameters, deltas):
                series = self.statistics[name]
                weight = series.weight_norm[-1]
                series.update_ratio[-1] = delta / weight if weight > 0 else None
        self._before = None
