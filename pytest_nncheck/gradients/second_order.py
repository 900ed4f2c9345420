"""Second order: checking the double backward, as gradgradcheck does.

A Function used inside a gradient penalty (WGAN-GP, R1, input-gradient regularisation) is
differentiated twice. Its first derivative, taken with ``create_graph=True`` and projected at random,
is a function of the same checked tensors; checking *that* function's gradient with the same probes
checks the double backward.
"""
from __future__ import annotations

from typing import Any, List

import torch

from ..errors import NNCheckError
from .subject import Subject


def first_derivative(subject: Subject) -> Subject:
    """A subject whose output is the gradient of ``subject``'s projected output."""
    tensors = subject.tensors
    inner = subject.call

    def gradient(*args: Any, **kwargs: Any) -> List[torch.Tensor]:
        outputs = Subject._floating_outputs(inner(*args, **kwargs))
        scalar = subject.scalar(outputs)
        if not scalar.requires_grad:
            raise NNCheckError("order=2: the output does not depend on the checked tensors")
        found = torch.autograd.grad(scalar, tensors, create_graph=True, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, found)]

    derived = subject.with_function(gradient)
    derived.grad_in_forward = True
    derived.output_name = "the backward's result"
    derived.graph_breakers = ("the backward is not differentiable: @once_differentiable, "
                              ".detach() or non-differentiable ops in it?")
    return derived
