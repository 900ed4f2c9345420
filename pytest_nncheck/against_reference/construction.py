"""Building the reference for one run from fn's copy in that run's dtype and device.

What ``reference`` may be, tried in this order:

====================================  ==========================================================
an ``nn.Module`` subclass             constructed without arguments, in fn's train/eval mode
an ``autograd.Function`` subclass     its ``apply``, called with the inputs
an ``nn.Module`` instance             a private copy
any other callable, fn a module       a factory: called with the layer (fn's copy in the run's
                                      dtype and device), it returns the reference
any other callable                    a function, called with the inputs
====================================  ==========================================================

A reference module is converted to the run's dtype and device; then each of its parameters is
replaced by the layer's parameter of the same name, or the one ``parameters`` maps onto it, so that
both compute from the same values and the gradients of fn's parameters are measured through the
reference. A parameter the reference takes from the layer itself (a factory that keeps the layer,
or slices ``layer.w13``) is already shared. Buffers stay the reference's own: a mask or a rotary
table is derived, and a bug in fn's copy of it must show.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch import nn

from ..errors import NNCheckError, first_line
from ..gradients.subject import copy_module


def _construct(reference: type, layer: Optional[nn.Module]) -> nn.Module:
    try:
        built = reference()
    except Exception as error:  # a constructor may fail in any way
        raise NNCheckError(f"could not build the reference {reference.__name__}() without "
                           f"arguments ({first_line(error)}); pass an instance, or a factory "
                           f"such as lambda layer: {reference.__name__}(...)") from error
    return built.train(layer.training) if layer is not None else built


def _call_factory(factory: Callable, layer: Optional[nn.Module]) -> Any:
    try:
        built = factory(layer)
    except Exception as error:  # the factory is the caller's code
        raise NNCheckError(
            f"the reference factory raised {first_line(error)}; for a module fn, a reference "
            f"that is a plain callable is a factory: it receives the layer and returns the "
            f"reference (write lambda layer: my_function for a function of the inputs)") from error
    if isinstance(built, nn.Module) or _is_function_class(built):
        return built
    if not callable(built):
        raise NNCheckError(f"the reference factory returned {type(built).__name__}, not a module "
                           f"or function to run on the inputs")
    return built


def _is_function_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, torch.autograd.Function)


@dataclass(frozen=True)
class _Kind:
    name: str
    matches: Callable[[Any, Optional[nn.Module]], bool]
    build: Callable[[Any, Optional[nn.Module]], Any]


_KINDS = (
    _Kind("module class", lambda r, layer: inspect.isclass(r) and issubclass(r, nn.Module),
          _construct),
    _Kind("autograd.Function", lambda r, layer: _is_function_class(r), lambda r, layer: r),
    _Kind("module instance", lambda r, layer: isinstance(r, nn.Module),
          lambda r, layer: copy_module(r)),
    _Kind("factory", lambda r, layer: layer is not None and callable(r), _call_factory),
    _Kind("function", lambda r, layer: callable(r), lambda r, layer: r),
)


def _listing(names: Mapping[str, Any]) -> str:
    return ", ".join(names) or "none"


def share_parameters(reference: nn.Module, layer: Optional[nn.Module],
                     mapping: Mapping[str, str]) -> None:
    """Make every parameter of ``reference`` the layer's parameter it corresponds to."""
    sources: Dict[str, nn.Parameter] = dict(layer.named_parameters()) if layer is not None else {}
    targets = dict(reference.named_parameters())
    for name, target in mapping.items():
        if name not in sources:
            raise NNCheckError(f"parameters= names {name!r}, which is not a parameter of fn "
                               f"(fn's: {_listing(sources)})")
        if target not in targets:
            raise NNCheckError(f"parameters= maps {name!r} onto {target!r}, which is not a "
                               f"parameter of the reference (its: {_listing(targets)})")
    feeds = {mapping.get(name, name): name for name in sources}
    own = {id(parameter) for parameter in sources.values()}
    for target, parameter in targets.items():
        if id(parameter) in own:
            continue
        if target not in feeds:
            raise NNCheckError(f"the reference's parameter {target!r} has no counterpart in fn "
                               f"(fn's: {_listing(sources)}); map one onto it with "
                               f"parameters={{'<fn parameter>': {target!r}}}")
        source = sources[feeds[target]]
        if source.shape != parameter.shape:
            raise NNCheckError(f"fn's parameter {feeds[target]!r} has shape {tuple(source.shape)} "
                               f"but the reference's {target!r} has {tuple(parameter.shape)}; "
                               f"use a factory that builds the reference from the layer's "
                               f"parameters")
        owner, _, attribute = target.rpartition(".")
        setattr(reference.get_submodule(owner), attribute, source)


def build_reference(reference: Any, layer: Optional[nn.Module], dtype: torch.dtype,
                    device: torch.device, mapping: Mapping[str, str]) -> Callable:
    """The callable that computes the reference in ``dtype`` on ``device`` for this run."""
    kind = next((k for k in _KINDS if k.matches(reference, layer)), None)
    if kind is None:
        raise NNCheckError(f"reference must be an nn.Module class or instance, an "
                           f"autograd.Function subclass, a factory (layer -> reference) or a "
                           f"function of the inputs; got {type(reference).__name__}")
    built = kind.build(reference, layer)
    if _is_function_class(built):
        return built.apply
    if isinstance(built, nn.Module):
        built = built.to(device=device, dtype=dtype)
        share_parameters(built, layer, mapping)
    elif mapping:
        raise NNCheckError("parameters= maps fn's parameters onto a reference module's, but this "
                           "reference is a function; drop parameters= or return a module")
    return built
