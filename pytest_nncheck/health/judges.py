"""The rules that turn a run's figures into problems, each with the playbook's advice.

Every rule reads a ``TrainingReport`` (losses, per-parameter and per-nonlinearity series) and
returns the problems it finds; ``judge`` runs them all. Rules are pure functions of the figures,
so ``check_training`` and ``watch`` judge alike, and a rule can be re-run on a saved report.
"""
from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Callable, Iterable, List, Optional, Sequence

from ..reports import Problem
from .thresholds import (DEAD_FRACTION, DIVERGED_FACTOR, EXPLODING_GRADIENT_TO_WEIGHT,
                         EXPLODING_LAYERS, EXPLODING_RATIO, MIN_LOSSES,
                         NOT_DECREASING_FRACTION, OSCILLATION_RISE, OSCILLATION_SHARE, OVERFIT_RISE,
                         PERSISTENT_SAMPLES, SATURATED_FRACTION, UPDATE_RATIO_HIGH,
                         UPDATE_RATIO_LOW, VANISHING_FIRST_NORM, VANISHING_RATIO)

if TYPE_CHECKING:
    from .report import TrainingReport

Rule = Callable[["TrainingReport"], List[Problem]]


def first_persistent(conditions: Sequence[bool]) -> Optional[int]:
    """Index at which ``conditions`` has held for PERSISTENT_SAMPLES samples in a row, or None."""
    run = 0
    for index, condition in enumerate(conditions):
        run = run + 1 if condition else 0
        if run >= PERSISTENT_SAMPLES:
            return index
    return None


def _gradient_ratio(report: "TrainingReport", index: int, first: str, last: str) -> Optional[float]:
    top = report.parameters[first].grad_norm[index]
    bottom = report.parameters[last].grad_norm[index]
    if top is None or bottom is None or not math.isfinite(top) or not math.isfinite(bottom):
        return None
    return top / bottom if bottom > 0 else (math.inf if top > 0 else None)


def _first_and_last_weights(report: "TrainingReport") -> Optional[tuple]:
    weights = [s.name for s in report.ordered_parameters()
               if s.is_weight and any(g for g in s.grad_norm if g is not None)]
    return (weights[0], weights[-1]) if len(weights) >= 2 else None


def vanishing_gradient(report: "TrainingReport") -> List[Problem]:
    ends = _first_and_last_weights(report)
    if ends is None:
        return []
    first, last = ends
    ratios = [_gradient_ratio(report, i, first, last) for i in range(len(report.parameters[first].steps))]
    norms = report.parameters[first].grad_norm
    hit = first_persistent([r is not None and r < VANISHING_RATIO and (n or 0.0) < VANISHING_FIRST_NORM
                            for r, n in zip(ratios, norms)])
    if hit is None:
        return []
    return [Problem("vanishing-gradient", first, report.parameters[first].steps[hit], ratios[hit],
                    f"the first layer's gradient norm is {ratios[hit]:.2e} of the last layer's "
                    f"({last}), below {VANISHING_RATIO:g}: early layers barely learn. Use ReLU-family "
                    f"activations instead of sigmoid/tanh in deep stacks, He/Xavier init "
                    f"(not tiny weights), normalisation layers or residual connections")]


def exploding_gradient(report: "TrainingReport") -> List[Problem]:
    problems = []
    ends = _first_and_last_weights(report)
    if ends is not None:
        first, last = ends
        ratios = [_gradient_ratio(report, i, first, last)
                  for i in range(len(report.parameters[first].steps))]
        hit = first_persistent([r is not None and r > EXPLODING_RATIO for r in ratios])
        if hit is not None:
            problems.append(Problem(
                "exploding-gradient", first, report.parameters[first].steps[hit], ratios[hit],
                f"the first layer's gradient norm is {ratios[hit]:.3g}x the last layer's ({last}), "
                f"above {EXPLODING_RATIO:g}: gradients grow on the way back. {_EXPLODING_ADVICE}"))
    # one large ratio may be the output layer's, whose gradient follows the loss's scale (large
    # targets, a zero-initialised head); amplification on the way back shows in several layers
    hits = []
    for series in report.ordered_parameters():
        if not series.is_weight:
            continue
        scale = [g / w if g is not None and w > 0 and math.isfinite(g) else 0.0
                 for g, w in zip(series.grad_norm, series.weight_norm)]
        hit = first_persistent([x > EXPLODING_GRADIENT_TO_WEIGHT for x in scale])
        if hit is not None:
            hits.append((series, hit, scale[hit]))
    if len(hits) >= EXPLODING_LAYERS and not problems:
        series, hit, value = hits[0]
        problems.append(Problem(
            "exploding-gradient", series.name, series.steps[hit], value,
            f"the gradient norm is {value:.3g}x the weight norm (above "
            f"{EXPLODING_GRADIENT_TO_WEIGHT:g}x) here and in {len(hits) - 1} other weight(s): the "
            f"backward pass amplifies, and a step at lr 0.1 would move these weights by more than "
            f"their size. {_EXPLODING_ADVICE}"))
    return problems


_EXPLODING_ADVICE = ("Check the init scale (He/Xavier, not N(0, 1) or larger), lower the learning "
                     "rate, clip gradients (clip_grad_norm_), add normalisation")


_ACTIVATION_RULES = {
    "relu": ("dead-relu", DEAD_FRACTION,
             "{value:.0%} of the units never fire on the batch (dead ReLUs): they get no gradient "
             "and never recover. Lower the learning rate, check for a large negative bias or a "
             "bad init, or use LeakyReLU/GELU"),
    "tanh": ("saturated-activation", SATURATED_FRACTION,
             "{value:.0%} of the tanh pre-activations lie beyond +-5 (saturated): the gradient "
             "through them is ~0. Scale the init down (Xavier), normalise the inputs, or add "
             "normalisation before the activation"),
    "sigmoid": ("saturated-activation", SATURATED_FRACTION,
                "{value:.0%} of the sigmoid pre-activations lie beyond +-5 (saturated): the "
                "gradient through them is ~0. Scale the init down (Xavier), normalise the inputs, "
                "or add normalisation before the activation"),
}


def activations(report: "TrainingReport") -> List[Problem]:
    problems = []
    for series in report.activations.values():
        code, threshold, advice = _ACTIVATION_RULES[series.kind]
        hit = first_persistent([f >= threshold for f in series.fraction])
        if hit is not None:
            value = series.fraction[hit]
            problems.append(Problem(code, series.name, series.steps[hit], value,
                                    advice.format(value=value)))
    return problems


def update_ratio(report: "TrainingReport") -> List[Problem]:
    """Too low: the median ratio of a weight over the run (late steps of a converging run are
    small by nature). Too high: the largest ratio of any weight, for consecutive samples (a few
    such steps are enough to wreck the weights)."""
    weights = [s for s in report.ordered_parameters() if s.is_weight]
    problems = []
    medians = {}
    for series in weights:
        ratios = [r for r, g in zip(series.update_ratio, series.grad_norm)
                  if r is not None and g and math.isfinite(r)]
        if len(ratios) >= PERSISTENT_SAMPLES:
            medians[series.name] = statistics.median(ratios)
    low = {name: m for name, m in medians.items() if m < UPDATE_RATIO_LOW}
    if low:
        name = min(low, key=low.get)
        problems.append(Problem(
            "update-ratio-low", name, report.parameters[name].steps[-1], low[name],
            f"updates move the weights by {low[name]:.2e} of their norm per step (median; "
            f"{len(low)} of {len(medians)} weight tensors below {UPDATE_RATIO_LOW:g}; ~1e-3 is "
            f"healthy): the learning rate is too low. Raise it (search on a log scale)"))
    if weights:
        largest = [max((s.update_ratio[i] or 0.0 for s in weights if i < len(s.update_ratio)),
                       default=0.0) for i in range(len(weights[0].steps))]
        hit = first_persistent([r > UPDATE_RATIO_HIGH for r in largest])
        if hit is not None:
            name = max(weights, key=lambda s: s.update_ratio[hit] or 0.0).name
            problems.append(Problem(
                "update-ratio-high", name, weights[0].steps[hit], largest[hit],
                f"an update moved the weights by {largest[hit]:.3g} of their norm in one step "
                f"(above {UPDATE_RATIO_HIGH:g} for {PERSISTENT_SAMPLES} sampled steps in a row; "
                f"~1e-3 is healthy): the learning rate is too high. Lower it"))
    return problems


def parameter_not_updated(report: "TrainingReport") -> List[Problem]:
    silent: dict = {}
    for series in report.parameters.values():
        if len(series.steps) >= PERSISTENT_SAMPLES and all(not g for g in series.grad_norm):
            owner = series.name.rsplit(".", 1)[0] if "." in series.name else series.name
            silent.setdefault(owner, []).append(series)
    problems = []
    for owner, members in silent.items():
        never = all(g is None for s in members for g in s.grad_norm)
        why = ("never received a gradient: it is not connected to the loss (.detach(), .data, "
               "torch.no_grad or an unused branch in forward)" if never else
               "received only zero gradients: everything after it is dead or detached")
        problems.append(Problem("parameter-not-updated", owner, members[0].steps[-1], 0.0,
                                f"{', '.join(s.name for s in members)} {why} (all "
                                f"{len(members[0].steps)} sampled steps); freeze it on purpose "
                                f"with requires_grad_(False) if that is intended"))
    return problems


def nonfinite_gradients(report: "TrainingReport") -> List[Problem]:
    """A NaN/Inf gradient at a step whose loss is not known to be non-finite (a non-finite loss
    is located in the forward instead)."""
    losses = report.losses
    for series in report.ordered_parameters():
        for step, norm in zip(series.steps, series.grad_norm):
            loss_broken = step < len(losses) and not math.isfinite(losses[step])
            if norm is not None and not math.isfinite(norm) and not loss_broken:
                return [Problem("nan", series.name, step, norm,
                                f"the gradient of {series.name} is {norm}: a backward through "
                                f"sqrt/log/division at 0, or an overflow; clamp the input of "
                                f"such ops or clip gradients")]
    return []


def _windows(losses: Sequence[float], window: int) -> List[float]:
    if window <= 1:
        return list(losses)
    return [statistics.fmean(losses[i:i + window]) for i in range(0, len(losses) - window + 1, window)]


def loss_diverged(report: "TrainingReport") -> List[Problem]:
    losses = report.losses
    if len(losses) < 2 or not math.isfinite(losses[0]):
        return []
    limit = DIVERGED_FACTOR * max(abs(losses[0]), 1e-8)
    for step, loss in enumerate(losses):
        if math.isfinite(loss) and loss > limit:
            return [Problem("loss-diverged", "loss", step, loss,
                            f"the loss reached {loss:.4g}, over {DIVERGED_FACTOR:g}x the initial "
                            f"{losses[0]:.4g}: the learning rate is too high (CS231n: a very high "
                            f"learning rate explodes the loss). Lower it by 3-10x or clip gradients")]
    return []


def loss_not_decreasing(report: "TrainingReport") -> List[Problem]:
    losses = [x for x in _windows(report.losses, report.loss_window) if math.isfinite(x)]
    if len(losses) < MIN_LOSSES:
        return []
    tenth = max(1, len(losses) // 10)
    start, end = statistics.fmean(losses[:tenth]), statistics.fmean(losses[-tenth:])
    if abs(start) < 1e-6 or start - end >= NOT_DECREASING_FRACTION * abs(start):
        return []
    fall = (start - end) / abs(start)
    return [Problem("loss-not-decreasing", "loss", len(report.losses) - 1, fall,
                    f"the loss fell by {fall:.2%} over {len(report.losses)} steps ({start:.4g} -> "
                    f"{end:.4g}; under {NOT_DECREASING_FRACTION:.0%}): the learning rate is too "
                    f"low, or the gradient does not reach the weights (see the other problems)")]


def loss_oscillating(report: "TrainingReport") -> List[Problem]:
    losses = _windows(report.losses, report.loss_window)
    if len(losses) < MIN_LOSSES or not all(math.isfinite(x) for x in losses):
        return []
    half = losses[len(losses) // 2 - 1:]
    rise = OSCILLATION_RISE * abs(losses[0])
    rises = sum(1 for a, b in zip(half, half[1:]) if b - a > rise)
    share = rises / (len(half) - 1)
    if share < OSCILLATION_SHARE:
        return []
    return [Problem("loss-oscillating", "loss", len(report.losses) - 1, share,
                    f"the loss rose by more than {OSCILLATION_RISE:.0%} of its initial value in "
                    f"{share:.0%} of the steps of the second half of the run: the learning rate is "
                    f"too high (or the batch too small). Lower it, or add a decay schedule")]


def overfitting(report: "TrainingReport") -> List[Problem]:
    values = report.validation_losses
    if len(values) < 3:
        return []
    best = min(range(len(values)), key=values.__getitem__)
    train_then = report.losses[min(report.validation_steps[best], len(report.losses) - 1)]
    for index in range(best + 1, len(values)):
        step = report.validation_steps[index]
        train_now = report.losses[min(step, len(report.losses) - 1)]
        if values[index] > (1 + OVERFIT_RISE) * values[best] and train_now < train_then:
            return [Problem("overfitting", "validation", step, values[index],
                            f"the validation loss rose from {values[best]:.4g} (step "
                            f"{report.validation_steps[best]}) to {values[index]:.4g} while the "
                            f"training loss kept falling: the model memorises. More data or "
                            f"augmentation, weight decay, dropout, a smaller model, or stop early")]
    return []


RULES: Sequence[Rule] = (vanishing_gradient, exploding_gradient, activations, update_ratio,
                         parameter_not_updated, nonfinite_gradients, loss_diverged,
                         loss_not_decreasing, loss_oscillating, overfitting)


def judge(report: "TrainingReport", rules: Iterable[Rule] = RULES) -> List[Problem]:
    """Every rule's problems, in the order of RULES."""
    return [problem for rule in rules for problem in rule(report)]
