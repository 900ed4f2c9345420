"""Snapshots of everything a check must leave as it found it."""
from __future__ import annotations

import random
from typing import Any, Dict, Sequence

import numpy as np
import torch
from torch import nn


def snapshot(objects: Sequence[Any]) -> Dict[str, Any]:
    """Values, flags and global state that a check may not change."""
    state: Dict[str, Any] = {
        "torch_rng": torch.get_rng_state().clone(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "python_rng": random.getstate(),
        "default_dtype": torch.get_default_dtype(),
        "grad_enabled": torch.is_grad_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    for position, obj in enumerate(objects):
        if isinstance(obj, nn.Module):
            state[f"{position}.tensors"] = {k: v.detach().clone() for k, v in obj.state_dict().items()}
            state[f"{position}.meta"] = [(n, p.dtype, p.device, p.requires_grad, p.grad is None)
                                         for n, p in obj.named_parameters()]
            state[f"{position}.training"] = [m.training for m in obj.modules()]
        elif isinstance(obj, torch.Tensor):
            state[f"{position}.tensor"] = (obj.detach().clone(), obj.dtype, obj.device,
                                           obj.requires_grad, obj.grad is None, obj._version)
    return state


def assert_unchanged(before: Dict[str, Any], after: Dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for key in before:
        _assert_same(before[key], after[key], key)


def _assert_same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), f"{where} changed"
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} changed"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where} changed"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where} changed"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where} changed: {a!r} -> {b!r}"
