"""Finding a repository's custom layers and building example inputs for them.

``pytest --nncheck`` checks every ``nn.Module`` and ``autograd.Function`` subclass *defined* in the
configured modules. An example comes from the user (``@example`` or the conftest hook) or is
inferred when that is unambiguous; otherwise the layer is skipped with the exact registration line.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

# Constructor arguments whose meaning fixes the input's last dimension.
_SIZE_ARGUMENTS = ("in_features", "out_features", "in_channels", "out_channels", "dim", "hidden_size",
                   "hidden_dim", "features", "num_features", "channels", "embed_dim", "d_model",
                   "input_size", "input_dim", "size", "width", "in_dim", "out_dim")
_INFERRED_SIZE = 4
_EXAMPLE_ATTRIBUTE = "__nncheck_example__"


class CannotBuild(Exception):
    """No example could be inferred; the message says how to register one."""


def example(factory: Callable[[], tuple]) -> Callable[[type], type]:
    """Class decorator registering ``factory() -> (layer, *inputs)`` as the layer's example."""
    def register(cls: type) -> type:
        setattr(cls, _EXAMPLE_ATTRIBUTE, factory)
        return cls
    return register


@dataclass
class Layer:
    """A custom layer found in a scanned module."""

    module: str
    name: str
    cls: type

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def kind(self) -> str:
        return "function" if issubclass(self.cls, torch.autograd.Function) else "module"


def find_layers(module_name: str) -> List[Layer]:
    """Layer classes defined in ``module_name`` (not imported into it), in definition order."""
    module = importlib.import_module(module_name)
    found = []
    for name, value in vars(module).items():
        if not inspect.isclass(value) or value.__module__ != module.__name__:
            continue
        if value.__module__.startswith("torch."):
            continue
        if issubclass(value, nn.Module) or (issubclass(value, torch.autograd.Function)
                                            and value is not torch.autograd.Function):
            if not inspect.isabstract(value):
                found.append(Layer(module.__name__, name, value))
    return found


def _registration_hint(layer: Layer) -> str:
    return (f"register an example: @pytest_nncheck.example(lambda: ({layer.name}(...), "
            f"torch.randn(2, 8, dtype=torch.float64, requires_grad=True))) on the class, or "
            f"return {{{layer.name}: factory}} from pytest_nncheck_examples(config) in conftest.py")


def _input_for(module: nn.Module) -> Optional[Tuple[int, ...]]:
    """An input shape from the first parametrised submodule."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            return (2, sub.in_features)
        if isinstance(sub, nn.Bilinear):
            return None
        if isinstance(sub, nn.Conv1d):
            return (2, sub.in_channels, 8)
        if isinstance(sub, nn.Conv2d):
            return (2, sub.in_channels, 8, 8)
        if isinstance(sub, nn.Conv3d):
            return (2, sub.in_channels, 4, 4, 4)
        if isinstance(sub, nn.BatchNorm1d):
            return (4, sub.num_features)
        if isinstance(sub, nn.BatchNorm2d):
            return (2, sub.num_features, 4, 4)
        if isinstance(sub, nn.LayerNorm):
            return (2, *sub.normalized_shape)
        if isinstance(sub, nn.RNNBase):
            return (2, 3, sub.input_size) if sub.batch_first else (3, 2, sub.input_size)
        if isinstance(sub, nn.Embedding):
            return None
        if sub is not module and any(True for _ in sub.parameters(recurse=False)):
            return None
    return None


def _infer_module(layer: Layer) -> tuple:
    signature = inspect.signature(layer.cls.__init__)
    arguments: Dict[str, Any] = {}
    for name, parameter in list(signature.parameters.items())[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.default is not parameter.empty:
            continue
        if name in _SIZE_ARGUMENTS:
            arguments[name] = _INFERRED_SIZE
        else:
            raise CannotBuild(f"cannot infer an example for {layer.qualified}: its constructor "
                              f"needs `{name}`; {_registration_hint(layer)}")
    try:
        instance = layer.cls(**arguments)
    except Exception as error:
        raise CannotBuild(f"cannot infer an example for {layer.qualified}: {layer.name}(...) raised "
                          f"{type(error).__name__}: {error}; {_registration_hint(layer)}") from error
    shape = _input_for(instance)
    if shape is None and arguments:
        shape = (2, next(iter(arguments.values())))
    if shape is None:
        raise CannotBuild(f"cannot infer an input shape for {layer.qualified}: it has no Linear/"
                          f"Conv/Norm submodule or size argument; {_registration_hint(layer)}")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()
    return (instance, x)


def _infer_function(layer: Layer) -> tuple:
    parameters = list(inspect.signature(layer.cls.forward).parameters.values())[1:]
    if len(parameters) != 1 or parameters[0].kind != parameters[0].POSITIONAL_OR_KEYWORD:
        raise CannotBuild(f"cannot infer inputs for {layer.qualified}: its forward takes "
                          f"{len(parameters)} arguments; {_registration_hint(layer)}")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, _INFERRED_SIZE, generator=generator, dtype=torch.float64).requires_grad_()
    return (layer.cls, x)


def build_example(layer: Layer, registered: Dict[Any, Callable[[], tuple]]) -> Tuple[tuple, bool]:
    """``((fn, *inputs), explicit)``; raises CannotBuild with a registration hint."""
    factory = getattr(layer.cls, _EXAMPLE_ATTRIBUTE, None) or registered.get(layer.cls) \
        or registered.get(layer.qualified)
    if factory is not None:
        built = factory()
        if not isinstance(built, tuple) or len(built) < 2:
            raise CannotBuild(f"the example for {layer.qualified} must return (layer, *inputs), "
                              f"got {type(built).__name__}")
        return built, True
    if layer.kind == "function":
        return _infer_function(layer), False
    return _infer_module(layer), False
