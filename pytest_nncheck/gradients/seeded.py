"""Run code from a frozen random state without touching the caller's generators.

Every evaluation that must be comparable (the analytic pass and each perturbed forward) starts from
the same seed, so dropout masks and hand-written random masks are identical across them. The
caller's torch (CPU and every initialised CUDA device), NumPy and Python ``random`` states are
restored when the block exits, whether it returns or raises.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator, Tuple

import torch

try:  # NumPy is optional: a forward that draws from it needs it installed anyway
    import numpy as np
except ImportError:  # pragma: no cover - NumPy is present in the test environment
    np = None


def _cuda_devices() -> list:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore every random generator the caller may rely on when the block exits."""
    python_state = random.getstate()
    numpy_state = np.random.get_state() if np is not None else None
    with torch.random.fork_rng(devices=_cuda_devices()):
        try:
            yield
        finally:
            random.setstate(python_state)
            if np is not None:
                np.random.set_state(numpy_state)


def reseed(seed: int, generators: Tuple[bool, bool, bool] = (True, True, True)) -> None:
    """Set torch (CPU and initialised CUDA devices), NumPy and ``random`` to ``seed``.

    ``generators`` selects (torch, numpy, random), so that evaluations reseed only what the
    forward draws from. Call inside preserved_rng_state. ``torch.manual_seed`` is avoided on
    purpose: for every backend that is not initialised it records a stack trace to replay later,
    which costs more than a small forward pass, and the checker reseeds before every evaluation.
    """
    if generators[0]:
        torch.default_generator.manual_seed(seed)
        for device in _cuda_devices():
            torch.cuda.default_generators[device].manual_seed(seed)
    if generators[1] and np is not None:
        np.random.seed(seed % 2**32)
    if generators[2]:
        random.seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block from ``seed`` for torch, NumPy and ``random``; restore the caller's states."""
    with preserved_rng_state():
        reseed(seed)
        yield


def rng_fingerprint() -> tuple:
    """The states of every generator ``reseed`` sets, to tell whether a forward drew from them."""
    numpy_state = np.random.get_state() if np is not None else (None, b"", None)
    return (torch.default_generator.get_state(),
            [torch.cuda.default_generators[d].get_state() for d in _cuda_devices()],
            (bytes(numpy_state[1]), numpy_state[2]), random.getstate())


def generators_used(before: tuple, after: tuple) -> Tuple[bool, bool, bool]:
    """(torch, numpy, random): which generators changed state between two fingerprints."""
    torch_used = not torch.equal(before[0], after[0]) or not all(
        torch.equal(a, b) for a, b in zip(before[1], after[1]))
    return torch_used, before[2] != after[2], before[3] != after[3]
