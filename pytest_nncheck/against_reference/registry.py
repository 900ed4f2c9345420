"""``@reference``: registering a fused layer's reference on its class, for ``pytest --nncheck``.

The decorator only records; nothing runs until a check asks. Subclasses inherit the registration
(a variant of a fused layer is checked against the same reference).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import torch
from torch import nn

from ..errors import NNCheckError
from ..reports import ReferenceReport
from .check import check_against_reference

_REFERENCE_ATTRIBUTE = "__nncheck_reference__"

# Options a registration may carry; dtype, device and seed come from the run that checks it.
REGISTRATION_OPTIONS = ("parameters", "k", "floor")


@dataclass(frozen=True)
class RegisteredReference:
    """A layer's reference (module class or instance, factory, or function) and its options."""

    reference: Any
    options: Dict[str, Any] = field(default_factory=dict)

    def check(self, fn: Any, *inputs: Any, **overrides: Any) -> ReferenceReport:
        """``check_against_reference(fn, reference, *inputs, **options, **overrides)``."""
        return check_against_reference(fn, self.reference, *inputs, **{**self.options, **overrides})


def reference(reference: Any, **options: Any) -> Callable[[type], type]:
    """Class decorator: check this fused layer against ``reference`` under ``pytest --nncheck``.

    ``reference`` is what ``check_against_reference`` takes: an ``nn.Module`` class (built
    without arguments, parameters shared by name), an instance, a factory ``layer -> reference``
    (for a module layer), an ``autograd.Function`` subclass or a function of the inputs.
    ``options`` are ``parameters`` (fn name -> reference name), ``k`` and ``floor``.
    """
    unknown = sorted(set(options) - set(REGISTRATION_OPTIONS))
    if unknown:
        raise NNCheckError(f"@reference got {', '.join(unknown)}; it takes "
                           f"{', '.join(REGISTRATION_OPTIONS)} (dtype, device and seed come from "
                           f"the run: nncheck_dtypes, nncheck_device, nncheck_seed)")
    if not callable(reference):
        raise NNCheckError(f"@reference needs a module class or instance, a factory or a "
                           f"function; got {type(reference).__name__}")

    def register(cls: type) -> type:
        if not (inspect.isclass(cls) and issubclass(cls, (nn.Module, torch.autograd.Function))):
            raise NNCheckError(f"@reference decorates an nn.Module or autograd.Function subclass, "
                               f"not {getattr(cls, '__name__', type(cls).__name__)}")
        setattr(cls, _REFERENCE_ATTRIBUTE, RegisteredReference(reference, dict(options)))
        return cls
    return register


def registered_reference(layer: Any) -> Optional[RegisteredReference]:
    """The reference registered on ``layer``'s class (or a base class), or None."""
    found = getattr(layer, _REFERENCE_ATTRIBUTE, None)
    return found if isinstance(found, RegisteredReference) else None
