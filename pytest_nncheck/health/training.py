"""check_training: a short real run on a private copy, judged the way a person babysits training.

CS231n "Neural Networks Part 3" and Karpathy's recipe: look at the loss curve's shape, the
update/weight ratios, the per-layer activation and gradient distributions, and NaNs, before
spending a week of GPU time. Every step is sampled (the run is short); the caller's model,
optimizer and random states are left as they were.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state, reseed
from ..reports import CheckFailed
from ..sanity.evaluation import as_tuple, compute_loss, forward, private_copy
from ..sanity.overfit import _move, _optimizer, deterministic
from .monitor import HealthMonitor
from .report import TrainingReport

DEFAULT_STEPS = 60
# Adam at 1e-3: Karpathy's recipe's "safe" optimizer, and an update/weight ratio near CS231n's 1e-3
# on layers of a few hundred units.
DEFAULT_LR = 1e-3
# Validation loss is measured every this many steps (and at the last step).
VALIDATION_EVERY = 5

OptimizerArgument = Union[None, torch.optim.Optimizer, Callable[..., torch.optim.Optimizer]]


def _same_optimizer(optimizer: torch.optim.Optimizer, original: nn.Module,
                    copy: nn.Module) -> torch.optim.Optimizer:
    """The optimizer's class and param-group hyperparameters over the copy's parameters (its state,
    such as momentum buffers, is not carried over)."""
    index = {id(p): i for i, p in enumerate(original.parameters())}
    copied = list(copy.parameters())
    groups = []
    for group in optimizer.param_groups:
        if any(id(p) not in index for p in group["params"]):
            raise NNCheckError("the optimizer holds tensors that are not this model's parameters; "
                               "pass the optimizer built on model.parameters(), or a factory such "
                               "as optimizer=lambda p: torch.optim.SGD(p, lr=0.1)")
        groups.append({**{k: v for k, v in group.items() if k != "params"},
                       "params": [copied[index[id(p)]] for p in group["params"]]})
    return type(optimizer)(groups)


def _build_optimizer(optimizer: OptimizerArgument, original: nn.Module,
                     copy: nn.Module) -> torch.optim.Optimizer:
    if isinstance(optimizer, torch.optim.Optimizer):
        return _same_optimizer(optimizer, original, copy)
    trained = [p for p in copy.parameters() if p.requires_grad]
    if not trained:
        raise NNCheckError("the model has no parameters that require grad: nothing to train")
    return _optimizer(optimizer or (lambda p: torch.optim.Adam(p, lr=DEFAULT_LR)), trained)


def _validation_pair(validation: Any, where: torch.device) -> Optional[Tuple[tuple, Any]]:
    if validation is None:
        return None
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise NNCheckError("validation must be a pair (inputs, targets), e.g. "
                           "validation=(x_val, y_val)")
    inputs, targets = validation
    labels = targets.to(where) if isinstance(targets, torch.Tensor) else targets
    return _move(as_tuple(inputs), where), labels


def _validation_loss(model: nn.Module, loss_fn: Any, pair: Tuple[Sequence[Any], Any]) -> float:
    model.eval()
    try:
        with torch.no_grad():
            return float(compute_loss(loss_fn, forward(model, pair[0]), pair[1]))
    finally:
        model.train()


def check_training(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, *,
                   optimizer: OptimizerArgument = None, steps: int = DEFAULT_STEPS,
                   validation: Any = None, device: str = "auto", seed: int = 0) -> TrainingReport:
    """Train a private copy for ``steps`` full-batch steps and report what a person would see.

    ``optimizer`` is a factory ``params -> Optimizer`` (default Adam, lr 1e-3) or an optimizer
    built on ``model``'s parameters (its class and hyperparameters are used on the copy).
    ``validation=(inputs, targets)`` adds the validation loss every few steps and the overfitting
    rule. Training stops at the first non-finite loss, after naming the module that produced it.
    """
    if not isinstance(steps, int) or steps < 1:
        raise NNCheckError(f"steps={steps!r} must be a positive integer")
    where = resolve_device(device)
    copy = private_copy(model).to(where).train()
    data = _move(as_tuple(inputs), where)
    labels = targets.to(where) if isinstance(targets, torch.Tensor) else targets
    held_out = _validation_pair(validation, where)
    report = TrainingReport(device=str(where))
    monitor = HealthMonitor(copy, report)
    start = time.perf_counter()
    with preserved_rng_state(), deterministic():
        reseed(seed)
        opt = _build_optimizer(optimizer, model, copy)
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            ends = step in (0, steps - 1)  # histograms are drawn for the first and last step
            with monitor.forward(step, histograms=ends):
                outputs = forward(copy, data)
            loss = compute_loss(loss_fn, outputs, labels)
            value = float(loss.detach())
            report.losses.append(value)
            if not math.isfinite(value):
                monitor.locator.arm()
                try:
                    with torch.no_grad():
                        forward(copy, data)
                finally:
                    monitor.locator.disarm()
                monitor.add(monitor.nonfinite(step, value))
                break
            loss.backward()
            monitor.parameters.gradients(step, histograms=ends)
            opt.step()
            monitor.parameters.updates()
            if held_out is not None and (step % VALIDATION_EVERY == 0 or step == steps - 1):
                report.validation_steps.append(step)
                report.validation_losses.append(_validation_loss(copy, loss_fn, held_out))
        report.steps = len(report.losses)
        monitor.keep_filters()
        monitor.new_problems()
    report.seconds = time.perf_counter() - start
    return report


def assert_training(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                    **options: Any) -> TrainingReport:
    """``check_training`` that raises ``AssertionError(report.render())`` when a problem is found."""
    __tracebackhide__ = True
    report = check_training(model, inputs, targets, loss_fn, **options)
    if not report.passed:
        raise CheckFailed(report)
    return report
