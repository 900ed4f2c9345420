"""An example a layer is checked on: the callable, its inputs, and the options of its check."""
from __future__ import annotations

import copy
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError

# check_gradients keyword arguments an example may carry, and the one that is the forward's.
CHECK_OPTIONS = ("dtype", "eps", "coords", "directions", "kinks")
FORWARD_KWARGS = "forward_kwargs"


@dataclass
class Example:
    """``fn(*inputs)`` checked with ``options``.

    ``options`` holds ``check_gradients`` keyword arguments and ``forward_kwargs`` (passed to the
    forward as keyword arguments). ``explicit`` is True for an example the user registered, False
    for an inferred one; ``description`` says what was built
    (``Attention(dim=16, heads=2) on (2, 6, 16)``).
    """

    fn: Any
    inputs: Tuple[Any, ...] = ()
    options: Dict[str, Any] = field(default_factory=dict)
    explicit: bool = True
    description: str = ""

    @property
    def gradient_options(self) -> Dict[str, Any]:
        """The options that are ``check_gradients`` keyword arguments."""
        return {k: v for k, v in self.options.items() if k != FORWARD_KWARGS}

    @property
    def forward_kwargs(self) -> Dict[str, Any]:
        return dict(self.options.get(FORWARD_KWARGS) or {})

    def function(self) -> Any:
        """``fn`` with ``forward_kwargs`` bound; a module is copied first, never changed."""
        keywords = self.forward_kwargs
        if not keywords:
            return self.fn
        if is_function_class(self.fn):
            raise NNCheckError(f"forward_kwargs cannot be passed to {self.fn.__name__}.apply, "
                               f"which takes positional arguments only; pass them as inputs")
        if isinstance(self.fn, nn.Module):
            bound = copy.deepcopy(self.fn)
            bound.forward = functools.partial(bound.forward, **keywords)
            return bound
        return functools.partial(self.fn, **keywords)

    def check(self, seed: int = 0) -> Any:
        """``check_gradients`` on this example, with its options; returns the GradientReport."""
        from ..gradients.check import check_gradients
        return check_gradients(self.function(), *self.inputs, seed=seed, **self.gradient_options)

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``((fn, *inputs), explicit)``, the pair ``build_example`` used to return."""
        return iter(((self.fn, *self.inputs), self.explicit))


def is_function_class(fn: Any) -> bool:
    return inspect.isclass(fn) and issubclass(fn, torch.autograd.Function)


def validated_options(options: Mapping[str, Any], owner: str) -> Dict[str, Any]:
    """The options, or NNCheckError naming the first one that is not a known option."""
    for name, value in options.items():
        if name not in CHECK_OPTIONS and name != FORWARD_KWARGS:
            raise NNCheckError(f"unknown option {name!r} in the example for {owner}; the options "
                               f"are {', '.join(CHECK_OPTIONS)} and {FORWARD_KWARGS}")
        if name == FORWARD_KWARGS and not (isinstance(value, Mapping) and all(
                isinstance(key, str) for key in value)):
            raise NNCheckError(f"forward_kwargs in the example for {owner} must be a dict of "
                               f"keyword arguments, e.g. forward_kwargs={{'mask': None}}")
        if name == "dtype" and not isinstance(value, torch.dtype):
            raise NNCheckError(f"dtype in the example for {owner} must be a torch.dtype, e.g. "
                               f"dtype=torch.float32, got {value!r}")
    return dict(options)


def tensors_by_path(value: Any, path: str) -> Iterator[Tuple[str, torch.Tensor]]:
    """Every tensor in a (nested) input, named as the gradient report names it."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from tensors_by_path(item, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            yield from tensors_by_path(item, f"{path}[{position}]")


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        shape = "(" + ", ".join(map(str, value.shape)) + ("," if value.dim() == 1 else "") + ")"
        return shape if value.is_floating_point() else f"{shape} {str(value.dtype)[6:]}"
    return type(value).__name__


def describe_inputs(inputs: Sequence[Any], names: Optional[Sequence[str]] = None) -> str:
    """``(2, 6, 16)`` for one input; ``x (6, 16), edge_index (2, 16) int64`` for several."""
    if not inputs:
        return "no inputs"
    if len(inputs) == 1:
        return _describe_value(inputs[0])
    names = list(names or [])
    names += [f"input[{i}]" for i in range(len(names), len(inputs))]
    return ", ".join(f"{name} {_describe_value(value)}" for name, value in zip(names, inputs))


def describe_callable(fn: Any) -> str:
    if inspect.isclass(fn) or not isinstance(fn, nn.Module):
        return getattr(fn, "__name__", type(fn).__name__)
    return type(fn).__name__
