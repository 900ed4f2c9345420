"""Choosing the device a check runs on: ``auto`` is CUDA when present, else CPU."""
from __future__ import annotations

import torch

from .errors import NNCheckError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """The device for ``name``; ``cuda`` without CUDA is a clear error, never a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NNCheckError(f"device={name!r} but CUDA is not available here; use device='auto' "
                               f"to fall back to the CPU")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise NNCheckError(f"device={name!r} is not one of {', '.join(DEVICE_CHOICES)}")
