"""One model's measurements and verdicts, shared by ``check_training`` and ``watch``.

The caller says when a sampled forward runs, when gradients are ready and when the optimizer has
stepped; the monitor measures, keeps the report's series, and hands out each problem once.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Set, Tuple

import torch
from torch import nn

from ..reports import Problem
from .activations import ActivationRecorder, store
from .judges import judge
from .nonfinite import NonFiniteLocator
from .parameters import ParameterMonitor
from .report import FirstLayerFilters, TrainingReport

# The page shows at most this many first-layer filters.
MAX_FILTERS = 64


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel, so names carry no prefix."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel,
                                              nn.DataParallel)) else model


class HealthMonitor:
    """Measures the sampled steps of ``model`` into ``report``."""

    def __init__(self, model: nn.Module, report: TrainingReport) -> None:
        self.model = unwrap(model)
        self.report = report
        self.recorder = ActivationRecorder(self.model)
        self.parameters = ParameterMonitor(list(self.model.named_parameters()))
        self.locator = NonFiniteLocator(self.model)
        report.parameters = self.parameters.statistics
        self._given: Set[Tuple[str, str]] = set()

    @contextlib.contextmanager
    def forward(self, step: int, histograms: bool = True) -> Iterator[None]:
        """Record the nonlinearities of the forward run inside the block."""
        self.recorder.histograms = histograms
        with self.recorder:
            yield
        self.store_forward(step)

    def store_forward(self, step: int) -> None:
        """Keep what the recorder saw in the forward that just ran."""
        store(self.recorder.samples, self.report.activations, step)
        if not self.report.layer_order:
            self.report.layer_order = list(self.recorder.order)

    def nonfinite(self, step: int, value: float) -> Problem:
        """The ``nan`` problem after a forward run with the locator armed."""
        where, advice = self.locator.verdict()
        return Problem("nan", where, step, value, f"non-finite values ({value}): {advice}")

    def new_problems(self) -> List[Problem]:
        """Problems found in the figures so far that were not handed out before; added to the report."""
        fresh = []
        for problem in judge(self.report):
            key = (problem.code, problem.where)
            if key not in self._given:
                self._given.add(key)
                fresh.append(problem)
        self.report.problems += fresh
        return fresh

    def add(self, problem: Problem) -> bool:
        """Add a problem found outside the rules (a NaN); False when it was already reported."""
        key = (problem.code, problem.where)
        if key in self._given:
            return False
        self._given.add(key)
        self.report.problems.append(problem)
        return True

    def keep_filters(self) -> None:
        """Keep the first convolution's kernels (in forward order) for the page."""
        modules = dict(self.model.named_modules())
        for name in self.report.layer_order or list(modules):
            module = modules.get("" if name == "model" else name)
            if isinstance(module, nn.Conv2d):
                weights = module.weight.detach()[:MAX_FILTERS].float().cpu()
                self.report.filters = FirstLayerFilters(name, weights.tolist())
                return


def captured_gradients(model: nn.Module) -> Tuple[Dict[str, torch.Tensor], List]:
    """Hooks that copy each parameter's gradient when backward has accumulated it, for loops
    without an optimizer to hook; returns the (filling) dict and the handles to remove."""
    grads: Dict[str, torch.Tensor] = {}
    handles = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            def keep(param: torch.Tensor, name: str = name) -> None:
                grads[name] = param.grad.detach().clone()
            handles.append(p.register_post_accumulate_grad_hook(keep))
    return grads, handles
