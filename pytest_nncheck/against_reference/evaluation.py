"""One evaluation of fn or of the reference: its named outputs and the gradients of the checked
tensors for a fixed random projection of those outputs.

The projection (``Subject.scalar``) is drawn once, for fn's outputs in fn's dtypes, and reused
by the reference runs converted to theirs, so every run back-propagates the same upstream
gradient, exactly representable in fn's precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch

from ..errors import NNCheckError, first_line
from ..gradients.seeded import reseed
from ..gradients.subject import Subject


@dataclass
class Evaluation:
    """Detached outputs by name, one gradient per ``subject.checked`` (None: not reached)."""

    outputs: List[Tuple[str, torch.Tensor]]
    gradients: List[Optional[torch.Tensor]]
    projection: List[Optional[torch.Tensor]]


def _named_outputs(result: Any, who: str) -> List[Tuple[str, torch.Tensor]]:
    if isinstance(result, torch.Tensor):
        items = [("output", result)]
    elif isinstance(result, dict):
        items = [(f"output[{key!r}]", value) for key, value in result.items()]
    elif isinstance(result, (tuple, list)):
        items = [(f"output[{index}]", value) for index, value in enumerate(result)]
    else:
        items = []
    floating = [(name, value) for name, value in items
                if isinstance(value, torch.Tensor) and value.is_floating_point()]
    if not floating:
        raise NNCheckError(f"{who} returned {type(result).__name__}; a reference check compares "
                           f"floating tensor outputs (a tensor, or a tuple, list or dict of them)")
    return floating


def _match(outputs: List[Tuple[str, torch.Tensor]], like: Evaluation, who: str) -> None:
    expected = [(name, tuple(value.shape)) for name, value in like.outputs]
    found = [(name, tuple(value.shape)) for name, value in outputs]
    if expected != found:
        raise NNCheckError(f"{who} returned {_shapes(found)} where fn returned "
                           f"{_shapes(expected)}; the reference must return the same outputs")


def _shapes(outputs: List[Tuple[str, tuple]]) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}" for name, shape in outputs)


def evaluate(subject: Subject, who: str, like: Optional[Evaluation] = None) -> Evaluation:
    """Run ``subject`` once from its seed, forward and backward; ``like`` is fn's evaluation.

    Call inside ``preserved_rng_state``. Errors in the forward or backward are blamed on ``who``.
    """
    reseed(subject.seed)
    with torch.enable_grad():
        try:
            result = subject.call(*subject.inputs)
        except NNCheckError:
            raise
        except Exception as error:  # the code under check may fail in any way
            raise NNCheckError(f"{who} raised {first_line(error)} in the forward") from error
        outputs = _named_outputs(result, who)
        tensors = [value for _, value in outputs]
        if like is not None:
            _match(outputs, like, who)
            subject.projection = [None if weight is None else
                                  weight.to(dtype=value.dtype, device=value.device)
                                  for weight, value in zip(like.projection, tensors)]
        scalar = subject.scalar(tensors)
        checked = [c.tensor for c in subject.checked]
        gradients: List[Optional[torch.Tensor]] = [None] * len(checked)
        if checked and scalar.requires_grad:
            try:
                gradients = list(torch.autograd.grad(scalar, checked, allow_unused=True))
            except Exception as error:  # a hand-written backward may fail in any way
                raise NNCheckError(f"{who} raised {first_line(error)} in the backward") from error
    return Evaluation([(name, value.detach()) for name, value in outputs],
                      [None if g is None else g.detach() for g in gradients],
                      list(subject.projection))
