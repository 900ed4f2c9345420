"""The optimizer a check trains its private copy with, and whether it owns the model's parameters.

A check never steps the caller's optimizer. Given an optimizer *instance* it builds the same class
over the copy, with the same parameter groups and hyperparameters (fresh state); given a factory it
calls ``factory(parameters)``; given nothing it uses Adam. Either way it then compares what the
optimizer holds with what the model trains, because an optimizer built over part of the model (or
over another instance of it) trains happily and silently leaves the rest at their init.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import NNCheckError

DEFAULT_LR = 1e-2

FACTORY_HINT = "e.g. optimizer=lambda params: torch.optim.SGD(params, lr=0.1)"


@dataclass
class Ownership:
    """Which of the model's trainable parameters the optimizer holds.

    ``missing`` names trainable parameters it does not hold; ``foreign`` counts tensors it holds
    that are not the model's (built over another instance, or over tensors made elsewhere).
    """

    missing: List[str] = field(default_factory=list)
    foreign: int = 0
    trainable: int = 0

    def problems(self) -> List[Tuple[str, str, str]]:
        """``(code, where, message)`` for each way the optimizer does not train the model."""
        found = []
        if self.foreign and len(self.missing) == self.trainable:
            found.append(("optimizer-foreign-parameters", "optimizer",
                          f"the optimizer holds {self.foreign} tensors and none of them is this "
                          f"model's: it was built over another instance (create it from "
                          f"model.parameters() after the model that is trained)"))
            return found
        if self.foreign:
            found.append(("optimizer-foreign-parameters", "optimizer",
                          f"the optimizer holds {self.foreign} tensors that are not this model's "
                          f"parameters"))
        found += [("parameter-not-in-optimizer", name,
                   "trainable, but the optimizer does not hold it: it never changes (the "
                   "optimizer was built over part of the model, or before this parameter existed)")
                  for name in self.missing]
        return found

    def summary(self) -> Optional[str]:
        """One line for reports that do not list parameters one by one; None when all is well."""
        if not self.missing and not self.foreign:
            return None
        if self.foreign and len(self.missing) == self.trainable:
            return self.problems()[0][2]
        names = ", ".join(self.missing[:8]) + (", ..." if len(self.missing) > 8 else "")
        return (f"the optimizer does not train {len(self.missing)} of the model's "
                f"{self.trainable} trainable parameters ({names}): it was built over part of the "
                f"model; build it from model.parameters()")


def _rebuild(instance: torch.optim.Optimizer, groups: List[Dict[str, Any]]) -> torch.optim.Optimizer:
    """The same optimizer class and hyperparameters over other parameters, with fresh state."""
    cls = type(instance)
    try:
        return cls(groups, **instance.defaults)
    except TypeError:
        accepted = inspect.signature(cls.__init__).parameters
        try:
            return cls(groups, **{k: v for k, v in instance.defaults.items() if k in accepted})
        except Exception as error:
            raise NNCheckError(f"could not build another {cls.__name__} for the check's private "
                               f"copy ({error}); pass a factory instead, {FACTORY_HINT}") from error


def _from_instance(instance: torch.optim.Optimizer, original: nn.Module,
                   copy: nn.Module) -> Tuple[torch.optim.Optimizer, int]:
    names = {id(p): name for name, p in original.named_parameters(remove_duplicate=False)}
    copied = dict(copy.named_parameters(remove_duplicate=False))
    foreign = 0
    groups = []
    for group in instance.param_groups:
        mapped = []
        for parameter in group["params"]:
            if id(parameter) in names:
                mapped.append(copied[names[id(parameter)]])
            else:
                foreign += 1
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": mapped})
    groups = [g for g in groups if g["params"]]
    if not groups:
        placeholder = nn.Parameter(torch.zeros(1), requires_grad=False)
        groups = [{"params": [placeholder]}]
    return _rebuild(instance, groups), foreign


def _from_factory(factory: Any, copy: nn.Module) -> torch.optim.Optimizer:
    trainable = [p for p in copy.parameters() if p.requires_grad]
    try:
        built = factory(trainable)
    except TypeError as error:
        raise NNCheckError(f"optimizer={factory!r} could not be built from the parameters ({error}); "
                           f"pass an optimizer or a factory, {FACTORY_HINT}") from error
    if not isinstance(built, torch.optim.Optimizer):
        raise NNCheckError(f"optimizer factory returned {type(built).__name__}, not a "
                           f"torch.optim.Optimizer; {FACTORY_HINT}")
    return built


def build_optimizer(choice: Any, original: nn.Module,
                    copy: nn.Module) -> Tuple[torch.optim.Optimizer, Ownership]:
    """An optimizer over ``copy`` as ``choice`` describes it, and what it owns of ``copy``.

    ``choice``: None (Adam, lr 1e-2, over every trainable parameter), an optimizer built over
    ``original`` (rebuilt over ``copy``), or a factory ``params -> Optimizer``.
    """
    foreign = 0
    if choice is None:
        trainable = [p for p in copy.parameters() if p.requires_grad]
        if not trainable:
            raise NNCheckError("the model has no parameters that require grad: nothing to train")
        optimizer = torch.optim.Adam(trainable, lr=DEFAULT_LR)
    elif isinstance(choice, torch.optim.Optimizer):
        optimizer, foreign = _from_instance(choice, original, copy)
    elif callable(choice):
        optimizer = _from_factory(choice, copy)
    else:
        raise NNCheckError(f"optimizer must be an optimizer or a factory, got "
                           f"{type(choice).__name__}; {FACTORY_HINT}")
    return optimizer, ownership(optimizer, copy, foreign)


def ownership(optimizer: torch.optim.Optimizer, model: nn.Module, foreign: int = 0) -> Ownership:
    """Compare what ``optimizer`` holds with the trainable parameters of ``model``."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    own = {id(p) for _, p in model.named_parameters()}
    extra = sum(1 for group in optimizer.param_groups for p in group["params"]
                if id(p) not in own and p.requires_grad)
    return Ownership(missing=[name for name, p in trainable if id(p) not in held],
                     foreign=foreign + extra, trainable=len(trainable))
