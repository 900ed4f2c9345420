"""check_overfit: a model that cannot memorise ~20 examples has a bug, not a capacity problem.

Karpathy's recipe, "overfit one batch": with regularization off, a copy of the model trains on the
tiny set until the loss reaches its floor and, for classification, every example is right.
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterator, List, Optional, Sequence

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state, reseed
from ..reports import CheckFailed, OverfitReport
from .evaluation import as_tuple, compute_loss, forward, private_copy
from .losses import LossSpec, accuracy, describe_loss, loss_floor

DEFAULT_STEPS = 300
DEFAULT_LR = 1e-2
# Memorised: within 2% of the way from the floor to where training started.
TARGET_FRACTION = 0.02
# A loss this many times its initial value is not coming back: stop and say so.
DIVERGED = 100.0

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)

CAUSES = ("usual causes: a learning rate too low or too high (Adam: try 1e-3..1e-2), a layer "
          "detached from the graph (.detach(), .data, torch.no_grad in forward), targets not "
          "aligned with the inputs (shuffled separately), regularization still on, or the wrong "
          "loss for the output (softmax before CrossEntropyLoss)")


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    # torch.use_deterministic_algorithms also sets torch._inductor's config, and importing that
    # imports torch._dynamo (800 modules, a second or two); eager kernels read only this flag.
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # pragma: no cover - a torch without the private setter
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels for the run; the caller's settings are restored afterwards."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    _set_deterministic(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        _set_deterministic(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2:]


def _optimizer(factory: Any, parameters: List[nn.Parameter]) -> torch.optim.Optimizer:
    if factory is None:
        return torch.optim.Adam(parameters, lr=DEFAULT_LR)
    if isinstance(factory, torch.optim.Optimizer):
        raise NNCheckError("optimizer must build a new optimizer for the check's private copy: pass "
                           "a factory, e.g. optimizer=lambda p: torch.optim.SGD(p, lr=0.1)")
    try:
        built = factory(parameters)
    except TypeError as error:
        raise NNCheckError(f"optimizer={factory!r} could not be built from the parameters ({error}); "
                           f"pass a factory, e.g. lambda p: torch.optim.SGD(p, lr=0.1)") from error
    if not isinstance(built, torch.optim.Optimizer):
        raise NNCheckError(f"optimizer factory returned {type(built).__name__}, not a "
                           f"torch.optim.Optimizer")
    return built


def _move(values: Sequence[Any], device: torch.device) -> tuple:
    return tuple(v.to(device) if isinstance(v, torch.Tensor) else v for v in values)


def _silent_parameters(model: nn.Module) -> List[str]:
    return [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]


def check_overfit(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, *,
                  steps: int = DEFAULT_STEPS, optimizer: Optional[Callable] = None,
                  target_loss: Optional[float] = None, device: str = "auto",
                  seed: int = 0) -> OverfitReport:
    """Train a private copy on the tiny set and report whether it memorised it.

    Dropout is switched off (BatchNorm stays in train mode), the default optimizer is Adam
    (lr 1e-2, no weight decay), ``optimizer`` is a factory ``params -> Optimizer``. Training stops
    early once the loss is at ``target_loss`` (default: 2% of the way from the loss's floor - 0, or
    the label-smoothing entropy - to the initial loss) and, for classification, every example is
    right. ``device="auto"`` uses CUDA when present. Seeds, deterministic settings and the caller's
    model are left as they were.
    """
    if steps < 1:
        raise NNCheckError(f"steps={steps} must be at least 1")
    where = resolve_device(device)
    spec: Optional[LossSpec] = describe_loss(loss_fn)
    copy = private_copy(model).to(where).train()
    for module in copy.modules():
        if isinstance(module, _DROPOUT):
            module.eval()
    data = _move(as_tuple(inputs), where)
    labels = targets.to(where) if isinstance(targets, torch.Tensor) else targets
    losses: List[float] = []
    report = OverfitReport(final_loss=math.nan, steps=0, losses=losses, device=str(where),
                           target_loss=math.nan)
    start = time.perf_counter()
    with preserved_rng_state(), deterministic():
        reseed(seed)
        trained = [p for p in copy.parameters() if p.requires_grad]
        if not trained:
            raise NNCheckError("the model has no parameters that require grad: nothing to train")
        opt = _optimizer(optimizer, trained)
        silent: List[str] = []
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            outputs = forward(copy, data)
            loss = compute_loss(loss_fn, outputs, labels)
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                report.problems.append(f"loss became {value} at step {step}: the learning rate "
                                       f"diverges, or the loss takes log(0); lower the lr")
                break
            if step > 0 and value > DIVERGED * max(abs(losses[0]), 1e-12):
                report.problems.append(f"loss diverged: {value:.4g} at step {step} is over "
                                       f"{DIVERGED:g}x the initial {losses[0]:.4g}; lower the lr")
                break
            if step == 0:
                floor = loss_floor(spec, outputs, labels) if spec is not None else 0.0
                report.target_loss = (float(target_loss) if target_loss is not None
                                      else floor + TARGET_FRACTION * max(value - floor, 0.0))
            report.accuracy = accuracy(spec, outputs, labels) if spec is not None else None
            if value <= report.target_loss and report.accuracy in (None, 1.0):
                break
            loss.backward()
            if step == 0:
                silent = _silent_parameters(copy)
            opt.step()
        report.steps = len(losses)
        report.final_loss = losses[-1]
    report.seconds = time.perf_counter() - start
    if not report.problems and not (report.final_loss <= report.target_loss
                                    and report.accuracy in (None, 1.0)):
        accuracy_text = "" if report.accuracy is None else f" and {report.accuracy:.0%} accuracy"
        message = (f"did not memorise the {len(labels) if hasattr(labels, '__len__') else ''} "
                   f"examples: loss {report.final_loss:.4g}{accuracy_text} after {report.steps} "
                   f"steps (target {report.target_loss:.4g}); {CAUSES}")
        if report.steps > 1 and silent:
            message += f". Parameters that got no gradient: {', '.join(silent[:8])}"
        report.problems.append(message)
    return report


def assert_overfit(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                   **options: Any) -> OverfitReport:
    """``check_overfit`` that raises ``AssertionError(report.render())`` when it fails."""
    report = check_overfit(model, inputs, targets, loss_fn, **options)
    if not report.passed:
        raise CheckFailed(report)
    return report
