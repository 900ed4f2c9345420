"""Finding the custom layers of a module or package.

A layer is an ``nn.Module`` or ``autograd.Function`` subclass *defined* in a scanned module: a class
imported or re-exported from elsewhere is reported once, under the module that defines it, and a
class bound under two names is reported once. Private classes (``_Name``) and abstract bases (an
``abc`` abstract method, no ``forward``, or a ``forward`` that only raises NotImplementedError or
does nothing) are helpers, not layers, unless the user registered an example for them.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator, List, Mapping, Optional

import torch
from torch import nn

from . import source
from .registrations import is_registered

# Submodules never imported while scanning a package: importing `pkg.__main__` runs its program.
_NEVER_IMPORTED = ("__main__",)


@dataclass(frozen=True)
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

    @property
    def path(self) -> Optional[str]:
        """The source file of the class (None when it has none)."""
        return source.source_file(self.cls)

    @property
    def line(self) -> Optional[int]:
        """The 0-based line of the ``class`` statement; its file is parsed once for all layers."""
        return source.class_line(self.cls)


def _is_layer_class(value: Any) -> bool:
    if not inspect.isclass(value):
        return False
    try:
        return issubclass(value, nn.Module) or (issubclass(value, torch.autograd.Function)
                                                and value is not torch.autograd.Function)
    except TypeError:  # classes whose metaclass refuses issubclass
        return False


def _forward_missing(cls: type) -> bool:
    forward = getattr(cls, "forward", None)
    if forward is None or forward is nn.Module.forward \
            or forward is torch.autograd.Function.forward:
        return True
    return source.is_stub(forward)


def is_abstract(cls: type) -> bool:
    """An abstract base: ``abc`` abstract methods, or a forward that is missing or does nothing."""
    return inspect.isabstract(cls) or _forward_missing(cls)


def _submodule_error(name: str, package: str, error: BaseException) -> ImportError:
    return ImportError(f"{name} (in package {package}) raised {type(error).__name__} on import: "
                       f"{error}")


def _import(name: str, package: Optional[str] = None) -> ModuleType:
    """Import one module; any failure becomes an ImportError naming the module at fault."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if package is None:
            raise
        raise _submodule_error(name, package, error) from error
    except Exception as error:  # a module's top level may raise anything
        if package is None:
            raise ImportError(f"importing {name} raised {type(error).__name__}: {error}") from error
        raise _submodule_error(name, package, error) from error


def _scanned_modules(name: str) -> Iterator[ModuleType]:
    """The module, then, for a package, every submodule at any depth (imported in turn)."""
    module = _import(name)
    yield module

    def walk_failed(failed: str) -> None:
        raise _submodule_error(failed, name, sys.exc_info()[1])

    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}.",
                                      onerror=walk_failed):
        if info.name.rsplit(".", 1)[-1] not in _NEVER_IMPORTED:
            yield _import(info.name, package=name)


def find_layers(name: str, registered: Optional[Mapping[Any, Any]] = None) -> List[Layer]:
    """The layers defined in module ``name`` or, for a package, in it and all its submodules.

    Layers come in definition order, module by module. ``registered`` is the
    ``pytest_nncheck_examples`` mapping: private and abstract classes it names are collected.
    A submodule that fails to import raises ImportError naming it.
    """
    registered = registered or {}
    found: List[Layer] = []
    seen = set()
    for module in _scanned_modules(name):
        namespace = vars(module)
        for binding, value in list(namespace.items()):
            if not _is_layer_class(value) or value.__module__ != module.__name__ or value in seen:
                continue
            seen.add(value)
            own_name = value.__name__ if namespace.get(value.__name__) is value else binding
            layer = Layer(module.__name__, own_name, value)
            helper = own_name.startswith("_") or is_abstract(value)
            if not helper or is_registered(layer, registered):
                found.append(layer)
    return found
