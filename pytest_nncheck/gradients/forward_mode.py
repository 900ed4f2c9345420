"""Forward mode: a Function's own ``jvp`` against the numeric directional derivative.

A direction probe already measures J v numerically; forward-mode AD computes the same J v from the
Function's ``jvp``. Comparing them costs one forward per direction, so it is done whenever the
checked Function defines ``jvp`` itself.
"""
from __future__ import annotations

import warnings

import torch

from .probes import Probe
from .subject import Subject


def defines_jvp(subject: Subject) -> bool:
    """Whether the checked ``autograd.Function`` overrides ``jvp``."""
    cls = subject.function_class
    return cls is not None and "jvp" in {name for klass in cls.__mro__[:-1]
                                         if klass is not torch.autograd.Function
                                         and issubclass(klass, torch.autograd.Function)
                                         for name in vars(klass)}


def jvp_along(subject: Subject, probe: Probe) -> float:
    """The projected forward-mode derivative along ``probe``; raises NNCheckError if jvp fails."""
    import torch.autograd.forward_ad as forward_ad

    tensors = subject.tensors
    with forward_ad.dual_level(), warnings.catch_warnings():
        # forward AD scripts a few decompositions on first use, which recent torch warns about
        warnings.simplefilter("ignore", DeprecationWarning)
        duals = {id(tensors[part.tensor]): forward_ad.make_dual(
            tensors[part.tensor].detach(), part.direction if part.direction is not None else
            _unit(tensors[part.tensor], part.index)) for part in probe.parts}
        outputs = subject.outputs(replace=duals)
        total = 0.0
        for output, weight in zip(outputs, subject.weights(outputs)):
            tangent = forward_ad.unpack_dual(output).tangent
            if tangent is not None:
                total += float(tangent.sum() if weight is None else (tangent * weight).sum())
    return total


def _unit(tensor: torch.Tensor, index: tuple) -> torch.Tensor:
    unit = torch.zeros_like(tensor)
    unit[index] = 1.0
    return unit
