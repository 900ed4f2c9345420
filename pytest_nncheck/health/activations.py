"""Nonlinearity statistics of one forward pass: dead ReLUs, saturated tanh and sigmoid.

The recorder is a TorchFunctionMode, so it sees ``nn.ReLU`` modules and ``F.relu`` / ``torch.tanh``
/ ``x.sigmoid()`` calls written in a forward alike. Each call is named after the module that made
it (``features.2`` for an ``nn.ReLU``, ``block:relu#2`` for the second functional ReLU of
``block``). Module hooks that track the names exist only while the recorder is active: a step that
is not sampled runs the model untouched.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .statistics import ActivationStatistics, Histogram, keep_first_and_last, value_histogram
from .thresholds import SATURATION_PREACTIVATION

# The functions recorded, and what each is judged on.
NONLINEARITIES: Dict[Any, str] = {
    torch.relu: "relu", torch.relu_: "relu", F.relu: "relu", F.relu_: "relu", F.relu6: "relu",
    torch.Tensor.relu: "relu", torch.Tensor.relu_: "relu",
    torch.tanh: "tanh", torch.tanh_: "tanh", F.tanh: "tanh", torch.Tensor.tanh: "tanh",
    torch.Tensor.tanh_: "tanh",
    torch.sigmoid: "sigmoid", torch.sigmoid_: "sigmoid", F.sigmoid: "sigmoid",
    torch.Tensor.sigmoid: "sigmoid", torch.Tensor.sigmoid_: "sigmoid",
}
# Modules whose forward is a single nonlinearity: the call takes the module's own name.
NONLINEARITY_MODULES = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid)


def unit_dim(values: torch.Tensor) -> int:
    """The axis that indexes units: features of (N, F), channels of (N, C, H, W) and (N, C, D, H, W),
    features of (N, L, F) sequences (transformer and RNN layouts)."""
    return 1 if values.dim() == 2 or values.dim() >= 4 else values.dim() - 1


def dead_fraction(outputs: torch.Tensor) -> float:
    """Share of units that are zero for every example and position of the batch."""
    if outputs.dim() < 2:
        return float((outputs <= 0).float().mean())
    axis = unit_dim(outputs)
    others = tuple(d for d in range(outputs.dim()) if d != axis)
    alive = (outputs > 0).any(dim=others)
    return 1.0 - float(alive.float().mean())


def saturated_fraction(preactivations: torch.Tensor) -> float:
    """Share of pre-activations beyond the saturation bound (DeepDiagnosis)."""
    return float((preactivations.abs() > SATURATION_PREACTIVATION).float().mean())


class ActivationRecorder(TorchFunctionMode):
    """Records every nonlinearity of the forwards run inside ``with recorder:``.

    ``samples`` maps a name to ``(kind, fraction, histogram)`` for the last call of that name;
    ``order`` lists the modules in the order the forward entered them.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self._names = {module: (name or "model") for name, module in model.named_modules()}
        self._model = model
        self._stack: List[nn.Module] = []
        self._handles: List[Any] = []
        self._calls: Counter = Counter()
        self.histograms = True  # also keep each output's histogram (costs a few kernels per call)
        self.samples: Dict[str, Tuple[str, float, Optional[Histogram]]] = {}
        self.order: List[str] = []

    def __enter__(self) -> "ActivationRecorder":
        self._stack.clear()
        self._calls.clear()
        self.samples, self.order = {}, []
        for module in self._names:
            self._handles.append(module.register_forward_pre_hook(self._push))
            self._handles.append(module.register_forward_hook(self._pop, always_call=True))
        return super().__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return super().__exit__(*exc_info)

    def _push(self, module: nn.Module, args: Any) -> None:
        self._stack.append(module)
        if self._names[module] not in self.order:
            self.order.append(self._names[module])

    def _pop(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()

    def _name(self, kind: str) -> str:
        module = self._stack[-1] if self._stack else self._model
        if isinstance(module, NONLINEARITY_MODULES):
            return self._names[module]
        self._calls[(module, kind)] += 1
        count = self._calls[(module, kind)]
        return f"{self._names[module]}:{kind}" + (f"#{count}" if count > 1 else "")

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        kind = NONLINEARITIES.get(func)
        if kind is None or not args or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        name = self._name(kind)
        with torch.no_grad():
            preactivation = None if kind == "relu" else saturated_fraction(args[0])
        result = func(*args, **kwargs)
        with torch.no_grad():
            fraction = dead_fraction(result) if kind == "relu" else preactivation
            histogram = value_histogram(result) if self.histograms else None
        self.samples[name] = (kind, fraction, histogram)
        return result


def store(samples: Dict[str, Tuple[str, float, Optional[Histogram]]],
          into: Dict[str, ActivationStatistics], step: int) -> None:
    """Append one forward's samples to the per-nonlinearity series."""
    for name, (kind, fraction, histogram) in samples.items():
        series = into.setdefault(name, ActivationStatistics(name, kind))
        series.steps.append(step)
        series.fraction.append(fraction)
        if histogram is not None:
            keep_first_and_last(series.histograms, step, histogram)
