"""Running the caller's model on a private copy, so buffers, mode and parameters stay untouched."""
from __future__ import annotations

import contextlib
import copy
import inspect
import sys
from typing import Any, Iterator, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError


def as_tuple(inputs: Any) -> Tuple[Any, ...]:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def private_copy(model: nn.Module) -> nn.Module:
    if isinstance(model, type):
        raise NNCheckError(f"model is the class {model.__name__}, not an instance: pass "
                           f"{model.__name__}(...)")
    if not isinstance(model, nn.Module):
        raise NNCheckError(f"model must be an nn.Module, got {type(model).__name__}")
    try:
        return copy.deepcopy(model)
    except Exception as error:  # deepcopy failures come in every type
        raise NNCheckError(f"could not copy {type(model).__name__} ({error}); make the model "
                           f"deep-copyable so the check can leave yours untouched") from error


def _takes_mode(train: Any) -> bool:
    """Whether an overridden ``train`` keeps nn.Module's ``train(mode)`` signature."""
    try:
        parameters = list(inspect.signature(train).parameters)
    except (TypeError, ValueError):
        return False
    return parameters[:1] == ["mode"]


def set_mode(module: nn.Module, training: bool) -> nn.Module:
    """``module.train(training)`` that never calls a user's ``train(self, x, y)`` training loop.

    Overrides that keep nn.Module's ``train(mode)`` signature (freezing BatchNorm, say) are
    honoured; any other ``train`` is bypassed and the flag is set directly, submodule by submodule.
    """
    if type(module).train is not nn.Module.train and _takes_mode(module.train):
        module.train(training)
        return module
    module.training = training
    for child in module.children():
        set_mode(child, training)
    return module


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)


def training_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A private copy on ``device`` in train mode with dropout off (BatchNorm keeps batch statistics).

    Memorising and comparing training runs want the model's capacity, not its regularisation.
    """
    copy = set_mode(private_copy(model).to(device), True)
    for module in copy.modules():
        if isinstance(module, _DROPOUT):
            set_mode(module, False)
    return copy


def _use_deterministic_algorithms(mode: bool, warn_only: bool) -> None:
    """torch.use_deterministic_algorithms, without importing torch._inductor when nothing has.

    The public function imports torch._inductor to set its flag too: seconds on a first call, for
    a setting that matters only to models torch.compile has already compiled (which imported it).
    """
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels for the run; the caller's settings are restored afterwards."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    _use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        _use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2:]


def require_examples(inputs: Sequence[Any], targets: Any = None) -> None:
    """One line for an empty batch, before it turns into a nan loss or an ignore_index message."""
    named = [(f"input[{i}]", value) for i, value in enumerate(inputs)]
    named.append(("targets", targets))
    for name, value in named:
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == 0:
            raise NNCheckError(f"the batch is empty: {name} has shape {tuple(value.shape)}; pass "
                               f"at least one example (the tiny set is usually 2-20 of them)")


def forward(model: nn.Module, inputs: Sequence[Any]) -> torch.Tensor:
    try:
        return model(*inputs)
    except Exception as error:
        raise NNCheckError(f"the model raised {type(error).__name__} in the forward: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}") \
            from error


def compute_loss(loss_fn: Any, outputs: torch.Tensor, targets: Any) -> torch.Tensor:
    if isinstance(loss_fn, type):
        raise NNCheckError(f"loss_fn is the class {loss_fn.__name__}, not an instance: pass "
                           f"{loss_fn.__name__}() (the class itself would be built with your "
                           f"outputs as its arguments)")
    try:
        loss = loss_fn(outputs, targets)
    except Exception as error:
        raise NNCheckError(f"loss_fn raised {type(error).__name__}: "
                           f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}") \
            from error
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise NNCheckError("loss_fn must return a scalar tensor; use reduction='mean' or 'sum'")
    return loss


def move_tensors(values: Sequence[Any], device: torch.device) -> tuple:
    """The inputs with every tensor moved to ``device`` (the caller's tensors are not moved)."""
    return tuple(v.to(device) if isinstance(v, torch.Tensor) else v for v in values)
