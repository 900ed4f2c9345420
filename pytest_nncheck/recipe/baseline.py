"""check_input_independent_baseline: the model must do clearly better with its inputs than without.

Karpathy's recipe, "input-independent baseline": train once on the real inputs and once on inputs
set to zero, with the same targets; the zero-input run can only learn the targets' average, so the
real run must end clearly below it. A model that ends no better with its inputs ignores them:
the input overwritten in ``forward``, a dropout of p=1, an input path multiplied by zero or
detached, the wrong tensor passed on.
"""
from __future__ import annotations

import copy as copying
import math
import statistics
import time
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state, reseed
from ..reports import Problem, RecipeReport, require_passed
from ..sanity.evaluation import (as_tuple, compute_loss, deterministic, forward, private_copy,
                                 require_examples, set_mode)
from ..sanity.losses import describe_loss, loss_floor
from ..sanity.optimizers import build_optimizer

DEFAULT_STEPS = 50
DEFAULT_SEEDS = 3
# The real inputs must bring the loss (as a distance to its floor) below this fraction of the
# zero-input run's, in the median run. benchmarks/recipe.py: correct zoo models end at 0.00-0.05,
# models that ignore their input at 0.9-1.0.
MAX_RATIO = 0.9
# A zero-input run that ends within this fraction of its starting distance to the floor means
# the targets need no input (a single class, say): the comparison says nothing then.
PREDICTABLE = 0.05

CAUSES = ("the input is overwritten or never used in forward, a dropout of p=1, an input path "
          "multiplied by zero or detached, or the wrong tensor passed on")


def _zeroed(inputs: Sequence[Any]) -> Tuple[Any, ...]:
    return tuple(torch.zeros_like(v) if isinstance(v, torch.Tensor) else v for v in inputs)


def _reinitialise(model: nn.Module) -> None:
    """Fresh weights for every submodule that knows how to reset itself (from the current seed)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def _train(model: nn.Module, original: nn.Module, inputs: Sequence[Any], targets: Any,
           loss_fn: Any, optimizer: Any, steps: int, seed: int) -> Tuple[float, float, Optional[str]]:
    """Train ``steps`` full-batch steps from ``seed``: the first loss, the loss afterwards (same
    mode, same seed) and the ownership problem, if any."""
    reseed(seed)
    opt, owned = build_optimizer(optimizer, original, model)
    first = math.nan
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = compute_loss(loss_fn, forward(model, inputs), targets)
        first = float(loss.detach()) if step == 0 else first
        if not math.isfinite(float(loss.detach())):
            break
        loss.backward()
        opt.step()
    reseed(seed)
    with torch.no_grad():
        last = float(compute_loss(loss_fn, forward(model, inputs), targets))
    return first, last, owned.summary()


def check_input_independent_baseline(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, *,
                                     steps: int = DEFAULT_STEPS, optimizer: Any = None,
                                     seeds: int = DEFAULT_SEEDS, max_ratio: float = MAX_RATIO,
                                     seed: int = 0) -> RecipeReport:
    """Train on the real inputs and on zeros; the real run must end clearly lower.

    Each of ``seeds`` runs trains two private copies from the same weights for ``steps`` steps
    in train mode (dropout live under the run's seed; ``optimizer`` as in check_overfit: an
    optimizer over ``model``, a factory, or
    None for Adam 1e-2). The first run starts from the model's own init; later runs re-initialise
    every submodule that has ``reset_parameters()`` from ``seed + run``. It passes when, in the
    median run, the real loss's distance to the loss's floor is below ``max_ratio`` times the
    zero-input run's.
    """
    if steps < 1 or seeds < 1:
        raise NNCheckError(f"steps={steps} and seeds={seeds} must be at least 1")
    start = time.perf_counter()
    data = as_tuple(inputs)
    require_examples(data, targets)
    spec = describe_loss(loss_fn)
    report = RecipeReport(check="input-independent baseline", summary="")
    real_losses: List[float] = []
    zero_losses: List[float] = []
    zero_starts: List[float] = []
    ownership: Optional[str] = None
    with preserved_rng_state(), deterministic():
        reseed(seed)
        with torch.no_grad():
            floor = loss_floor(spec, forward(private_copy(model), data), targets) \
                if spec is not None else 0.0
        for run in range(seeds):
            reseed(seed + run)
            real = set_mode(private_copy(model), True)
            if run > 0:
                _reinitialise(real)
            zero = copying.deepcopy(real)
            _, real_loss, ownership = _train(real, model, data, targets, loss_fn, optimizer,
                                             steps, seed + run)
            zero_start, zero_loss, _ = _train(zero, model, _zeroed(data), targets, loss_fn,
                                              optimizer, steps, seed + run)
            real_losses.append(real_loss)
            zero_losses.append(zero_loss)
            zero_starts.append(zero_start)
            below = sum(_ratio(r, z, floor) < max_ratio for r, z in zip(real_losses, zero_losses))
            if max(below, len(real_losses) - below) > seeds // 2:
                break  # the median of all the runs is on this side whatever the others give
    _judge(report, real_losses, zero_losses, statistics.median(zero_starts), floor, max_ratio,
           ownership, steps, seeds)
    report.seconds = time.perf_counter() - start
    return report


def _ratio(real: float, zero: float, floor: float) -> float:
    """How far the real inputs took the loss towards its floor, against the zeroed inputs."""
    return (real - floor) / max(zero - floor, 1e-12)


def _judge(report: RecipeReport, real: List[float], zero: List[float], zero_start: float,
           floor: float, max_ratio: float, ownership: Optional[str], steps: int,
           runs_asked: int) -> None:
    if not all(math.isfinite(v) for v in real + zero):
        report.problems.append(Problem("loss-nan", "training", None, None,
                                       f"the loss is not finite after training (real inputs: "
                                       f"{real}, zeros: {zero}); lower the learning rate"))
        report.summary = "training diverged"
        return
    if statistics.median(zero) - floor <= PREDICTABLE * (zero_start - floor):
        raise NNCheckError(f"trained on zeroed inputs the model reaches the loss floor "
                           f"({statistics.median(zero):.4g}): the targets need no input (a single "
                           f"class or value); use a batch whose targets vary")
    ratios = [_ratio(r, z, floor) for r, z in zip(real, zero)]
    ratio = statistics.median(ratios)
    report.figures = {"ratio": ratio, "real_loss": statistics.median(real),
                      "zero_input_loss": statistics.median(zero), "floor": floor,
                      "runs": len(ratios), "runs_asked": runs_asked, "steps": steps,
                      "max_ratio": max_ratio}
    figures = (f"after {steps} steps the real inputs reach loss {statistics.median(real):.4g}, "
               f"zeroed inputs {statistics.median(zero):.4g}: ratio {ratio:.3g} (median of "
               f"{len(ratios)} runs; must be below {max_ratio:g})")
    if ownership is not None:
        report.problems.append(Problem("parameter-not-in-optimizer", "optimizer", None, None,
                                       ownership))
    if ratio >= max_ratio:
        report.problems.append(Problem(
            "input-ignored", "model", None, ratio,
            f"the model does about as well without its input: {figures}; {CAUSES}"))
        report.summary = "the model does not use its input"
    else:
        report.summary = figures
    report.notes.append("runs (real vs zeroed inputs): " + ", ".join(
        f"{r:.3g} vs {z:.3g}" for r, z in zip(real, zero)) + (
        "" if len(real) == report.figures["runs_asked"] else "; the rest were not needed: the "
        "median was decided"))


def assert_input_independent_baseline(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                                      **options: Any) -> RecipeReport:
    """``check_input_independent_baseline`` that raises ``AssertionError(report.render())``."""
    __tracebackhide__ = True
    report = check_input_independent_baseline(model, inputs, targets, loss_fn, **options)
    return require_passed(report)
