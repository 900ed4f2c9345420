"""check_parameters_update: every parameter that should learn is trained, and changes.

torchtest's "variables change", made to name the cause. A parameter does not learn when it is
frozen by accident (``requires_grad=False``; one real model had 1,562 of its 1,610 frozen), missing
from the optimizer (built over part of the model), not registered at all (built in ``forward``,
kept in a plain list), cut off from the loss (no gradient), dead (a gradient of exactly zero), or
not moved by the step (a learning rate of 0). A few steps run on a private copy, so a
zero-initialised last layer, which holds the other gradients at zero for one step, passes.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Dict, List, Sequence, Set

import torch
from torch import nn

from ..gradients.seeded import preserved_rng_state, reseed
from ..reports import Problem, RecipeReport, require_passed
from ..sanity.evaluation import (as_tuple, compute_loss, deterministic, forward, private_copy,
                                 require_examples, set_mode)
from ..sanity.optimizers import build_optimizer
from .unregistered import foreign_modules, graph_leaves, unregistered

DEFAULT_STEPS = 3

MESSAGES = {
    "parameter-frozen": "requires_grad=False: it never learns; if it is frozen on purpose, name it "
                        "in ignore=",
    "parameter-no-gradient": "got no gradient in {steps} steps: unused in the forward, or cut off "
                             "from the loss (.detach(), .data, torch.no_grad, an argmax or integer "
                             "path)",
    "parameter-zero-gradient": "its gradient was exactly zero at every step: dead units (a ReLU "
                               "after a large negative bias), a multiplication by zero, or an "
                               "output that does not reach the loss",
    "parameter-not-updated": "got a gradient but the optimizer step never changed it: a learning "
                             "rate of 0 for its group, or an update below float resolution",
}


REGISTERED_LATE = ("registered during the forward, after the optimizer was built: the optimizer "
                   "does not hold it; create it in __init__")


def _matcher(ignore: Sequence[str]) -> Callable[[str], bool]:
    prefixes = tuple(ignore)
    return lambda name: any(name == p or name.startswith(p + ".") for p in prefixes)


def _by_module(names: Sequence[str]) -> str:
    counts = Counter(name.split(".")[0] for name in names)
    return ", ".join(f"{module} ({count})" for module, count in counts.most_common(4)) + \
        (", ..." if len(counts) > 4 else "")


class _Run:
    """What the training steps saw, parameter by parameter."""

    def __init__(self, model: nn.Module) -> None:
        self.initial = {name: p.detach().clone() for name, p in model.named_parameters()}
        self.with_gradient: Set[str] = set()
        self.nonzero_gradient: Set[str] = set()
        self.changed: Set[str] = set()

    def after_backward(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if p.grad is not None:
                self.with_gradient.add(name)
                if bool((p.grad != 0).any()):
                    self.nonzero_gradient.add(name)

    def after_step(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.initial and not torch.equal(p.detach(), self.initial[name]):
                self.changed.add(name)


def check_parameters_update(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any, *,
                            optimizer: Any = None, steps: int = DEFAULT_STEPS,
                            ignore: Sequence[str] = (), seed: int = 0) -> RecipeReport:
    """Name every parameter that will not train, and why.

    ``optimizer``: an optimizer built over ``model`` (rebuilt over a private copy with the same
    groups and hyperparameters), a factory ``params -> Optimizer``, or None (Adam). ``ignore``
    lists parameter names or module prefixes frozen or unused on purpose. Up to ``steps`` steps
    run in train mode (dropout under the fixed seed), stopping once every parameter has changed.
    """
    start = time.perf_counter()
    ignored = _matcher(ignore)
    copy = set_mode(private_copy(model), True)
    data = as_tuple(inputs)
    require_examples(data, targets)
    report = RecipeReport(check="parameters update", summary="")
    names = [name for name, _ in copy.named_parameters()]
    frozen = [name for name, p in copy.named_parameters() if not p.requires_grad and not ignored(name)]
    report.problems += [Problem("parameter-frozen", name, None, None, MESSAGES["parameter-frozen"])
                        for name in frozen]
    with preserved_rng_state(), deterministic():
        reseed(seed)
        opt, owned = build_optimizer(optimizer, model, copy)
        report.problems += [Problem(code, where, None, None, message)
                            for code, where, message in owned.problems() if not ignored(where)]
        run = _Run(copy)
        seen: List[List[Any]] = []
        for step in range(max(steps, 1)):
            opt.zero_grad(set_to_none=True)
            with foreign_modules(copy) as found:
                loss = compute_loss(loss_fn, forward(copy, data), targets)
            seen.append(list(found))
            if step == 0:
                leaves = graph_leaves(loss)
                registered_later = [n for n, _ in copy.named_parameters() if n not in set(names)]
            loss.backward()
            run.after_backward(copy)
            opt.step()
            run.after_step(copy)
            if step >= 1 and all(n in run.changed or not p.requires_grad
                                 for n, p in copy.named_parameters()):
                break
    persistent = {id(m) for _, m in seen[1]} if len(seen) > 1 else set()
    for item in unregistered(copy, leaves, data, seen[0], persistent):
        report.problems.append(Problem("parameter-unregistered", item.where, None, None,
                                       item.message))
    report.problems += [Problem("parameter-unregistered", name, None, None, REGISTERED_LATE)
                        for name in registered_later]
    done = step + 1
    _report_training(report, copy, run, set(owned.missing), ignored, done)
    trainable = sum(1 for _, p in copy.named_parameters() if p.requires_grad)
    _summarise(report, len(names), trainable, frozen, done)
    report.figures = {"parameters": len(names), "trainable": trainable, "steps": done,
                      **Counter(p.code for p in report.problems)}
    report.seconds = time.perf_counter() - start
    return report


def _report_training(report: RecipeReport, model: nn.Module, run: _Run, missing: Set[str],
                     ignored: Callable[[str], bool], steps: int) -> None:
    for name, p in model.named_parameters():
        if not p.requires_grad or name in missing or ignored(name) or name not in run.initial:
            continue
        code = ("parameter-no-gradient" if name not in run.with_gradient else
                "parameter-zero-gradient" if name not in run.nonzero_gradient else
                "parameter-not-updated" if name not in run.changed else None)
        if code is not None:
            report.problems.append(Problem(code, name, None, None,
                                           MESSAGES[code].format(steps=steps)))


def _summarise(report: RecipeReport, total: int, trainable: int, frozen: List[str],
               steps: int) -> None:
    if report.passed:
        report.summary = (f"all {trainable} trainable parameters are held by the optimizer, get a "
                          f"gradient and change within {steps} steps")
        return
    counts: Dict[str, int] = Counter(p.code for p in report.problems)
    parts = [f"{count} {code}" for code, count in counts.items()]
    report.summary = f"{total} parameter tensors, {trainable} trainable; " + ", ".join(parts)
    if frozen:
        report.summary += f"; frozen by module: {_by_module(frozen)}"


def assert_parameters_update(model: nn.Module, inputs: Any, targets: Any, loss_fn: Any,
                             **options: Any) -> RecipeReport:
    """``check_parameters_update`` that raises ``AssertionError(report.render())`` when it fails."""
    __tracebackhide__ = True
    return require_passed(check_parameters_update(model, inputs, targets, loss_fn, **options))
