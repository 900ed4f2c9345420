"""watch: the training-health measurements inside the user's own loop.

    with watch(model, optimizer) as watcher:
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            watcher.record(loss)
    print(watcher.report)

Only every ``every``-th step is measured. On the steps in between, the hooks that stay registered
(one forward pre- and post-hook on the model, a pre- and post-step hook on the optimizer) return
after comparing a counter; the per-module hooks and the function mode that measure exist only
during a sampled forward. Nothing is communicated between processes: under DDP each rank judges
its own figures, and only rank 0 warns.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Any, List, Optional

import torch
from torch import nn

from ..errors import NNCheckError
from ..reports import Problem
from .monitor import HealthMonitor, captured_gradients, unwrap
from .nonfinite import has_nonfinite
from .report import TrainingReport

# Sampling period at defaults. On the MLP of benchmarks/health.py (535k parameters, batch 128, one
# CPU thread) a sampled step costs about 0.8 of a plain step more, so one step in 100 keeps the
# overhead near 1%, under the 2% budget (TrainCheck reports < 2%, AUTOTRAINER ~1%).
DEFAULT_EVERY = 100
ON_PROBLEM = ("warn", "raise", "ignore")


class TrainingHealthWarning(UserWarning):
    """A training-health problem seen by ``watch``."""


class TrainingHealthError(AssertionError):
    """Raised by ``watch(..., on_problem="raise")`` at the step a problem is seen."""

    def __init__(self, problem: Problem, report: TrainingReport) -> None:
        super().__init__(problem.render())
        self.problem = problem
        self.report = report


def _rank() -> Optional[int]:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank()
    return None


class Watcher:
    """Measures a sampled step every ``every`` steps of the user's loop; see ``watch``."""

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, *,
                 every: int = DEFAULT_EVERY, on_problem: str = "warn") -> None:
        if not isinstance(model, nn.Module):
            raise NNCheckError(f"model must be an nn.Module, got {type(model).__name__}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise NNCheckError(f"optimizer must be the torch.optim.Optimizer that steps the model, "
                               f"got {type(optimizer).__name__}")
        if not isinstance(every, int) or every < 1:
            raise NNCheckError(f"every={every!r} must be a positive integer (sample every k steps)")
        if on_problem not in ON_PROBLEM:
            raise NNCheckError(f"on_problem={on_problem!r} is not one of {', '.join(ON_PROBLEM)}")
        self.model, self.optimizer, self.every, self.on_problem = model, optimizer, every, on_problem
        first = next(unwrap(model).parameters(), None)
        self.report = TrainingReport(source="watch", every=every, loss_window=every, rank=_rank(),
                                     device=str(first.device) if first is not None else "cpu")
        self.monitor = HealthMonitor(model, self.report)
        self._handles: List[Any] = []
        self._step = 0
        self._recording = False
        self._measured = -1  # the step whose forward was measured (once per step)
        self._locate_next = False  # a non-finite loss was seen: locate it in the next forward
        self._located = False  # the first non-finite loss has been located
        self._captured: Optional[tuple] = None
        self._pending: List[Any] = []
        self._start = 0.0
        self._open = False

    # the user's side -----------------------------------------------------------------------
    def __enter__(self) -> "Watcher":
        self._handles = [self.model.register_forward_pre_hook(self._before_forward),
                         self.model.register_forward_hook(self._after_forward, always_call=True)]
        if self.optimizer is not None:
            self._handles += [self.optimizer.register_step_pre_hook(self._before_step),
                              self.optimizer.register_step_post_hook(self._after_step)]
        self._start, self._open = time.perf_counter(), True
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.close(raise_problems=exc_type is None)

    def record(self, loss: Any, validation: Any = None) -> None:
        """Give the step's training loss (a tensor or a float), and a validation loss when one was
        measured. Accelerator tensors are read back only on sampled steps; a non-finite CPU loss
        arms the NaN locator for the next forward at once."""
        value = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
        self._pending.append(value)
        if not self._located and (not isinstance(value, torch.Tensor) or value.device.type == "cpu"):
            self._locate_next = self._locate_next or not math.isfinite(float(value))
        if validation is not None:
            self.record_validation(validation)

    def record_validation(self, loss: Any) -> None:
        """Give a validation loss measured at the current step (for the overfitting rule)."""
        self.report.validation_steps.append(self._step)
        self.report.validation_losses.append(float(loss))

    def close(self, raise_problems: bool = True) -> TrainingReport:
        """Remove every hook, judge the whole run, and return the report."""
        if not self._open:
            return self.report
        self._open = False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._finish_captured()
        self._flush_losses()
        self.report.steps = self._step
        self.monitor.keep_filters()
        self.report.seconds = time.perf_counter() - self._start
        fresh = self.monitor.new_problems()
        if raise_problems:
            self._emit(fresh)
        return self.report

    # hooks ---------------------------------------------------------------------------------
    def _sampled(self) -> bool:
        return self._step % self.every == 0

    def _before_forward(self, module: nn.Module, args: Any) -> None:
        if not module.training:
            return
        if self.optimizer is None:
            self._finish_captured()
        if self._locate_next and not self.monitor.locator.armed:
            self.monitor.locator.arm()
        if self._sampled() and not self._recording and self._measured != self._step:
            self._recording, self._measured = True, self._step
            self.monitor.recorder.__enter__()
            if self.optimizer is None:
                self._captured = (self._step, *captured_gradients(self.monitor.model))

    def _after_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._recording:
            self._recording = False
            self.monitor.recorder.__exit__(None, None, None)
            self.monitor.store_forward(self._step)
        if self.monitor.locator.armed:
            self.monitor.locator.disarm()
            self._locate_next = False
            if self.monitor.locator.first is not None or has_nonfinite(output):
                self._located = True
                self._add(self.monitor.nonfinite(self._step, math.nan))
        if self.optimizer is None:
            self._step += 1

    def _before_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._sampled():
            self.monitor.parameters.gradients(self._step)

    def _after_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._sampled():
            self.monitor.parameters.updates()
            self._judge()
        self._step += 1

    # measuring and judging -----------------------------------------------------------------
    def _finish_captured(self) -> None:
        """Without an optimizer, gradients are captured by hooks during backward and measured
        when the next training forward (or ``close``) shows the step is over."""
        if self._captured is None:
            return
        step, grads, handles = self._captured
        self._captured = None
        for handle in handles:
            handle.remove()
        if grads:
            self.monitor.parameters.gradients(step, keep_weights=False, grads=grads)
        self._judge()

    def _flush_losses(self) -> None:
        if not self._pending:
            return
        tensors = [v for v in self._pending if isinstance(v, torch.Tensor)]
        values = (torch.stack([t.float().reshape(()) for t in tensors]).tolist()
                  if len(tensors) == len(self._pending) else [float(v) for v in self._pending])
        self._pending.clear()
        self.report.losses += values
        if not self._located and not all(math.isfinite(v) for v in values):
            self._locate_next = True

    def _judge(self) -> None:
        self._flush_losses()
        self._emit(self.monitor.new_problems())

    def _add(self, problem: Problem) -> None:
        if self.monitor.add(problem):
            self._emit([problem])

    def _emit(self, problems: List[Problem]) -> None:
        for problem in problems:
            if self.on_problem == "raise":
                raise TrainingHealthError(problem, self.report)
            if self.on_problem == "warn" and self.report.rank in (None, 0):
                rank = "" if self.report.rank is None else f" [rank {self.report.rank}]"
                warnings.warn(f"nncheck{rank}: {problem.render()}", TrainingHealthWarning,
                              stacklevel=3)


def watch(model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, *,
          every: int = DEFAULT_EVERY, on_problem: str = "warn") -> Watcher:
    """A context manager that measures every ``every``-th step of your own training loop.

    With ``optimizer``, a step is one ``optimizer.step()`` and update/weight ratios are measured;
    without it, a step is one training-mode forward of ``model``. Call ``watcher.record(loss)``
    each step for the loss rules (and ``validation=`` when you evaluate). Problems are warned
    (``TrainingHealthWarning``) as they appear, raised (``TrainingHealthError``) with
    ``on_problem="raise"``, or only kept with ``"ignore"``; ``watcher.report`` is the
    ``TrainingReport`` at the end. The model and optimizer are only observed, never changed.
    """
    return Watcher(model, optimizer, every=every, on_problem=on_problem)
