"""Running the caller's model on a private copy, so buffers, mode and parameters stay untouched."""
from __future__ import annotations

import copy
from typing import Any, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError


def as_tuple(inputs: Any) -> Tuple[Any, ...]:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def private_copy(model: nn.Module) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise NNCheckError(f"model must be an nn.Module, got {type(model).__name__}")
    try:
        return copy.deepcopy(model)
    except Exception as error:  # deepcopy failures come in every type
        raise NNCheckError(f"could not copy {type(model).__name__} ({error}); make the model "
                           f"deep-copyable so the check can leave yours untouched") from error


def forward(model: nn.Module, inputs: Sequence[Any]) -> torch.Tensor:
    try:
        return model(*inputs)
    except Exception as error:
        raise NNCheckError(f"the model raised {type(error).__name__} in the forward: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}") \
            from error


def compute_loss(loss_fn: Any, outputs: torch.Tensor, targets: Any) -> torch.Tensor:
    try:
        loss = loss_fn(outputs, targets)
    except Exception as error:
        raise NNCheckError(f"loss_fn raised {type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}") \
            from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise NNCheckError("loss_fn must return a scalar tensor; use reduction='mean' or 'sum'")
    return loss
