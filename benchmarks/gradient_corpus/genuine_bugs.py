"""Backward bugs in released versions of the corpus's packages, each with the fix that closed it.

A bug fixed in a later release is run from the buggy release, loaded beside the installed one
(``releases.load_release``); building a case imports its package, so a missing one is an
ImportError at build time.
"""
from __future__ import annotations

from typing import List

from .case import GENUINE_BUG, Case, seeded
from .releases import load_release


def _entmax_1_0_sparsemax():
    sparsemax = load_release("entmax", "1.0").sparsemax
    return lambda x: sparsemax(x, dim=-1)


def _leaky_spike_operator():
    from snntorch import surrogate

    return lambda x: surrogate.LeakySpikeOperator.apply(x, 0.1)


def cases() -> List[Case]:
    return [
        Case("entmax 1.0 SparsemaxFunction, a size-1 batch dimension", "entmax",
             lambda: (_entmax_1_0_sparsemax(), seeded(2, 1, 5, seed=100, scale=1.5)), GENUINE_BUG,
             note="backward squeezed every size-1 dimension of the support size, so rows mix; "
                  "deep-spin/entmax issue #13, fixed in 1.1 (squeeze(dim))",
             version="1.0"),
        Case("snntorch LeakySpikeOperator", "snntorch",
             lambda: (_leaky_spike_operator(), seeded(4, 6, seed=101, scale=0.5)), GENUINE_BUG,
             note="backward returns one gradient for two inputs (input_, slope), so every "
                  "backward raises; surrogate.LSO() calls StochasticSpikeOperator instead; "
                  "present in the installed release"),
    ]
