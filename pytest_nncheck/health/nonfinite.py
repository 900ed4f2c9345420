"""Where a NaN or Inf comes from: the first module whose output is not finite.

Forward hooks on every module are armed only once a non-finite loss (or gradient) has been seen,
for one forward: ``torch.autograd.detect_anomaly`` would find the same place but slows every step
several-fold, which nobody leaves on.
"""
from __future__ import annotations

from typing import Any, List, Optional

import torch
from torch import nn


def has_nonfinite(value: Any) -> bool:
    """True when any floating tensor in ``value`` (nested tuples, lists, dicts) holds NaN or Inf."""
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and not bool(torch.isfinite(value).all())
    if isinstance(value, (tuple, list)):
        return any(has_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(has_nonfinite(v) for v in value.values())
    return False


class NonFiniteLocator:
    """While armed, remembers the first module (in order of completion) whose output is not finite.

    Modules finish child first, so the first non-finite output names the innermost layer that made
    it; ``inputs`` is set when the model's own inputs already held NaN or Inf.
    """

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._names = {module: (name or "model") for name, module in model.named_modules()}
        self._handles: List[Any] = []
        self.first: Optional[str] = None
        self.received: Optional[str] = None
        self.inputs = False

    def arm(self) -> None:
        self.first, self.received, self.inputs = None, None, False
        self._handles += [module.register_forward_hook(self._check_output)
                          for module in self._names]

    def disarm(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def armed(self) -> bool:
        return bool(self._handles)

    def _check_output(self, module: nn.Module, args: Any, output: Any) -> None:
        if module is self._model:
            self.inputs = has_nonfinite(args)
        if self.first is not None or not has_nonfinite(output):
            return
        name = self._names[module]
        if module is not self._model and has_nonfinite(args):
            # The values were already broken on the way in: code of the enclosing forward (a
            # functional op between modules) made them.
            parent = name.rsplit(".", 1)[0] if "." in name else "model"
            self.received = name
            self.first = parent
        else:
            self.first = name

    def verdict(self) -> str:
        """Where the non-finite values come from, with what to do, after an armed forward."""
        broken = [name for name, p in self._model.named_parameters()
                  if not bool(torch.isfinite(p.detach()).all())]
        if self.inputs:
            return ("inputs", "the inputs already hold NaN/Inf: check the data pipeline "
                              "(torch.isfinite(x).all()) before blaming the model")
        if self.first is not None:
            weights = f" (its parameters {', '.join(broken[:4])} are already non-finite: an " \
                      f"earlier update blew up; lower the learning rate or clip gradients)" \
                if broken else ""
            place = (f"first produced in the forward of {self.first}, before {self.received}"
                     if self.received else f"first produced by {self.first}")
            return (self.first, f"{place}{weights}; look for log/sqrt/division of values that can "
                                f"reach 0, exp of large values, or a learning rate that is too high")
        return ("loss_fn", "the model's outputs are finite, so the loss function makes it: a log "
                           "or division of a value that reaches 0 (use log_softmax / "
                           "F.cross_entropy, or clamp with an eps)")
