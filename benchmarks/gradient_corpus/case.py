"""One corpus case as data: what to call, on what, what the truth is, and which package it is from.

A case never copies a package's code: its builder imports the package and returns the package's
own Function or layer, with inputs placed where that code is meant to be used.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch

# What the case's gradient is known to be.
CORRECT = "correct"          # a hand-written backward (or a library layer) that is right
SURROGATE = "surrogate"      # an intentional non-gradient: straight-through, spike surrogates
GENUINE_BUG = "genuine-bug"  # a backward bug in a released version of the package
MUTANT = "mutant"            # a correct case with a gradient tap that rewrites its gradient

# What the case is, for the false-alarm tallies.
FUNCTION = "function"            # a custom autograd.Function with a hand-written backward
LAYER = "layer"                  # a library layer module (autograd backward, float64 throughout)
FLOAT32_LAYER = "float32-layer"  # a library layer that computes in float32 on purpose


@dataclass(frozen=True)
class Case:
    """A callable and its inputs, with the truth about its gradient.

    ``build()`` returns ``(fn, *inputs)``: fn is a module, an ``autograd.Function`` subclass or a
    callable; inputs are float64 tensors (those that require grad are checked) or other arguments.
    ``options`` are the ``check_gradients`` options the case needs (``dtype``, ``kinks``).
    """

    name: str
    package: str  # the pip distribution the code comes from
    build: Callable[[], Tuple[Any, ...]]
    label: str = CORRECT
    kind: str = FUNCTION
    options: Dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why the label holds; for a genuine bug, the issue or release that fixed it
    version: Optional[str] = None  # for code loaded from a pinned older release

    @property
    def package_version(self) -> str:
        if self.version is not None:
            return self.version
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"


def seeded(*shape: int, seed: int = 0, scale: float = 1.0, shift: float = 0.0,
           requires_grad: bool = True) -> torch.Tensor:
    """A float64 normal tensor from its own generator, so cases never share random state."""
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.randn(*shape, generator=generator, dtype=torch.float64) * scale + shift
    return tensor.requires_grad_(requires_grad)


def seeded_module(factory: Callable[[], torch.nn.Module], seed: int = 0) -> torch.nn.Module:
    """A layer built from a fixed seed (its initial weights) in float64, in training mode.

    The global RNG is forked, so building a case leaves the caller's random state alone.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory().double()


def callable_of(fn: Any) -> Callable:
    """What a user passes to gradcheck for ``fn``: a Function's ``apply``, else fn itself."""
    if isinstance(fn, type) and issubclass(fn, torch.autograd.Function):
        return fn.apply
    return fn


class FirstOutput(torch.nn.Module):
    """The first output of a layer that returns ``(output, extras...)``, as gradcheck needs."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *inputs: Any) -> torch.Tensor:
        result = self.inner(*inputs)
        return result[0] if isinstance(result, tuple) else result
