"""What a repository declares about its layers: examples to check them on, and layers not to check.

Declarations are read from the class's own namespace, never inherited: a subclass of a layer with
an example is a different layer (the parent's factory would build the parent), and a subclass of a
straight-through estimator may well have a true gradient.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence

from ..errors import NNCheckError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from .layers import Layer

_EXAMPLE_ATTRIBUTE = "__nncheck_example__"
_SKIP_ATTRIBUTE = "__nncheck_skip__"


@dataclass(frozen=True)
class Registration:
    """A layer's declared example: a factory (None: infer the inputs) and check options."""

    factory: Optional[Callable[[], Any]]
    options: Dict[str, Any] = field(default_factory=dict)


def example(factory: Optional[Callable[[], Any]] = None, **options: Any) -> Callable[[type], type]:
    """Class decorator: the example a layer is checked on, and the options of its check.

    ``factory()`` returns ``(layer, *inputs)`` or an ``Example``; without a factory the inputs are
    inferred. ``options`` are ``check_gradients`` keyword arguments (``dtype``, ``eps``,
    ``coords``, ``directions``, ``kinks``) and ``forward_kwargs``, a dict passed to the forward as
    keyword arguments; they are validated when the example is built.
    """
    if inspect.isclass(factory):
        raise NNCheckError(f"@pytest_nncheck.example was applied to {factory.__name__} without a "
                           f"factory; write @pytest_nncheck.example(lambda: ({factory.__name__}"
                           f"(...), torch.randn(...)))")
    if factory is not None and not callable(factory):
        raise NNCheckError(f"the example factory must be callable (a lambda returning (layer, "
                           f"*inputs)), got {type(factory).__name__}")

    def register(cls: type) -> type:
        setattr(cls, _EXAMPLE_ATTRIBUTE, Registration(factory, dict(options)))
        return cls
    return register


def skip(reason: str) -> Callable[[type], type]:
    """Class decorator for a layer whose gradient must not be checked, with the reason.

    For intentional surrogate gradients (straight-through estimators, gradient reversal), whose
    backward differs from the forward's derivative by design.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise NNCheckError("@pytest_nncheck.skip needs a reason, e.g. "
                           "@pytest_nncheck.skip(\"straight-through estimator\")")

    def mark(cls: type) -> type:
        setattr(cls, _SKIP_ATTRIBUTE, reason)
        return cls
    return mark


def registration_for(layer: "Layer", registered: Mapping[Any, Any]) -> Optional[Registration]:
    """The layer's decorator registration, with a factory from the conftest hook when it has none.

    ``registered`` is ``{LayerClass or "module.Class": factory}`` from
    ``pytest_nncheck_examples(config)``; the decorator's factory wins over the hook's.
    """
    declared = vars(layer.cls).get(_EXAMPLE_ATTRIBUTE)
    hooked = registered.get(layer.cls) or registered.get(layer.qualified)
    if hooked is not None and not callable(hooked):
        raise NNCheckError(f"pytest_nncheck_examples gave {type(hooked).__name__} for "
                           f"{layer.qualified}; give a factory, e.g. lambda: ({layer.name}(...), "
                           f"torch.randn(...))")
    if declared is None:
        return None if hooked is None else Registration(hooked)
    if declared.factory is None and hooked is not None:
        return Registration(hooked, declared.options)
    return declared


def is_registered(layer: "Layer", registered: Mapping[Any, Any]) -> bool:
    """Whether the user declared an example for the layer (then it is collected even if private)."""
    return (_EXAMPLE_ATTRIBUTE in vars(layer.cls) or layer.cls in registered
            or layer.qualified in registered)


def excluded(layer: "Layer", patterns: Sequence[str] = ()) -> Optional[str]:
    """Why the layer is not checked: its ``@skip`` reason, or the ``nncheck_exclude`` pattern it
    matches (fnmatch, against ``module.Class`` and ``Class``); None when it is checked."""
    reason = vars(layer.cls).get(_SKIP_ATTRIBUTE)
    if reason is not None:
        return reason
    for pattern in patterns:
        if fnmatchcase(layer.qualified, pattern) or fnmatchcase(layer.name, pattern):
            return f"excluded by nncheck_exclude pattern {pattern!r}"
    return None
