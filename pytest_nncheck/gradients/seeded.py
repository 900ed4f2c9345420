"""Run code from a frozen random state without touching the caller's generators.

Every evaluation that must be comparable (the analytic pass and each perturbed forward) starts from
the same seed, so dropout masks and hand-written random masks are identical across them. The
caller's torch (CPU and every initialised CUDA device), NumPy and Python ``random`` states are
restored when the block exits, whether it returns or raises.
"""
from __future__ import annotations

import contextlib
import random
from typing import Iterator

import numpy as np
import torch


def _cuda_devices() -> list:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore every random generator the caller may rely on when the block exits."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=_cuda_devices()):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def reseed(seed: int) -> None:
    """Set torch (all devices), NumPy and ``random`` to ``seed``; call inside preserved_rng_state."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block from ``seed`` for torch, NumPy and ``random``; restore the caller's states."""
    with preserved_rng_state():
        reseed(seed)
        yield
