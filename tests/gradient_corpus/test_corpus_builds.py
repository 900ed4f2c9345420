"""Every corpus case of an installed package builds into float64 tensors to check.

Building only (no gradient check): the benchmark is where the checkers run.
"""
from __future__ import annotations

import importlib

import pytest
import torch

from benchmarks.gradient_corpus.case import CORRECT, GENUINE_BUG, SURROGATE
from benchmarks.gradient_corpus.registry import FAMILIES


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_case_of_the_family_builds(family):
    try:
        cases = importlib.import_module(f"benchmarks.gradient_corpus.{family}").cases()
    except ImportError as error:
        pytest.skip(f"{FAMILIES[family]} not installed here ({error})")
    assert cases
    unbuilt = []
    for case in cases:
        assert case.label in (CORRECT, SURROGATE, GENUINE_BUG), case.name
        try:
            fn, *inputs = case.build()
        except ImportError as error:  # an older release that is not installed beside this one
            unbuilt.append(f"{case.name}: {error}")
            continue
        tensors = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad]
        parameters = list(fn.parameters()) if isinstance(fn, torch.nn.Module) else []
        assert tensors or parameters, f"{case.name}: nothing to check"
        assert all(t.dtype == torch.float64 for t in tensors + parameters), case.name
        assert callable(fn), case.name
    if unbuilt:
        pytest.skip("; ".join(unbuilt))
